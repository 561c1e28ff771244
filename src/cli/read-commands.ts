import type { Command } from 'commander';
import { ConfigError, parseDatabaseSetting, type ServeFlags } from '../config.js';
import { KNOWN_STATUSES } from '../replicate/status.js';
import { InvalidQueryError, parsePredictionQuery } from '../server/api-query.js';
import { DatabaseNotFoundError, InvalidDatabaseUrlError, StoreUnavailableError } from '../store/errors.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { eventDetailView, eventView, predictionPageView, predictionView } from '../views.js';
import { type CliContext, CommandFailedError, EXIT_CHECK_FAILED, UsageError, println } from './context.js';

const DATABASE_FLAG = [
  '--database <url>',
  'the database to read (default: sqlite:./data/inlet.db) [env: DATABASE_URL]',
] as const;

/** Opens the database read-only in spirit: never creates one (CONTRACT §6). */
async function withStore<T>(
  flags: ServeFlags,
  ctx: CliContext,
  run: (store: Store) => Promise<T>,
): Promise<T> {
  const url = parseDatabaseSetting(flags, ctx.env);
  let store: Store;
  try {
    store = await openStore(url, { mode: 'read' });
  } catch (error) {
    if (error instanceof DatabaseNotFoundError) throw new UsageError(error.message);
    if (error instanceof StoreUnavailableError) {
      throw new CommandFailedError(`Cannot read the database: ${error.message}`);
    }
    if (error instanceof InvalidDatabaseUrlError)
      throw new ConfigError('--database', `--database: ${error.message}`);
    throw error;
  }
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

export function registerReadCommands(program: Command, ctx: CliContext): void {
  const predictions = program
    .command('predictions')
    .description('list and inspect folded predictions and trainings');

  const list = predictions
    .command('list', { isDefault: true })
    .description('list predictions, most recently updated first (the default: `inlet predictions` lists)')
    .option('--status <status>', `one status or a comma list (${KNOWN_STATUSES.join(', ')})`)
    .option('--model <owner/name>', 'exact model')
    .option('-q, --search <text>', 'substring of the id or model')
    .option('--limit <n>', 'how many (1-200)', '50')
    .option('--cursor <cursor>', 'the next_cursor of a previous --json page')
    .option('--json', 'print the API JSON ({data, next_cursor})')
    .option(...DATABASE_FLAG)
    .action(
      async (
        flags: ServeFlags & {
          status?: string;
          model?: string;
          search?: string;
          limit?: string;
          cursor?: string;
          json?: boolean;
        },
      ) => {
        let query;
        try {
          query = parsePredictionQuery({
            status: flags.status,
            model: flags.model,
            q: flags.search,
            limit: flags.limit,
            cursor: flags.cursor,
          });
        } catch (error) {
          if (error instanceof InvalidQueryError)
            throw new UsageError(
              error.message.replace(/"(limit|status|cursor)"/, (_, name: string) => `--${name}`),
            );
          throw error;
        }
        // The API takes any status (Replicate may add some); a person typing one means a known one.
        const unknown = query.statuses?.filter((s) => !(KNOWN_STATUSES as readonly string[]).includes(s));
        if (unknown !== undefined && unknown.length > 0) {
          throw new UsageError(
            `--status: unknown status ${unknown.map((s) => `"${s}"`).join(', ')}; the statuses are ${KNOWN_STATUSES.join(', ')}.`,
          );
        }
        await withStore(flags, ctx, async (store) => {
          const page = await store.listPredictions(query);
          if (flags.json === true) {
            printJson(ctx, predictionPageView(page));
            return;
          }
          if (page.items.length === 0) {
            const filters = [
              ['status', flags.status],
              ['model', flags.model],
              ['q', flags.search],
              ['cursor', flags.cursor],
            ].filter((f): f is [string, string] => f[1] !== undefined && f[1] !== '');
            const stored = await store.countPredictions();
            if (filters.length === 0 || stored === 0) {
              println(ctx.stdout, 'No predictions yet.');
            } else {
              const what = filters.map(([name, value]) => `${name}=${value}`).join(', ');
              const count = `${stored} prediction${stored === 1 ? '' : 's'} stored`;
              println(ctx.stdout, `No predictions match ${what}; ${count}.`);
            }
            return;
          }
          const rows = [['ID', 'STATUS', 'MODEL', 'KIND', 'EVENTS', 'LAST RECEIVED']];
          for (const item of page.items) {
            rows.push([
              item.id,
              item.status,
              item.model ?? '-',
              item.kind,
              String(item.eventCount),
              new Date(item.lastReceivedAtMs).toISOString(),
            ]);
          }
          println(ctx.stdout, table(rows));
          if (page.hasMore) println(ctx.stdout, `(more: raise --limit, or page with --json and --cursor)`);
        });
      },
    );

  predictions.addHelpText(
    'after',
    () =>
      `\nOptions of list (what \`inlet predictions\` runs):\n` +
      list.options.map((o) => `  ${o.flags.padEnd(28)} ${o.description}`).join('\n'),
  );

  predictions
    .command('show <id>')
    .description('one folded prediction with its events')
    .option('--json', 'print only the API JSON of the prediction')
    .option(...DATABASE_FLAG)
    .action(async (id: string, flags: ServeFlags & { json?: boolean }) => {
      await withStore(flags, ctx, async (store) => {
        const record = await store.getPrediction(id);
        if (!record) {
          println(ctx.stderr, `No prediction "${id}" in ${store.location}.`);
          ctx.setExitCode(EXIT_CHECK_FAILED);
          return;
        }
        const view = predictionView(record);
        if (flags.json === true) {
          printJson(ctx, view);
          return;
        }
        printJson(ctx, view);
        const events = await store.listEvents(id, { limit: 200 });
        println(ctx.stdout);
        const rows = [['EVENT', 'RECEIVED', 'STATUS', 'SCHEME', 'DUPLICATES', 'CONFLICT']];
        for (const e of events.items.map(eventView)) {
          rows.push([
            String(e.id),
            String(e.received_at),
            String(e.status),
            String(e.scheme),
            String(e.duplicates),
            e.conflict ? 'yes' : '',
          ]);
        }
        println(ctx.stdout, table(rows));
      });
    });

  const events = program.command('events').description('inspect stored deliveries');
  events
    .command('show <id>')
    .description('one stored delivery: headers (redacted) and the raw body')
    .option('--json', 'print the API JSON')
    .option(...DATABASE_FLAG)
    .action(async (id: string, flags: ServeFlags & { json?: boolean }) => {
      await withStore(flags, ctx, async (store) => {
        const record = await store.getEvent(id);
        if (!record) {
          println(ctx.stderr, `No event "${id}" in ${store.location}.`);
          ctx.setExitCode(EXIT_CHECK_FAILED);
          return;
        }
        const view = eventDetailView(record);
        if (flags.json === true) {
          printJson(ctx, view);
          return;
        }
        const { headers, body, body_base64, ...meta } = view;
        printJson(ctx, meta);
        println(ctx.stdout);
        for (const [name, value] of Object.entries(headers as Record<string, string>))
          println(ctx.stdout, `${name}: ${value}`);
        println(ctx.stdout);
        println(ctx.stdout, typeof body === 'string' ? body : `(not UTF-8; base64) ${String(body_base64)}`);
      });
    });
}
