import { readFileSync } from 'node:fs';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import {
  ConfigError,
  parseServeConfig,
  parseTimeScale,
  SERVE_SETTINGS,
  type ServeConfig,
  type ServeFlags,
} from '../config.js';
import type { Inlet } from '../inlet.js';
import { archiveOptionsOf } from '../archive/archive-options.js';
import { loadConfigFile } from '../config-file.js';
import { parseReplicateApiConfig } from '../replicate/api-config.js';
import { DeferredStore } from '../store/deferred-store.js';
import { InvalidDatabaseUrlError, type StoreOpenError } from '../store/errors.js';
import { describeDatabase, openStore, parseDatabaseUrl } from '../store/index.js';
import { type CliContext, CommandFailedError, EXIT_OK, UsageError, println } from './context.js';
import { fetchMissingSecret } from './secret-command.js';
import { waitForStopSignal } from './signals.js';

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function registerServeCommand(program: Command, ctx: CliContext): void {
  const command = program
    .command('serve')
    .description(
      'receive Replicate webhooks: verify, store durably, dedupe and fold into one state per prediction',
    );
  for (const setting of SERVE_SETTINGS) {
    if (setting.flag === undefined) continue;
    const flags = setting.valueName ? `--${setting.flag} <${setting.valueName}>` : `--${setting.flag}`;
    const env = setting.env ? ` [env: ${setting.env.join(', ')}]` : '';
    command.option(flags, `${setting.description} (default: ${setting.defaultText})${env}`);
  }
  command.action(async (flags: ServeFlags) => {
    await runServe(flags, ctx);
  });
}

export async function runServe(flags: ServeFlags, ctx: CliContext): Promise<void> {
  // A token and no secret: the account's secret is fetched (exit 2 when that fails).
  const fetched = await fetchMissingSecret(ctx.env);
  const config = parseServeConfig(flags, fetched?.env ?? ctx.env, { isTty: ctx.stdout.isTTY === true });
  // The server's modules (Fastify, pino, prom-client: ~0.2 s) load only for the verbs that run it.
  const { createLogger } = await import('../logger.js');
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, stream: ctx.stdout });
  if (fetched !== undefined) {
    logger.info(
      { api: fetched.baseUrl },
      'webhook secret fetched from Replicate (REPLICATE_API_TOKEN is set and no REPLICATE_WEBHOOK_SECRET was given)',
    );
  }
  // Listen for the signals before the URL line goes out: a SIGTERM that follows it at once must find a
  // handler (without one, Node's default kills the process on the spot, skipping the graceful stop).
  const stopSignal = waitForStopSignal();
  const server = await startServer(config, logger, ctx);
  const stop = await Promise.race([
    stopSignal.then((signal) => ({ signal })),
    server.storeFailed.then((error) => ({ error })),
  ]);
  if ('error' in stop) {
    // The database answered at last, with something no retry mends: stop rather than answer 503 forever.
    await server.inlet.close();
    throw stop.error;
  }
  logger.info({ signal: stop.signal }, 'shutting down: finishing in-flight requests and commits');
  const stoppingAt = performance.now();
  await server.inlet.close();
  logger.info({ durationMs: Math.round(performance.now() - stoppingAt) }, 'stopped');
  ctx.setExitCode(EXIT_OK);
}

/** A store that cannot be opened for good: exit 2 for a setting to fix, 1 for the machine. */
function storeOpenExit(error: StoreOpenError): Error {
  return error.failure === 'configuration'
    ? new UsageError(error.message)
    : new CommandFailedError(error.message);
}

export interface RunningServer {
  inlet: Inlet;
  /** `http://HOST:PORT` with the real port. */
  base: string;
  webhookUrl: string;
  /** Resolves (with the error to exit with) if the store, unreachable at start, later fails for good. */
  storeFailed: Promise<Error>;
}

/** The PEM files of `--tls-cert` / `--tls-key`, checked by building a context once (exit 2 when unusable). */
function readTlsFiles(config: ServeConfig): { cert: Buffer; key: Buffer } {
  const read = (path: string, flag: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new ConfigError(flag, `${flag}: cannot read ${path} (${code}).`);
    }
  };
  const files = { cert: read(config.tlsCert!, '--tls-cert'), key: read(config.tlsKey!, '--tls-key') };
  try {
    createSecureContext(files);
  } catch (error) {
    throw new ConfigError(
      '--tls-cert',
      `--tls-cert / --tls-key: not a usable PEM certificate and matching key (${(error as Error).message}).`,
    );
  }
  return files;
}

