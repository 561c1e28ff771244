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
import { loadConfigFile } from '../config-file.js';
import { DeferredStore } from '../store/deferred-store.js';
import { InvalidDatabaseUrlError } from '../store/errors.js';
import { describeDatabase, openStore, parseDatabaseUrl } from '../store/index.js';
import { type CliContext, EXIT_OK, UsageError, println } from './context.js';
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
  const config = parseServeConfig(flags, ctx.env, { isTty: ctx.stdout.isTTY === true });
  // The server's modules (Fastify, pino, prom-client: ~0.2 s) load only for the verbs that run it.
  const { createLogger } = await import('../logger.js');
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, stream: ctx.stdout });
  const server = await startServer(config, logger, ctx);
  const signal = await waitForStopSignal();
  logger.info({ signal }, 'shutting down: finishing in-flight requests and commits');
  await server.inlet.close();
  logger.info('stopped');
  ctx.setExitCode(EXIT_OK);
}

export interface RunningServer {
  inlet: Inlet;
  /** `http://HOST:PORT` with the real port. */
  base: string;
  webhookUrl: string;
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
  const { createInlet } = await import('../inlet.js');
  const inlet = createInlet(config, store, logger, {
    timeScale: parseTimeScale(ctx.env),
    destinations: configFile.destinations,
  });

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
  // Usually the store opens at once; only when it cannot does serve stay up without it (answering 503).
  await store.connect();
  await inlet.start();
  const port = new URL(address).port || String(config.port);
  const base = `http://${urlHost(config.host)}:${port}`;
  const webhookUrl = `${base}${config.webhookPath}`;
  println(ctx.stdout, `Inlet is receiving Replicate webhooks at ${webhookUrl}`);
  logger.info(
    { database: store.location, api: `${base}/api/predictions`, secrets: config.secrets.length },
    'listening',
  );
  return { inlet, base, webhookUrl };
}
