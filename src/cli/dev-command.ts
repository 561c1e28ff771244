import type { Command } from 'commander';
import {
  EMULATOR_PORT_OPTION,
  parseEmulatorPort,
  parseServeConfig,
  settingOption,
  type ServeFlags,
} from '../config.js';
import { createEmulator } from '../emulator/index.js';
import { newWebhookSecret } from '../emulator/random.js';
import { isTerminalStatus } from '../replicate/status.js';
import { type CliContext, EXIT_OK, UsageError, println } from './context.js';
import type { Store } from '../store/types.js';
import type { RunningServer } from '../run.js';
import { startServerForCli } from './serve-command.js';
import { waitForStopSignal } from './signals.js';

interface DevFlags extends ServeFlags {
  emulatorPort?: string;
}

/** The demo predictions `inlet dev` creates through the emulator's API. */
const DEMOS = [
  { model: 'inlet/echo', input: { text: 'Hello from inlet dev' } },
  { model: 'inlet/image', input: { prompt: 'a lighthouse at dusk', n: 2 } },
  { model: 'inlet/stream', input: { prompt: 'why webhooks need a receiver' } },
] as const;

const ALL_EVENTS = ['start', 'output', 'logs', 'completed'];
const DEMO_TIMEOUT_MS = 60_000;

export function registerDevCommand(program: Command, ctx: CliContext): void {
  program
    .command('dev')
    .description('run the Replicate emulator and inlet serve together, offline, with demo predictions')
    .option(...settingOption('port', 'inlet serve port'))
    .option(...EMULATOR_PORT_OPTION)
    .option(...settingOption('databaseUrl', 'database'))
    .option(...settingOption('logLevel', 'serve log level'))
    .action(async (flags: DevFlags) => {
      await runDev(flags, ctx);
    });
}

async function runDev(flags: DevFlags, ctx: CliContext): Promise<void> {
  // One generated secret shared by both sides: nothing to copy, nothing real to leak.
  const secret = newWebhookSecret();
  const withSecret = {
    ...ctx.env,
    REPLICATE_WEBHOOK_SECRET: secret,
    REPLICATE_WEBHOOK_SIGNING_SECRET: undefined,
  };
  // Checked before anything starts; serve's own config (it needs the emulator's URL) follows.
  const checked = parseServeConfig({ host: '127.0.0.1', ...flags }, withSecret, {
    isTty: ctx.stdout.isTTY === true,
  });
  const emulatorPort = parseEmulatorPort(flags, ctx.env);
  const { createLogger } = await import('../logger.js');
  const logger = createLogger({ level: checked.logLevel, format: checked.logFormat, stream: ctx.stdout });

  // Listen for Ctrl-C before the URL lines go out: one right after them, or during the demo set-up
  // below, still stops both cleanly (without a handler Node's default kills the process on the spot).
  const stopSignal = waitForStopSignal();
  // The emulator first: serve polls it for lost webhooks (reconcile) and copies its output files (a
  // file: archive) as it would Replicate's, so the demo shows every part working offline.
  // Inlet's own lines already show every delivery; the emulator speaks up only when something goes wrong.
  const emulatorLogger = logger.child({ component: 'emulator' }, { level: 'warn' });
  const emulator = createEmulator({ secret, logger: emulatorLogger });
  let apiUrl: string;
  try {
    apiUrl = await emulator.listen(emulatorPort, '127.0.0.1');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new UsageError(`Port ${emulatorPort} is already in use; choose another with --emulator-port.`);
    }
    throw error;
  }
  const env = {
    ...withSecret,
    // Never the user's own Replicate account: dev talks to the emulator only.
    REPLICATE_API_TOKEN: 'inlet-dev',
    REPLICATE_BASE_URL: apiUrl,
    INLET_ARCHIVE: ctx.env.INLET_ARCHIVE ?? 'file:./data/archive',
    INLET_ARCHIVE_HOSTS: new URL(apiUrl).hostname,
  };
  const config = parseServeConfig({ host: '127.0.0.1', ...flags }, env, { isTty: ctx.stdout.isTTY === true });
  let server: RunningServer;
  try {
    server = await startServerForCli(config, logger, { ...ctx, env });
  } catch (error) {
    await emulator.close();
    throw error;
  }
  println(ctx.stdout, `Replicate emulator at ${apiUrl} (secret shared with serve: ${secret})`);

  const ids: { id: string; model: string }[] = [];
  for (const demo of DEMOS) {
    const res = await fetch(`${apiUrl}/models/${demo.model}/predictions`, {
      method: 'POST',
      headers: { authorization: 'Bearer inlet-dev', 'content-type': 'application/json' },
      body: JSON.stringify({
        input: demo.input,
        webhook: server.webhookUrl,
        webhook_events_filter: ALL_EVENTS,
      }),
    });
    const body = (await res.json()) as { id?: string; detail?: string };
    if (res.status !== 201 || body.id === undefined) {
      println(
        ctx.stderr,
        `Could not create a demo ${demo.model} prediction: ${res.status} ${body.detail ?? ''}`,
      );
      continue;
    }
    ids.push({ id: body.id, model: demo.model });
  }
  println(
    ctx.stdout,
    `Created ${ids.length} demo predictions: ${ids.map((p) => `${p.id} (${p.model})`).join(', ')}`,
  );
  println(
    ctx.stdout,
    `Look at them:  ${server.base}/ in a browser,  curl -s ${server.base}/api/predictions   or   npx inlet predictions`,
  );
  println(
    ctx.stdout,
    `Make your own:  REPLICATE_API_TOKEN=anything REPLICATE_BASE_URL=${new URL(apiUrl).origin} npx inlet predict inlet/echo -i text=hi --webhook-url ${server.webhookUrl} --wait`,
  );
  println(ctx.stdout, 'Ctrl-C stops both.');

  const watching = watchDemos(ids, server.inlet.store, server.base, ctx);
  const signal = await stopSignal;
  watching.stop();
  logger.info({ signal }, 'shutting down');
  await emulator.close();
  await server.inlet.close();
  logger.info('stopped');
  ctx.setExitCode(EXIT_OK);
}

