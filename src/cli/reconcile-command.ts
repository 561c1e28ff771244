import { openCliStore } from './open-store.js';
import type { Command } from 'commander';
import { parseReconcileAfterMs, settingOption, type ServeFlags } from '../config.js';
import { CommitBatcher } from '../ingest/commit-batcher.js';
import { logRetries } from '../reconcile/index.js';
import { ReconcileService, type PollReport } from '../reconcile/reconcile-service.js';
import { ReplicateClient } from '../replicate/client.js';
import type { Store } from '../store/types.js';
import { type CliContext, EXIT_CHECK_FAILED, EXIT_OK, println } from './context.js';
import { replicateApiOrExit } from './secret-command.js';

interface ReconcileFlags extends ServeFlags {
  dryRun?: boolean;
}

export function registerReconcileCommand(program: Command, ctx: CliContext): void {
  program
    .command('reconcile')
    .description(
      'one reconcile pass now: fetch from Replicate every unfinished object whose webhooks stopped (or that inlet predict created) and store what it answers',
    )
    .option('--dry-run', 'fetch and print what would change; store nothing')
    .option(...settingOption('databaseUrl', 'the database'))
    .action(async (flags: ReconcileFlags) => {
      ctx.setExitCode(await runReconcile(flags, ctx));
    });
}

/** One line per object: `ID  old → new  what happened`. */
function reportLine(report: PollReport): string {
  const from = report.from ?? '(never received)';
  const to = report.to ?? from;
  const what: Record<PollReport['outcome'], string> = {
    changed: `${report.dryRun ? 'would be stored' : 'stored'}${report.from === report.to ? ' (new output or logs)' : ''}`,
    unchanged: 'no change',
    not_found: 'unknown to Replicate: no more polls',
    expired: 'first seen over a day ago: given up',
    already_terminal: 'already ended: no more polls',
    waiting: 'webhooks are arriving: not polled',
    failed: `failed: ${report.error ?? 'unknown error'}`,
  };
  return `${report.id}  ${from} → ${to}  ${what[report.outcome]}${report.done && report.outcome === 'changed' ? ' (done)' : ''}`;
}

async function runReconcile(flags: ReconcileFlags, ctx: CliContext): Promise<number> {
  const api = replicateApiOrExit(ctx.env);
  const afterMs = parseReconcileAfterMs(flags, ctx.env);
  const dryRun = flags.dryRun === true;
  // Never creates a database; a real pass opens it for writing once it is known to exist.
  const store: Store = await openCliStore(flags, ctx, dryRun ? 'read' : 'write');
  const { createLogger } = await import('../logger.js');
  const logger = createLogger({ level: 'warn', format: 'json', stream: ctx.stderr });
  const batcher = new CommitBatcher(store, { commitTimeoutMs: 30_000, logger });
  const stderrLogger = {
    info: () => undefined,
    error: (_: object, msg?: string) => println(ctx.stderr, msg ?? ''),
    warn: (_: object, msg?: string) => println(ctx.stderr, msg ?? ''),
  };
  try {
    const service = new ReconcileService({
      store,
      fetcher: new ReplicateClient(api, { onRetry: logRetries(stderrLogger) }),
      // No webhook listener here: the commit batcher is ingest's way into the store.
      sink: { ingestEvent: (event) => batcher.submit(event) },
      afterMs,
      timeScale: api.timeScale,
      logger: stderrLogger,
    });
    const reports = await service.runOnce({ dryRun, all: true });
    for (const report of reports) println(ctx.stdout, reportLine(report));
    const changed = reports.filter((r) => r.outcome === 'changed').length;
    const failed = reports.filter((r) => r.outcome === 'failed').length;
    if (reports.length === 0) {
      println(ctx.stdout, `Nothing to reconcile: no unfinished object has been quiet for ${afterMs} ms.`);
    } else {
      const noun = `object${reports.length === 1 ? '' : 's'}`;
      println(
        ctx.stdout,
        dryRun
          ? `Dry run: ${reports.length} ${noun} looked at, ${changed} would change; nothing stored.`
          : `${reports.length} ${noun} looked at, ${changed} changed, ${failed} failed.`,
      );
    }
    return failed > 0 ? EXIT_CHECK_FAILED : EXIT_OK;
  } finally {
    await batcher.drain();
    await store.close();
  }
}
