import type { Command } from 'commander';
import { loadConfigFile } from '../config-file.js';
import { parseTimeScale, settingOption, type ServeFlags } from '../config.js';
import { storedDestinations } from '../jobs/destinations.js';
import type { ReplayProgress, ReplayRequest } from '../jobs/replay.js';
import { InvalidQueryError, parseRfc3339Bound, parseSeqQuery } from '../server/api-query.js';
import { MESSAGE_STATES, type MessageState } from '../store/job-types.js';
import type { Store } from '../store/types.js';
import { createWorker } from '../worker.js';
import { type CliContext, EXIT_CHECK_FAILED, EXIT_OK, UsageError, println } from './context.js';
import { openCliStore } from './open-store.js';
import { openReadSource, type ReadSource, type SourceFlags, TOKEN_FLAG, URL_FLAG } from './read-source.js';
import { runUntilStopped } from './run-until-stopped.js';

const DATABASE_FLAG = settingOption('databaseUrl', 'the database');

/**
 * Works on the database or, with `--url`, a running Inlet's API, like the read verbs: a database is
 * never created (CONTRACT §6); verbs that change something open it for writing once it is known to exist.
 */
async function withSource<T>(
  flags: SourceFlags,
  ctx: CliContext,
  access: 'read' | 'write',
  run: (source: ReadSource) => Promise<T>,
): Promise<T> {
  const source = await openReadSource(flags, ctx, access);
  try {
    return await run(source);
  } finally {
    await source.close();
  }
}

/** The worker's database (it runs here: no `--url`). */
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

function noDestination(source: ReadSource, name: string, ctx: CliContext): void {
  println(
    ctx.stderr,
    `No destination "${name}" in ${source.location} (destinations are created when \`inlet serve\` starts with them in its config).`,
  );
  ctx.setExitCode(EXIT_CHECK_FAILED);
}