/**
 * SIGHUP re-reads the certificate and key (a renewed certificate): new connections get it, open ones
 * keep theirs. A pair that cannot be read or does not match is logged and the old one kept.
 */
function reloadTlsOnHangup(server: TlsServer, config: ServeConfig, logger: Logger): void {
  process.on('SIGHUP', () => {
    try {
      const files = readTlsFiles(config);
      server.setSecureContext(files);
      logger.info({ cert: config.tlsCert }, 'TLS certificate reloaded');
    } catch (error) {
      logger.error(
        { err: (error as Error).message },
        'TLS certificate not reloaded; keeping the current one',
      );
    }
  });
}

/** Listens, opens the store (or keeps retrying it), and prints the webhook URL line. */
export async function startServer(
  config: ServeConfig,
  logger: Logger,
  ctx: CliContext,
): Promise<RunningServer> {
  let database: ReturnType<typeof parseDatabaseUrl>;
  try {
    database = parseDatabaseUrl(config.databaseUrl);
  } catch (error) {
    if (error instanceof InvalidDatabaseUrlError)
      throw new ConfigError('--database', `--database: ${error.message}`);
    throw error;
  }
  // Read before listening: a bad config file stops the start (invalid_config, exit 2).
  const configFile = loadConfigFile(config.configFile, ctx.env);
  if (configFile.path !== undefined) {
    logger.info({ file: configFile.path, destinations: configFile.destinations.length }, 'config file read');
  }
  if (config.insecureSkipVerify) {
    logger.warn(
      '!!! --insecure-skip-verify: unsigned requests are ACCEPTED. Anyone who can reach this port can forge predictions. Development only. !!!',
    );
  }
  if (config.acceptHexSignature) {
    logger.warn(
      '--accept-hex-signature: the X-Replicate-Signature scheme signs no timestamp, so a captured request ' +
        'can be replayed forever (deduplication still stores it once). Prefer the standard webhook-* headers.',
    );
  }

  const store = new DeferredStore(
    database.dialect,
    describeDatabase(database),
    () => openStore(config.databaseUrl, { mode: 'serve', logger }),
    logger,
    { maxConcurrentCommits: 1, multiInstance: false },
  );
  const tls = config.tlsCert === undefined ? undefined : readTlsFiles(config);
  const api = parseReplicateApiConfig(ctx.env);
  if (api.token === undefined) {
    logger.info(
      'reconcile off: REPLICATE_API_TOKEN is not set, so objects whose webhooks stop coming are not fetched from Replicate',
    );
  }
  const { createInlet } = await import('../inlet.js');
  const inlet = createInlet(config, store, logger, {
    timeScale: parseTimeScale(ctx.env),
    destinations: configFile.destinations,
    listenExpiryMs: config.listenExpiryMs,
    ...(tls === undefined ? {} : { https: tls }),
    ...(config.archive === undefined ? {} : { archive: archiveOptionsOf(config, ctx.env) }),
    ...(config.retentionMs === undefined ? {} : { retention: { retentionMs: config.retentionMs } }),
    ...(api.token === undefined ? {} : { reconcile: { api, afterMs: config.reconcileAfterMs } }),
  });
  if (tls !== undefined) reloadTlsOnHangup(inlet.app.server as unknown as TlsServer, config, logger);

  let address: string;
  try {
    address = await inlet.app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await inlet.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new UsageError(
        `Port ${config.port} is already in use on ${config.host}; choose another with --port or PORT.`,
      );
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
      throw new UsageError(
        `Cannot listen on ${config.host}:${config.port} (${code}); check --host and --port.`,
      );
    }
    throw error;
  }
  // Usually the store opens at once; only when it cannot does serve stay up without it (answering 503),
  // and only for faults that may pass: a wrong path, database or schema stops the start.
  await store.connect();
  if (store.failure !== undefined) {
    await inlet.close();
    throw storeOpenExit(store.failure);
  }
  await inlet.start();
  const port = new URL(address).port || String(config.port);
  const base = `${tls === undefined ? 'http' : 'https'}://${urlHost(config.host)}:${port}`;
  const webhookUrl = `${base}${config.webhookPath}`;
  println(ctx.stdout, `Inlet is receiving Replicate webhooks at ${webhookUrl}`);
  logger.info(
    { database: store.location, api: `${base}/api/predictions`, secrets: config.secrets.length },
    'listening',
  );
  return { inlet, base, webhookUrl, storeFailed: store.failed.then(storeOpenExit) };
}
