/**
 * The runner's delivery rate on SQLite: N transitions (ingested first, through the store's commit path, into the real log) to one HTTP destination on
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
import type { IncomingEvent } from '../src/store/types.js';

const N = Number(process.argv[2] ?? 20_000);
const MAX_IN_FLIGHT = Number(process.argv[3] ?? 32);

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
const destination = DestinationSchema.parse({
  name: 'bench',
  url: receiver.url,
  events: ['*'],
  allowPrivateNetwork: true,
  maxInFlight: MAX_IN_FLIGHT,
});
const makeService = () =>
  new JobService({
    jobs: store.jobs,
    log: store.transitions,
    destinations: [destination],
    pollIntervalMs: 50,
  });
// A new consumer starts at the end of the log: register it first (start, stop), then ingest, then time a runner.
const registering = makeService();
await registering.start();
await registering.stop();
// N transitions through the real ingest path: each prediction starts, then succeeds.
const now = Date.now();
const events: IncomingEvent[] = [];
for (let i = 1; i <= N; i++) {
  const id = `p${Math.ceil(i / 2)}`;
  const object = {
    id,
    status: i % 2 === 1 ? 'starting' : 'succeeded',
    model: 'acme/painter',
    output: i % 2 === 1 ? null : ['https://example.com/a.png'],
  };
  const body = Buffer.from(JSON.stringify(object));
  events.push({
    key: `evt_${i}`,
    scheme: 'standard',
    receivedAtMs: now + i,
    webhookTimestampSec: Math.floor(now / 1000) + i,
    headers: { 'content-type': 'application/json' },
    body,
    object,
  });
}
for (let i = 0; i < events.length; i += 500) await store.commitEvents(events.slice(i, i + 500));
const lastSeq = await store.transitions.lastTransitionSeq();
const service = makeService();
await service.start();
const startedAt = performance.now();
service.runner.wake();
for (;;) {
  const { position } = (await store.jobs.getConsumer('bench'))!;
  if (position === lastSeq && (await store.jobs.nextDueAtMs('bench')) === undefined) break;
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
