/**
 * The store's commit path alone, no HTTP: N deliveries (three statuses per prediction, made before the
 * clock starts) committed through `commitEvents` in batches of 18, 8 batches in flight, on a fresh
 * SQLite file (or `BENCH_DATABASE_URL`). Prints the process's CPU per delivery (every thread: the WAL
 * syncs and checkpoints included) and deliveries a second, after 10,000 deliveries of warm-up.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json && node dist/.bench/bench/store-commit.js [N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/index.js';
import type { IncomingEvent } from '../src/store/types.js';
import { incomingEvent } from './deliveries.js';

const N = Number(process.argv[2] ?? 60_000);
const WARMUP = 10_000;
const BATCH = 18;
const IN_FLIGHT = 8;

const dir = mkdtempSync(join(tmpdir(), 'inlet-store-bench-'));
const store = await openStore(process.env.BENCH_DATABASE_URL ?? `sqlite:${join(dir, 'inlet.db')}`, {
  mode: 'serve',
});
const tag = `sc${Date.now().toString(36)}`;
const startMs = Date.now();
const events: IncomingEvent[] = Array.from({ length: WARMUP + N }, (_, i) =>
  incomingEvent(tag, i, startMs + i),
);

let next = 0;
async function committer(until: number): Promise<void> {
  while (next < until) {
    const batch = events.slice(next, Math.min(until, next + BATCH));
    next += batch.length;
    await store.commitEvents(batch);
  }
}
const run = (until: number) => Promise.all(Array.from({ length: IN_FLIGHT }, () => committer(until)));

await run(WARMUP);
const cpu = process.cpuUsage();
const started = performance.now();
await run(WARMUP + N);
const used = process.cpuUsage(cpu);
const seconds = (performance.now() - started) / 1000;
console.log(
  `${N} deliveries: ${((used.user + used.system) / N).toFixed(1)} µs CPU each, ${Math.round(N / seconds)} deliveries/s`,
);
await store.close();
rmSync(dir, { recursive: true, force: true });