/**
 * Prints one line per demo prediction as Inlet's folded state reaches its terminal status, then one per
 * output file the archive copied (served by Inlet after the emulator deletes its own copy).
 */
function watchDemos(
  ids: readonly { id: string; model: string }[],
  store: Pick<Store, 'getPrediction' | 'recover'>,
  base: string,
  ctx: CliContext,
): { stop(): void } {
  const pending = new Map(ids.map((p) => [p.id, p.model]));
  /** Succeeded demos whose files the archive may still be copying. */
  const archiving = new Set<string>();
  const shown = new Set<string>();
  const started = Date.now();
  const timer = setInterval(() => {
    void (async () => {
      for (const [id, model] of pending) {
        const record = await store.getPrediction(id).catch(() => undefined);
        if (record && isTerminalStatus(record.status)) {
          pending.delete(id);
          if (record.status === 'succeeded') archiving.add(id);
          println(ctx.stdout, `Demo prediction ${id} (${model}) ${record.status}`);
        }
      }
      for (const id of archiving) {
        const files = await store.recover.listArchiveFiles(id).catch(() => []);
        for (const file of files) {
          const key = `${id} ${file.path}`;
          if (shown.has(key) || (file.sha256 === null && file.error === null)) continue;
          shown.add(key);
          println(
            ctx.stdout,
            file.sha256 === null
              ? `  ${file.path} not archived: ${file.error ?? ''}`
              : `  ${file.path} archived: ${base}/api/files/${file.sha256}`,
          );
        }
        if (files.every((f) => f.sha256 !== null || f.error !== null) && Date.now() - started > 2_000) {
          archiving.delete(id);
        }
      }
      if (pending.size === 0 && archiving.size === 0) {
        clearInterval(timer);
        println(ctx.stdout, `All demo predictions are done: npx inlet predictions`);
      } else if (Date.now() - started > DEMO_TIMEOUT_MS) {
        clearInterval(timer);
        println(
          ctx.stderr,
          `Still waiting for ${[...pending.keys(), ...archiving].join(', ')}: see /api/rejections`,
        );
      }
    })();
  }, 250);
  return { stop: () => clearInterval(timer) };
}
