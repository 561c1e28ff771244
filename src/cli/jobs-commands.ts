import type { Command } from 'commander';
import { loadConfigFile } from '../config-file.js';
import { parseTimeScale, type ServeFlags } from '../config.js';
import { JobService } from '../jobs/job-service.js';
import { httpDestinationOf, storedDestinations } from '../jobs/destinations.js';
import { createDeliverer } from '../jobs/create-deliverer.js';
import { destinationView, messageDetailView, messagePageView } from '../jobs/job-views.js';
import { replay, type ReplayProgress, type ReplayRequest } from '../jobs/replay.js';
import { InvalidQueryError, parseRfc3339Bound, parseSeqQuery } from '../server/api-query.js';
import { sendTestMessage } from '../server/jobs-routes.js';
import { MESSAGE_STATES, type MessageState } from '../store/job-types.js';
import type { Store } from '../store/types.js';
import { type CliContext, EXIT_CHECK_FAILED, EXIT_OK, UsageError, println } from './context.js';
import { openCliStore } from './open-store.js';
import { waitForStopSignal } from './signals.js';

const DATABASE_FLAG = [
  '--database <url>',
  'the database (default: sqlite:./data/inlet.db) [env: DATABASE_URL]',
] as const;

/**
 * Opens the local database like the read verbs: never creates one (CONTRACT §6). Verbs that change
 * something (retry, enable, replay) open it for writing once it is known to exist.
 */
async function withStore<T>(
  flags: ServeFlags,
  ctx: CliContext,
  access: 'read' | 'write',
  run: (store: Store) => Promise<T>,
): Promise<T> {
  const store = await openCliStore(flags, ctx, access);
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

function printJson(ctx: CliContext, value: unknown): void {
  println(ctx.stdout, JSON.stringify(value, null, 2));
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof InvalidQueryError) {
      throw new UsageError(error.message.replace(/"([a-z_]+)"/, (_, name: string) => `--${name}`));
    }
    throw error;
  }
}

function parseState(state: string | undefined): MessageState | undefined {
  if (state === undefined) return undefined;
  if (!(MESSAGE_STATES as readonly string[]).includes(state)) {
    throw new UsageError(`--state must be one of ${MESSAGE_STATES.join(', ')}; got "${state}".`);
  }
  return state as MessageState;
}

async function destinationOrExit(store: Store, name: string, ctx: CliContext) {
  const consumer = await store.jobs.getConsumer(name);
  if (consumer === undefined || consumer.kind !== 'destination') {
    println(
      ctx.stderr,
      `No destination "${name}" in ${store.location} (destinations are created when \`inlet serve\` starts with them in its config).`,
    );
    ctx.setExitCode(EXIT_CHECK_FAILED);
    return undefined;
  }
  return consumer;
}

