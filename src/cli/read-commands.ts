import type { Command } from 'commander';
import { settingOption } from '../config.js';
import { KNOWN_STATUSES } from '../replicate/status.js';
import { jsonText } from '../json-text.js';
import { InvalidQueryError, parsePredictionQuery } from '../server/api-query.js';
import { type CliContext, EXIT_CHECK_FAILED, UsageError, println } from './context.js';
import { openReadSource, type ReadSource, type SourceFlags, TOKEN_FLAG, URL_FLAG } from './read-source.js';

const DATABASE_FLAG = settingOption('databaseUrl', 'the database to read');

async function withSource<T>(
  flags: SourceFlags,
  ctx: CliContext,
  run: (source: ReadSource) => Promise<T>,
): Promise<T> {
  const source = await openReadSource(flags, ctx);
  try {
    return await run(source);
  } finally {
    await source.close();
  }
}

function printJson(ctx: CliContext, value: unknown): void {
  // jsonText, not JSON.stringify: a stored body may be nested deeper than JSON.stringify can go.
  println(ctx.stdout, jsonText(value, 2));
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
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(
      async (
        flags: SourceFlags & {
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
        await withSource(flags, ctx, async (source) => {
          const page = await source.listPredictions(query, {
            status: flags.status,
            model: flags.model,
            q: flags.search,
            limit: flags.limit,
            cursor: flags.cursor,
          });
          if (flags.json === true) {
            printJson(ctx, page);
            return;
          }
          if (page.data.length === 0) {
            const filters = [
              ['status', flags.status],
              ['model', flags.model],
              ['q', flags.search],
              ['cursor', flags.cursor],
            ].filter((f): f is [string, string] => f[1] !== undefined && f[1] !== '');
            const stored = await source.countPredictions();
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
          for (const item of page.data) {
            rows.push([
              String(item.id),
              String(item.status),
              typeof item.model === 'string' ? item.model : '-',
              String(item.kind),
              String(item.event_count),
              String(item.last_received_at),
            ]);
          }
          println(ctx.stdout, table(rows));
          if (page.next_cursor !== null)
            println(ctx.stdout, `(more: raise --limit, or page with --json and --cursor)`);
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
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(async (id: string, flags: SourceFlags & { json?: boolean }) => {
      await withSource(flags, ctx, async (source) => {
        const view = await source.getPrediction(id);
        if (!view) {
          println(ctx.stderr, `No prediction "${id}" in ${source.location}.`);
          ctx.setExitCode(EXIT_CHECK_FAILED);
          return;
        }
        if (flags.json === true) {
          printJson(ctx, view);
          return;
        }
        printJson(ctx, view);
        const events = await source.listEvents(id, 200);
        println(ctx.stdout);
        const rows = [['EVENT', 'RECEIVED', 'STATUS', 'SCHEME', 'DUPLICATES', 'CONFLICT']];
        for (const e of events) {
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
    .option(...URL_FLAG)
    .option(...TOKEN_FLAG)
    .action(async (id: string, flags: SourceFlags & { json?: boolean }) => {
      await withSource(flags, ctx, async (source) => {
        const view = await source.getEvent(id);
        if (!view) {
          println(ctx.stderr, `No event "${id}" in ${source.location}.`);
          ctx.setExitCode(EXIT_CHECK_FAILED);
          return;
        }
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
