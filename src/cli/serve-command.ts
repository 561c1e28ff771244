import type { Command } from 'commander';
import { ConfigError, parseServeConfig, SERVE_SETTINGS, type ServeFlags } from '../config.js';
import { createInlet } from '../inlet.js';
import { createLogger } from '../logger.js';
import { DeferredStore } from '../store/deferred-store.js';
import { InvalidDatabaseUrlError } from '../store/errors.js';
import { describeDatabase, openStore, parseDatabaseUrl } from '../store/index.js';
import { type CliContext, EXIT_OK, UsageError, println } from './context.js';

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
  let database: ReturnType<typeof parseDatabaseUrl>;
  try {
    database = parseDatabaseUrl(config.databaseUrl);
  } catch (error) {
    if (error instanceof InvalidDatabaseUrlError)
      throw new ConfigError('--database', `--database: ${error.message}`);
    throw error;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, stream: ctx.stdout });
  if (config.insecureSkipVerify) {
    logger.warn(
      '!!! --insecure-skip-verify: unsigned requests are ACCEPTED. Anyone who can reach this port can forge predictions. Development only. !!!',
    );
  }

  const store = new DeferredStore(
    database.dialect,
    describeDatabase(database),
    () => openStore(config.databaseUrl, { mode: 'serve', logger }),
    logger,
    { maxConcurrentCommits: 1, multiInstance: false },
  );
  const inlet = createInlet(config, store, logger);
  // Usually the store opens at once; only when it cannot does serve listen without it (answering 503).
  await store.firstAttempt();

  let address: string;
  try {
    address = await inlet.app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await store.close();
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
  const port = new URL(address).port || String(config.port);
  const base = `http://${urlHost(config.host)}:${port}`;
  println(ctx.stdout, `Inlet is receiving Replicate webhooks at ${base}${config.webhookPath}`);
  logger.info(
    { database: store.location, api: `${base}/api/predictions`, secrets: config.secrets.length },
    'listening',
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  // A second signal while draining means "now".
  const force = () => process.exit(1);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  logger.info({ signal }, 'shutting down: finishing in-flight requests and commits');
  await inlet.close();
  logger.info('stopped');
  ctx.setExitCode(EXIT_OK);
}
