import { readFileSync } from 'node:fs';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { archiveOptionsOf } from './archive/archive-options.js';
import { loadConfigFile } from './config-file.js';
import { ConfigError, parseTimeScale, type Env, type ServeConfig } from './config.js';
import { createInlet, type Inlet } from './inlet.js';
import { parseReplicateApiConfig } from './replicate-settings.js';
import { DeferredStore } from './store/deferred-store.js';
import { capabilitiesBeforeOpen } from './store/dialects.js';
import type { StoreOpenError } from './store/errors.js';
import { describeDatabase, openStore } from './store/index.js';

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export interface RunningServer {
  inlet: Inlet;
  /** `http://HOST:PORT` with the real port. */
  base: string;
  webhookUrl: string;
  /** Resolves (with why) if the store, unreachable at start, later fails for good. */
  storeFailed: Promise<StoreOpenError>;
}

export interface StartServerOptions {
  /** The environment the settings outside `ServeConfig` come from (`REPLICATE_API_TOKEN`, `INLET_TIME_SCALE`…). */
  env: Env;
  /** Called once listening and started, before the `listening` log line (the CLI prints the URL line). */
  announce?: (server: { base: string; webhookUrl: string }) => void;
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

/**
 * `serve`'s start-up: reads the config file, listens, opens the store (or keeps retrying it), then
 * starts the services. Throws `ConfigError` for a setting to fix and `StoreOpenError` for a store that
 * cannot open for good; the caller maps them to exit codes.
 */
export async function startServer(
  config: ServeConfig,
  logger: Logger,
  options: StartServerOptions,
): Promise<RunningServer> {
  const { env } = options;
  // Read before listening: a bad config file stops the start (invalid_config, exit 2).
  const configFile = loadConfigFile(config.configFile, env);
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
    config.database.dialect,
    describeDatabase(config.database),
    () => openStore(config.database, { mode: 'serve', logger }),
    logger,
    capabilitiesBeforeOpen(config.database.dialect),
  );
  const tls = config.tlsCert === undefined ? undefined : readTlsFiles(config);
  const api = parseReplicateApiConfig(env);
  if (api.token === undefined) {
    logger.info(
      'reconcile off: REPLICATE_API_TOKEN is not set, so objects whose webhooks stop coming are not fetched from Replicate',
    );
  }
  const inlet = createInlet(config, store, logger, {
    timeScale: parseTimeScale(env),
    destinations: configFile.destinations,
    listenExpiryMs: config.listenExpiryMs,
    ...(tls === undefined ? {} : { https: tls }),
    ...(config.archive === undefined ? {} : { archive: archiveOptionsOf(config, env) }),
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
      throw new ConfigError(
        '--port',
        `Port ${config.port} is already in use on ${config.host}; choose another with --port or PORT.`,
      );
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
      throw new ConfigError(
        '--host',
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
    throw store.failure;
  }
  await inlet.start();
  const port = new URL(address).port || String(config.port);
  const base = `${tls === undefined ? 'http' : 'https'}://${urlHost(config.host)}:${port}`;
  const webhookUrl = `${base}${config.webhookPath}`;
  options.announce?.({ base, webhookUrl });
  logger.info(
    { database: store.location, api: `${base}/api/predictions`, secrets: config.secrets.length },
    'listening',
  );
  return { inlet, base, webhookUrl, storeFailed: store.failed };
}
