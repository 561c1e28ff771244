/**
 * The runner's delivery rate on SQLite: N transitions (already in the log) to one HTTP destination on
 * loopback whose receiver (bare node:http, in its own process) answers 200 at once. Counts fan-out,
 * claims, signed POSTs and recorded outcomes: messages/s from the first claim to the last recorded
 * delivery.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json && node dist/.bench/bench/runner-throughput.js [N] [maxInFlight]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DestinationSchema } from '../src/jobs/destination-config.js';
import { JobService } from '../src/jobs/job-service.js';
import { openStore } from '../src/store/index.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { TransitionLog, TransitionQuery, TransitionRecord } from '../src/store/transition-types.js';

const N = Number(process.argv[2] ?? 20_000);
const MAX_IN_FLIGHT = Number(process.argv[3] ?? 32);

class MemoryLog implements TransitionLog {
  readonly rows: TransitionRecord[] = [];
  readonly #byId = new Map<string, TransitionRecord>();
  append(row: TransitionRecord): void {
    this.rows.push(row);
    this.#byId.set(row.id, row);
  }
  async listTransitions(q: TransitionQuery): Promise<TransitionRecord[]> {
    // seq = index + 1
    return this.rows.slice(q.afterSeq, q.afterSeq + q.limit);
  }
  async lastTransitionSeq(): Promise<number> {
    return this.rows.length;
  }
  async getTransition(id: string): Promise<TransitionRecord | undefined> {
    return this.#byId.get(id);
  }
}

async function startReceiver(): Promise<{ url: string; stop(): void }> {
  const server = fileURLToPath(new URL('./bare-server.js', import.meta.url));
  const child = spawn(process.execPath, [server], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const m = /(http:\/\/\S+)/.exec(chunk.toString());
      if (m?.[1] !== undefined) resolve(m[1]);
    });
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

const dir = await mkdtemp(join(tmpdir(), 'inlet-runner-bench-'));
const receiver = await startReceiver();
// BENCH_DATABASE_URL=postgres://… measures PostgreSQL instead (a fresh database or schema).
const store = process.env.BENCH_DATABASE_URL
  ? await openStore(process.env.BENCH_DATABASE_URL, { mode: 'serve' })
  : await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
const log = new MemoryLog();
const destination = DestinationSchema.parse({
  name: 'bench',
  url: receiver.url,
  events: ['*'],
  allowPrivateNetwork: true,
  maxInFlight: MAX_IN_FLIGHT,
});
const service = new JobService({ jobs: store.jobs, log, destinations: [destination], pollIntervalMs: 50 });
await service.start();

const body = Buffer.from(
  JSON.stringify({
    id: 'x',
    status: 'succeeded',
    model: 'acme/painter',
    output: ['https://example.com/a.png'],
  }),
);
const now = Date.now();
for (let i = 1; i <= N; i++) {
  const objectId = `p${Math.ceil(i / 2)}`;
  log.append({
    seq: i,
    id: `tr_${i}`,
    type: i % 2 === 1 ? 'prediction.started' : 'prediction.completed',
    objectId,
    kind: 'prediction',
    model: 'acme/painter',
    status: i % 2 === 1 ? 'starting' : 'succeeded',
    eventKey: `evt_${i}`,
    recordedAtMs: now,
    eventCount: 1,
    firstReceivedAtMs: now,
    lastReceivedAtMs: now,
    body,
  });
}
const startedAt = performance.now();
service.runner.wake();
for (;;) {
  const { position } = (await store.jobs.getConsumer('bench'))!;
  if (position === N && (await store.jobs.nextDueAtMs('bench')) === undefined) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const seconds = (performance.now() - startedAt) / 1000;
const delivered = (await store.jobs.listMessages({ consumer: 'bench', state: 'delivered', limit: N })).items
  .length;
console.log(
  `runner on ${store.dialect}: ${delivered} of ${N} messages delivered in ${seconds.toFixed(2)} s = ${Math.round(
    delivered / seconds,
  )} messages/s (maxInFlight ${MAX_IN_FLIGHT}, ordered, receiver: bare node:http in its own process)`,
);
await service.stop();
await store.close();
receiver.stop();
await rm(dir, { recursive: true, force: true });
