import type { Command } from 'commander';
import { parseArchiveSetting, settingOption, type ServeFlags } from '../config.js';
import { DURATION_HINT, parseDurationMs } from '../duration.js';
import type { PruneCounts, PruneProgress, PruneReport } from '../retention/prune.js';
import { type CliContext, EXIT_OK, UsageError, println } from './context.js';
import { openCliStore } from './open-store.js';

const ROWS: readonly [keyof PruneCounts, string][] = [
  ['events', 'events'],
  ['transitions', 'transitions'],
  ['messages', 'delivered messages'],
  ['message_attempts', 'their attempts'],
  ['rejections', 'rejections'],
  ['files', 'archived files'],
];

/** `\r`-redrawn on a terminal; nothing when stderr is not one (the summary still goes to stdout). */
function progressBar(ctx: CliContext): ((p: PruneProgress) => void) | undefined {
  const err = ctx.stderr as CliContext['stderr'] & { isTTY?: boolean };
  if (err.isTTY !== true) return undefined;
  let last = '';
  return (p) => {
    const width = 30;
    const filled = Math.round(p.fraction * width);
    const total = ROWS.reduce((sum, [key]) => (key === 'message_attempts' ? sum : sum + p.deleted[key]), 0);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(p.fraction * 100)}%  ${p.table}  ${total.toLocaleString('en-US')} rows`;
    if (line === last) return;
    last = line;
    err.write(`\r${line}\x1b[K`);
  };
}

function summary(report: PruneReport): string[] {
  const width = Math.max(...ROWS.map(([, label]) => label.length));
  const lines = ROWS.filter(([key]) => key !== 'files' || report.deleted.files > 0).map(
    ([key, label]) => `  ${label.padEnd(width)}  ${report.deleted[key].toLocaleString('en-US')}`,
  );
  const head = report.dryRun
    ? `Would delete (dry run: nothing deleted), older than ${new Date(report.cutoffMs).toISOString()}:`
    : `Deleted, older than ${new Date(report.cutoffMs).toISOString()}, in ${(report.durationMs / 1000).toFixed(1)} s:`;
  const out = [head, ...lines];
  if (report.laggingConsumer !== undefined) {
    out.push(
      `Older transitions (and their events) are kept until consumer "${report.laggingConsumer.name}" fans them out (it is at ${report.laggingConsumer.position}); disable it if it is gone.`,
    );
  }
  return out;
}

export function registerPruneCommand(program: Command, ctx: CliContext): void {
  program
    .command('prune')
    .description(
      'delete events, transitions, delivered messages and rejections older than a duration (folded states and undelivered messages stay)',
    )
    .requiredOption('--older-than <duration>', `what to delete: ${DURATION_HINT}`)
    .option('--dry-run', 'count what would be deleted, per table, and delete nothing')
    .option(
      '--archive <dest>',
      'also remove archived files no row names any more: file:DIR or s3://BUCKET/PREFIX [env: INLET_ARCHIVE]',
    )
    .option(...settingOption('databaseUrl', 'the database'))
    .action(async (flags: ServeFlags & { olderThan: string; dryRun?: boolean }) => {
      const ageMs = parseDurationMs(flags.olderThan);
      if (ageMs === undefined) {
        throw new UsageError(`--older-than must be ${DURATION_HINT}; got "${flags.olderThan}".`);
      }
      const destination = parseArchiveSetting(flags, ctx.env);
      const dryRun = flags.dryRun === true;
      const store = await openCliStore(flags, ctx, dryRun ? 'read' : 'write');
      const { runPrune } = await import('../retention/prune.js');
      const { createArchiveStorage } = await import('../archive/index.js');
      const archive = destination === undefined ? undefined : createArchiveStorage(destination);
      const onProgress = progressBar(ctx);
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
      try {
        const report = await runPrune(store, {
          cutoffMs: Date.now() - ageMs,
          dryRun,
          signal: abort.signal,
          ...(archive === undefined ? {} : { archive }),
          ...(onProgress === undefined ? {} : { onProgress }),
        });
        if (onProgress !== undefined) ctx.stderr.write('\n');
        for (const line of summary(report)) println(ctx.stdout, line);
        ctx.setExitCode(EXIT_OK);
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
        await archive?.close?.();
        await store.close();
      }
    });
}