function noMessage(source: ReadSource, id: string, ctx: CliContext): void {
  println(ctx.stderr, `No message "${id}" in ${source.location}.`);
  ctx.setExitCode(EXIT_CHECK_FAILED);
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
  const destinations = program.command('destinations').description('destinations and their state');

  destinations
    .command('list', { isDefault: true })
    .description('every destination: enabled, pending and dead messages, last delivery')
    .option('--json', 'print the API JSON ({data})')
    .option(...DATABASE_FLAG)
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(async (flags: SourceFlags & { json?: boolean }) => {
      await withSource(flags, ctx, 'read', async (source) => {
        const data = await source.listDestinations();
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
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(async (name: string, flags: SourceFlags & { json?: boolean }) => {
      await withSource(flags, ctx, 'read', async (source) => {
        const view = await source.getDestination(name);
        if (view === undefined) return noDestination(source, name, ctx);
        printJson(ctx, view);
      });
    });

  destinations
    .command('enable <name>')
    .description('resume a disabled destination where it stopped (or skip ahead with --from now)')
    .option('--from <now>', '"now": skip what waited (kept as dead messages) and start at the end of the log')
    .option(...DATABASE_FLAG)
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(async (name: string, flags: SourceFlags & { from?: string }) => {
      if (flags.from !== undefined && flags.from !== 'now') throw new UsageError('--from takes only "now".');
      await withSource(flags, ctx, 'write', async (source) => {
        const fromNow = flags.from === 'now';
        if ((await source.enableDestination(name, fromNow)) === undefined) {
          return noDestination(source, name, ctx);
        }
        println(ctx.stdout, `Enabled ${name}${fromNow ? ' from now' : ''}.`);
      });
    });

  destinations
    .command('disable <name>')
    .description('stop sending to a destination (its position stays)')
    .option(...DATABASE_FLAG)
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(async (name: string, flags: SourceFlags) => {
      await withSource(flags, ctx, 'write', async (source) => {
        if ((await source.disableDestination(name)) === undefined) return noDestination(source, name, ctx);
        println(ctx.stdout, `Disabled ${name}.`);
      });
    });

  destinations
    .command('test <name>')
    .description('send one inlet.test message (signed for HTTP) and print the answer')
    .option(...DATABASE_FLAG)
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(async (name: string, flags: SourceFlags) => {
      await withSource(flags, ctx, 'read', async (source) => {
        const result = await source.testDestination(name);
        if (result === undefined) return noDestination(source, name, ctx);
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
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(
      async (
        flags: SourceFlags & {
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
        await withSource(flags, ctx, 'read', async (source) => {
          const page = await source.listMessages(
            {
              limit: seq.limit,
              ...(seq.after === undefined ? {} : { after: seq.after }),
              ...(state === undefined ? {} : { state }),
              ...(flags.destination === undefined ? {} : { consumer: flags.destination }),
              ...(flags.prediction === undefined ? {} : { objectId: flags.prediction }),
            },
            {
              state: flags.state,
              destination: flags.destination,
              prediction_id: flags.prediction,
              limit: flags.limit,
              cursor: flags.cursor,
            },
          );
          if (flags.json === true) return printJson(ctx, page);
          if (page.data.length === 0) return println(ctx.stdout, 'No messages.');
          const rows = [['ID', 'DESTINATION', 'TYPE', 'PREDICTION', 'STATE', 'ATTEMPTS', 'LAST']];
          for (const m of page.data) {
            const status = typeof m.last_status === 'number' ? String(m.last_status) : '';
            const error = typeof m.last_error === 'string' ? m.last_error : null;
            rows.push([
              String(m.id),
              String(m.destination),
              String(m.type),
              String(m.prediction_id),
              String(m.state),
              String(m.attempts),
              error === null ? status || '-' : `${status} ${error}`.trim(),
            ]);
          }
          println(ctx.stdout, table(rows));
          if (page.next_cursor !== null) {
            println(ctx.stdout, '(more: raise --limit, or page with --json and --cursor)');
          }
        });
      },
    );

  messages
    .command('show <id>')
    .description('one message with its attempt log')
    .option(...DATABASE_FLAG)
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(async (id: string, flags: SourceFlags) => {
      await withSource(flags, ctx, 'read', async (source) => {
        const message = await source.getMessage(id);
        if (message === undefined) return noMessage(source, id, ctx);
        printJson(ctx, message);
      });
    });

  messages
    .command('retry [id]')
    .description('a dead message becomes pending now (same id); --all-dead for every dead one')
    .option('--all-dead', 'every dead message (of --destination)')
    .option('--destination <name>', 'with --all-dead: one destination')
    .option(...DATABASE_FLAG)
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(
      async (id: string | undefined, flags: SourceFlags & { allDead?: boolean; destination?: string }) => {
        if ((id === undefined) === (flags.allDead !== true)) {
          throw new UsageError(
            'Name one message id, or pass --all-dead (with --destination NAME to narrow it).',
          );
        }
        await withSource(flags, ctx, 'write', async (source) => {
          if (id !== undefined) {
            const result = await source.retryMessage(id);
            if (result === 'not_found') return noMessage(source, id, ctx);
            if (result === 'not_dead') {
              println(ctx.stderr, `Message "${id}" is not dead; only a dead message is retried (conflict).`);
              ctx.setExitCode(EXIT_CHECK_FAILED);
              return;
            }
            println(ctx.stdout, `Retrying ${id}: pending now.`);
            return;
          }
          const count = await source.retryDead(flags.destination);
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
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(
      async (
        ids: string[],
        flags: SourceFlags & {
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
        const dryRun = flags.dryRun === true;
        await withSource(flags, ctx, dryRun ? 'read' : 'write', async (source) => {
          const onProgress = progressBar(ctx);
          const count = await source.replay(request, {
            dryRun,
            ...(onProgress === undefined ? {} : { onProgress }),
          });
          if (count === undefined) return noDestination(source, flags.to, ctx);
          const noun = `message${count === 1 ? '' : 's'}`;
          println(
            ctx.stdout,
            dryRun
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
  const format = ctx.stdout.isTTY === true ? 'pretty' : 'json';
  const logger = createLogger({ level: 'info', format, stream: ctx.stdout });
  await withStore(flags, ctx, 'write', async (store) => {
    const destinations =
      configFile.path !== undefined
        ? configFile.destinations
        : storedDestinations(await store.jobs.listConsumers('destination'));
    const worker = createWorker(store, logger, { destinations, timeScale });
    if (flags.once === true) {
      const attempted = await worker.jobs.runner.runOnce();
      println(ctx.stdout, `Attempted ${attempted} message${attempted === 1 ? '' : 's'}.`);
      await worker.jobs.runner.stop();
      return;
    }
    await runUntilStopped(worker.services, {
      running: () =>
        logger.info(
          { destinations: destinations.map((d) => d.name), database: store.location },
          'worker running',
        ),
      stopping: (signal) => logger.info({ signal }, 'worker stopping: finishing attempts in flight'),
    });
    ctx.setExitCode(EXIT_OK);
  });
}
