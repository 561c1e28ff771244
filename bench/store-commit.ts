/**
 * The store's commit path alone, no HTTP: N deliveries (three statuses per prediction, made before the
 * clock starts) committed through `commitEvents` in batches of 18, 8 batches in flight (or
 * `BENCH_BATCH`, `BENCH_IN_FLIGHT`), on a fresh SQLite file (or `BENCH_DATABASE_URL`). Prints the
 * process's CPU per delivery (every thread: the WAL syncs and checkpoints included), deliveries a
 * second and the median and p99 time of one commit, after 10,000 deliveries of warm-up. On PostgreSQL
 * it also prints how the batches were committed (`commitPaths`): with more than one in flight, a
 * prediction split over two batches committing at once makes the second one's guess miss, which
 * `serve`'s batcher never lets happen (one commit per object at a time).
 *
 * `BENCH_FLOOR=1` commits the same batches through the floor's storage instead (`floor-backends.ts`:
 * one row a delivery, the same WAL sync and checkpoints on SQLite), so the two stores compare alone.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json && node dist/.bench/bench/store-commit.js [N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/index.js';
import type { IncomingEvent } from '../src/store/types.js';
import { incomingEvent } from './deliveries.js';
import { postgresBackend, sqliteBackend } from './floor-backends.js';

const N = Number(process.argv[2] ?? 60_000);
const WARMUP = 10_000;
const BATCH = Number(process.env.BENCH_BATCH ?? 18);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);

const dir = mkdtempSync(join(tmpdir(), 'inlet-store-bench-'));
const url = process.env.BENCH_DATABASE_URL ?? `sqlite:${join(dir, 'inlet.db')}`;

interface Committer {
  commit(batch: IncomingEvent[]): Promise<unknown>;
  commitPaths?: unknown;
  close(): Promise<void>;
}

async function floorStore(): Promise<Committer> {
  const backend = url.startsWith('sqlite:')
    ? sqliteBackend(url.slice('sqlite:'.length))
    : await postgresBackend(url);
  return {
    async commit(batch) {
      // As Inlet's store does: a checkpoint that ends may hand over to another before writes resume.
      for (let hold = backend.hold(); hold !== undefined; hold = backend.hold()) await hold;
      const rows = batch.map((event) => ({
        id: event.key,
        prediction: event.object.id,
        status: event.object.status,
        body: event.body,
        done() {},
      }));
      return backend.commit(rows);
    },
    close: () => backend.close(),
  };
}

async function inletStore(): Promise<Committer> {
  const store = await openStore(url, { mode: 'serve' });
  return {
    commit: (batch) => store.commitEvents(batch),
    get commitPaths() {
      return store.commitPaths;
    },
    close: () => store.close(),
  };
}

const store = process.env.BENCH_FLOOR === '1' ? await floorStore() : await inletStore();
const tag = `sc${Date.now().toString(36)}`;
const startMs = Date.now();
const events: IncomingEvent[] = Array.from({ length: WARMUP + N }, (_, i) =>
  incomingEvent(tag, i, startMs + i),
);

let next = 0;
let commitMs: number[] = [];
async function committer(until: number): Promise<void> {
  while (next < until) {
    const batch = events.slice(next, Math.min(until, next + BATCH));
    next += batch.length;
    const begun = performance.now();
    await store.commit(batch);
    commitMs.push(performance.now() - begun);
  }
}
const run = (until: number) => Promise.all(Array.from({ length: IN_FLIGHT }, () => committer(until)));

await run(WARMUP);
commitMs = [];
const cpu = process.cpuUsage();
const started = performance.now();
await run(WARMUP + N);
const used = process.cpuUsage(cpu);
const seconds = (performance.now() - started) / 1000;
commitMs.sort((a, b) => a - b);
const at = (p: number) => commitMs[Math.min(commitMs.length - 1, Math.floor(p * commitMs.length))] ?? NaN;
console.log(
  `${N} deliveries: ${((used.user + used.system) / N).toFixed(1)} µs CPU each, ${Math.round(N / seconds)} deliveries/s, one commit p50 ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms`,
);
if (store.commitPaths !== undefined) console.log(JSON.stringify(store.commitPaths));
await store.close();
rmSync(dir, { recursive: true, force: true });
