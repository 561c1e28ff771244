import { setFlagsFromString } from 'node:v8';

/**
 * How much V8 lets the old generation grow past what the last full collection left alive before it
 * collects again: 50 %, a factor of 1.5. V8 otherwise picks the factor itself, up to 4, from how fast
 * it collects against how fast the program allocates. Under steady webhook load on PostgreSQL it chose
 * a large one: 5 full collections a run instead of 14–15, and a peak RSS of 150–192 MiB instead of
 * 126–132, for the same time spent collecting on the event loop (fewer, shorter scavenges make up for
 * the full collections) and the same throughput (docs/benchmarks.md, "What was changed").
 */
export const HEAP_GROWING_PERCENT = 50;

/** The verbs that run for hours and take load: the rest exit within seconds. */
const LONG_RUNNING_VERBS: ReadonlySet<string> = new Set(['serve', 'dev', 'worker']);

/**
 * The V8 flag to set for this command line, or undefined: only for the long-running verbs, and never
 * over a `--heap-growing-percent` the operator gave Node (`node --heap-growing-percent=0 …` keeps V8's own).
 */
export function heapGrowthFlag(args: readonly string[], execArgv: readonly string[]): string | undefined {
  if (!LONG_RUNNING_VERBS.has(args[0] ?? '')) return undefined;
  if (execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg))) return undefined;
  return `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}

/** Sets the flag, if any, for this process; called once by the `inlet` executable, never by the library. */
export function tuneHeapGrowth(
  args: readonly string[],
  execArgv: readonly string[] = process.execArgv,
): void {
  const flag = heapGrowthFlag(args, execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
}
