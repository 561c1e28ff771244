import type { Command } from 'commander';
import type { Logger } from 'pino';
import { parseServeConfig, SERVE_SETTINGS, type ServeConfig, type ServeFlags } from '../config.js';
import type { RunningServer } from '../run.js';
import { StoreOpenError } from '../store/errors.js';
import { type CliContext, CommandFailedError, EXIT_OK, UsageError, println } from './context.js';
import { fetchMissingSecret } from './secret-command.js';
import { waitForStopSignal } from './signals.js';

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

async function runServe(flags: ServeFlags, ctx: CliContext): Promise<void> {
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
  const server = await startServerForCli(config, logger, ctx);
  const stop = await Promise.race([
    stopSignal.then((signal) => ({ signal })),
    server.storeFailed.then((error) => ({ error: storeOpenExit(error) })),
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

/**
 * The core's start-up (`src/run.ts`) with the CLI's part: the URL line on stdout, and a store that
 * cannot open mapped to its exit code.
 */
export async function startServerForCli(
  config: ServeConfig,
  logger: Logger,
  ctx: CliContext,
): Promise<RunningServer> {
  // The server's modules (Fastify, prom-client: ~0.2 s) load only for the verbs that run it.
  const { startServer } = await import('../run.js');
  try {
    return await startServer(config, logger, {
      env: ctx.env,
      announce: ({ webhookUrl }) =>
        println(ctx.stdout, `Inlet is receiving Replicate webhooks at ${webhookUrl}`),
    });
  } catch (error) {
    if (error instanceof StoreOpenError) throw storeOpenExit(error);
    throw error;
  }
}