function progressBar(ctx: CliContext): ((p: ReplayProgress) => void) | undefined {
  const err = ctx.stderr as CliContext['stderr'] & { isTTY?: boolean };
  if (err.isTTY !== true) return undefined;
  return (p) => {
    const ratio = p.lastSeq === 0 ? 1 : Math.min(1, p.seq / p.lastSeq);
    const width = 30;
    const filled = Math.round(ratio * width);
    err.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(ratio * 100)}%  ${p.matched} matched`,
    );
    if (ratio >= 1) err.write('\n');
  };
}

export function registerJobsCommands(program: Command, ctx: CliContext): void {
  const destinations = program.command('destinations').description('HTTP destinations and their state');

  destinations
    .command('list', { isDefault: true })
    .description('every destination: enabled, pending and dead messages, last delivery')
    .option('--json', 'print the API JSON ({data})')
    .option(...DATABASE_FLAG)
    .action(async (flags: ServeFlags & { json?: boolean }) => {
      await withStore(flags, ctx, 'read', async (store) => {
        const data = [];
        for (const c of await store.jobs.listConsumers('destination')) {
          data.push(destinationView(c, await store.jobs.consumerStats(c.name)));
        }
        if (flags.json === true) return printJson(ctx, { data });
        if (data.length === 0) return println(ctx.stdout, 'No destinations yet.');
        const rows = [['NAME', 'ENABLED', 'PENDING', 'DEAD', 'LAST DELIVERED', 'URL']];
        for (const d of data) {
          rows.push([
            String(d.name),
            d.enabled === true ? 'yes' : `no (${String(d.disabled_reason)})`,
            String(d.pending),
            String(d.dead),
            typeof d.last_delivered_at === 'string' ? d.last_delivered_at : '-',
            String(d.url),
          ]);
        }
        println(ctx.stdout, table(rows));
      });
    });

  destinations
    .command('show <name>')
    .description('one destination, with the secret its messages are signed with')
    .option('--json', 'print JSON')
    .option(...DATABASE_FLAG)
    .action(async (name: string, flags: ServeFlags & { json?: boolean }) => {
      await withStore(flags, ctx, 'read', async (store) => {
        const consumer = await destinationOrExit(store, name, ctx);
        if (consumer === undefined) return;
        const view = {
          ...destinationView(consumer, await store.jobs.consumerStats(name)),
          secret: consumer.secret,
          config: consumer.config,
        };
        printJson(ctx, view);
      });
    });

  destinations
    .command('enable <name>')
    .description('resume a disabled destination where it stopped (or skip ahead with --from now)')
    .option('--from <now>', '"now": skip what waited (kept as dead messages) and start at the end of the log')
    .option(...DATABASE_FLAG)
    .action(async (name: string, flags: ServeFlags & { from?: string }) => {
      if (flags.from !== undefined && flags.from !== 'now') throw new UsageError('--from takes only "now".');
      await withStore(flags, ctx, 'write', async (store) => {
        if ((await destinationOrExit(store, name, ctx)) === undefined) return;
        let position: number | undefined;
        if (flags.from === 'now') {
          const log = store.transitions;
          position = await log.lastTransitionSeq();
        }
        await store.jobs.setConsumerEnabled(name, {
          enabled: true,
          nowMs: Date.now(),
          ...(position === undefined ? {} : { position }),
        });
        println(ctx.stdout, `Enabled ${name}${position === undefined ? '' : ' from now'}.`);
      });
    });

  destinations
    .command('disable <name>')
    .description('stop sending to a destination (its position stays)')
    .option(...DATABASE_FLAG)
    .action(async (name: string, flags: ServeFlags) => {
      await withStore(flags, ctx, 'write', async (store) => {
        if ((await destinationOrExit(store, name, ctx)) === undefined) return;
        await store.jobs.setConsumerEnabled(name, {
          enabled: false,
          reason: 'disabled by an operator',
          nowMs: Date.now(),
        });
        println(ctx.stdout, `Disabled ${name}.`);
      });
    });

  destinations
    .command('test <name>')
    .description('send one signed inlet.test message and print the answer')
    .option(...DATABASE_FLAG)
    .action(async (name: string, flags: ServeFlags) => {
      await withStore(flags, ctx, 'read', async (store) => {
        const consumer = await destinationOrExit(store, name, ctx);
        if (consumer === undefined) return;
        const result = await sendTestMessage(createDeliverer(httpDestinationOf(consumer)), name, Date.now());
        printJson(ctx, result);
        if (result.outcome !== 'delivered') ctx.setExitCode(EXIT_CHECK_FAILED);
      });
    });

  const messages = program.command('messages').description('messages to destinations: list, show, retry');

  messages
    .command('list', { isDefault: true })
    .description('messages, newest first')
    .option('--state <state>', 'pending, delivered or dead')
    .option('--destination <name>', 'one destination')
    .option('--prediction <id>', 'one prediction')
    .option('--limit <n>', 'how many (1-200)', '50')
    .option('--cursor <cursor>', 'the next_cursor of a previous --json page')
    .option('--json', 'print the API JSON ({data, next_cursor})')
    .option(...DATABASE_FLAG)
    .action(
      async (
        flags: ServeFlags & {
          state?: string;
          destination?: string;
          prediction?: string;
          limit?: string;
          cursor?: string;
          json?: boolean;
        },
      ) => {
        const state = parseState(flags.state);
        const seq = usage(() => parseSeqQuery({ limit: flags.limit, cursor: flags.cursor }));
        await withStore(flags, ctx, 'read', async (store) => {
          const page = await store.jobs.listMessages({
            limit: seq.limit,
            ...(seq.after === undefined ? {} : { after: seq.after }),
            ...(state === undefined ? {} : { state }),
            ...(flags.destination === undefined ? {} : { consumer: flags.destination }),
            ...(flags.prediction === undefined ? {} : { objectId: flags.prediction }),
          });
          if (flags.json === true) return printJson(ctx, messagePageView(page));
          if (page.items.length === 0) return println(ctx.stdout, 'No messages.');
          const rows = [['ID', 'DESTINATION', 'TYPE', 'PREDICTION', 'STATE', 'ATTEMPTS', 'LAST']];
          for (const m of page.items) {
            const status = m.lastStatus === null ? '' : String(m.lastStatus);
            rows.push([
              m.id,
              m.consumer,
              m.type,
              m.objectId,
              m.state,
              String(m.attempts),
              m.lastError === null ? status || '-' : `${status} ${m.lastError}`.trim(),
            ]);
          }
          println(ctx.stdout, table(rows));
          if (page.hasMore) println(ctx.stdout, '(more: raise --limit, or page with --json and --cursor)');
        });
      },
    );

  messages
    .command('show <id>')
    .description('one message with its attempt log')
    .option(...DATABASE_FLAG)
    .action(async (id: string, flags: ServeFlags) => {
      await withStore(flags, ctx, 'read', async (store) => {
        const message = await store.jobs.getMessage(id);
        if (message === undefined) {
          println(ctx.stderr, `No message "${id}" in ${store.location}.`);
          ctx.setExitCode(EXIT_CHECK_FAILED);
          return;
        }
        printJson(ctx, messageDetailView(message));
      });
    });

  messages
    .command('retry [id]')
    .description('a dead message becomes pending now (same id); --all-dead for every dead one')
    .option('--all-dead', 'every dead message (of --destination)')
    .option('--destination <name>', 'with --all-dead: one destination')
    .option(...DATABASE_FLAG)
    .action(
      async (id: string | undefined, flags: ServeFlags & { allDead?: boolean; destination?: string }) => {
        if ((id === undefined) === (flags.allDead !== true)) {
          throw new UsageError(
            'Name one message id, or pass --all-dead (with --destination NAME to narrow it).',
          );
        }
        await withStore(flags, ctx, 'write', async (store) => {
          if (id !== undefined) {
            const result = await store.jobs.retryMessage(id, Date.now());
            if (result === 'not_found') {
              println(ctx.stderr, `No message "${id}" in ${store.location}.`);
              ctx.setExitCode(EXIT_CHECK_FAILED);
            } else if (result === 'not_dead') {
              println(ctx.stderr, `Message "${id}" is not dead; only a dead message is retried (conflict).`);
              ctx.setExitCode(EXIT_CHECK_FAILED);
            } else {
              println(ctx.stdout, `Retrying ${id}: pending now.`);
            }
            return;
          }
          const count = await store.jobs.retryDead(flags.destination, Date.now());
          println(ctx.stdout, `Retrying ${count} dead message${count === 1 ? '' : 's'}: pending now.`);
        });
      },
    );

  program
    .command('replay [ids...]')
    .description('send transitions to a destination again (the same message ids where they existed)')
    .requiredOption('--to <name>', 'the destination')
    .option('--since <time>', 'transitions recorded at or after (RFC 3339)')
    .option('--until <time>', 'transitions recorded at or before (RFC 3339)')
    .option('--status <status>', 'the status right after the transition (one or a comma list)')
    .option('--model <owner/name>', 'exact model')
    .option(
      '--types <types>',
      'transition types or patterns, comma separated (default: the destination’s events)',
    )
    .option('--dry-run', 'count what would be sent, send nothing')
    .option(...DATABASE_FLAG)
    .action(
      async (
        ids: string[],
        flags: ServeFlags & {
          to: string;
          since?: string;
          until?: string;
          status?: string;
          model?: string;
          types?: string;
          dryRun?: boolean;
        },
      ) => {
        const request: ReplayRequest = { destination: flags.to };
        if (ids.length > 0) request.predictionIds = ids;
        if (flags.since !== undefined)
          request.sinceMs = usage(() => parseRfc3339Bound(flags.since!, 'since'));
        if (flags.until !== undefined)
          request.untilMs = usage(() => parseRfc3339Bound(flags.until!, 'until'));
        if (flags.status !== undefined) request.statuses = flags.status.split(',').map((s) => s.trim());
        if (flags.model !== undefined) request.model = flags.model;
        if (flags.types !== undefined) request.types = flags.types.split(',').map((s) => s.trim());
        if (ids.length === 0 && request.sinceMs === undefined && request.untilMs === undefined) {
          throw new UsageError('Name prediction ids, or a time window with --since and/or --until.');
        }
        await withStore(flags, ctx, flags.dryRun === true ? 'read' : 'write', async (store) => {
          const consumer = await destinationOrExit(store, flags.to, ctx);
          if (consumer === undefined) return;
          const log = store.transitions;
          const onProgress = progressBar(ctx);
          const count = await replay(log, store.jobs, consumer, request, {
            nowMs: Date.now(),
            dryRun: flags.dryRun === true,
            ...(onProgress === undefined ? {} : { onProgress }),
          });
          const noun = `message${count === 1 ? '' : 's'}`;
          println(
            ctx.stdout,
            flags.dryRun === true
              ? `Would replay ${count} ${noun} to ${flags.to} (dry run: nothing sent).`
              : `Replaying ${count} ${noun} to ${flags.to}.`,
          );
        });
      },
    );

  program
    .command('worker')
    .description(
      'run the message runner alone (no webhook listener): deliver to destinations from the same database',
    )
    .option('--once', 'one pass (fan out, attempt what is due, record), then exit')
    .option(
      '--config <file>',
      'the config file with the destinations (default: INLET_CONFIG, else ./inlet.config.json when it exists, else those serve stored at its last start)',
    )
    .option(...DATABASE_FLAG)
    .action(async (flags: ServeFlags & { once?: boolean; config?: string }) => {
      await runWorker(flags, ctx);
    });
}

async function runWorker(
  flags: ServeFlags & { once?: boolean; config?: string },
  ctx: CliContext,
): Promise<void> {
  const timeScale = parseTimeScale(ctx.env);
  // A bad config file stops the worker as it stops serve (invalid_config, exit 2).
  const configFile = loadConfigFile(flags.config, ctx.env);
  const { createLogger } = await import('../logger.js');
  const logger = createLogger({
    level: 'info',
    format: ctx.stdout.isTTY === true ? 'pretty' : 'json',
    stream: ctx.stdout,
  });
  await withStore(flags, ctx, 'write', async (store) => {
    const log = store.transitions;
    const destinations =
      configFile.path !== undefined
        ? configFile.destinations
        : storedDestinations(await store.jobs.listConsumers('destination'));
    const service = new JobService({ jobs: store.jobs, log, destinations, logger, timeScale });
    if (flags.once === true) {
      const attempted = await service.runner.runOnce();
      println(ctx.stdout, `Attempted ${attempted} message${attempted === 1 ? '' : 's'}.`);
      await service.runner.stop();
      return;
    }
    const stopSignal = waitForStopSignal();
    await service.start();
    // The runner's timers do not hold the process open; this does until a stop signal.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    logger.info(
      { destinations: destinations.map((d) => d.name), database: store.location },
      'worker running',
    );
    const signal = await stopSignal;
    logger.info({ signal }, 'worker stopping: finishing attempts in flight');
    await service.stop();
    clearInterval(keepAlive);
    ctx.setExitCode(EXIT_OK);
  });
}
