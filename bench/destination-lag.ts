/**
 * Consumer lag under a steady load: `inlet serve` on a fresh SQLite file with two destinations (every
 * transition type) takes RATE signed deliveries per second for SECONDS (starting, processing and
 * succeeded per prediction, paced every 10 ms); a receiver answers 200 at once and records, for each
 * message, now − the message's `timestamp` (when Inlet recorded the transition). Prints p50/p99/max.
 *
 * A fresh process is slow for its first seconds (modules still compiling, a cold JIT), and a backlog
 * formed then takes a while to work off: that is not the lag of a server taking 1,000 deliveries/s.
 * So the same load first runs for LAG_WARMUP_SECONDS (default 3; 0 for none) and its lag is printed on
 * its own line; then, once every message of it has arrived, the measured SECONDS.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json && node dist/.bench/bench/destination-lag.js [RATE] [SECONDS]
 *
 * LAG_MAX_IN_FLIGHT sets both destinations' `maxInFlight` (default 10); LAG_CPU_PROF_DIR writes a CPU
 * profile of `serve` there when it exits; LAG_TIMELINE=1 prints, per half second, the messages received
 * and their longest lag.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signWebhook } from '../src/verify/index.js';
import { serveArgs } from './serve-command.js';

const RATE = Number(process.argv[2] ?? 1000);
const SECONDS = Number(process.argv[3] ?? 10);
const WARMUP_SECONDS = Number(process.env.LAG_WARMUP_SECONDS ?? 3);
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const BIN = fileURLToPath(new URL('../../../dist/cli/bin.js', import.meta.url));

let lags: number[] = [];
/** LAG_TIMELINE=1: per half second of receipt, messages received and their longest lag. */
const timeline = new Map<number, { messages: number; maxLag: number }>();
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { timestamp: string };
    const lag = Date.now() - Date.parse(body.timestamp);
    lags.push(lag);
    if (process.env.LAG_TIMELINE) {
      const slot = Math.floor(performance.now() / 500);
      const entry = timeline.get(slot) ?? { messages: 0, maxLag: 0 };
      entry.messages++;
      entry.maxLag = Math.max(entry.maxLag, lag);
      timeline.set(slot, entry);
    }
    res.writeHead(200).end();
  });
});
receiver.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverPort = (receiver.address() as AddressInfo).port;

const work = mkdtempSync(join(tmpdir(), 'inlet-lag-'));
const config = join(work, 'inlet.config.json');
writeFileSync(
  config,
  JSON.stringify({
    destinations: ['one', 'two'].map((name) => ({
      name,
      url: `http://127.0.0.1:${receiverPort}/${name}`,
      events: ['prediction.*'],
      allowPrivateNetwork: true,
      ...(process.env.LAG_MAX_IN_FLIGHT ? { maxInFlight: Number(process.env.LAG_MAX_IN_FLIGHT) } : {}),
    })),
  }),
);
const serve = spawn(
  process.execPath,
  serveArgs(BIN, `sqlite:${join(work, 'inlet.db')}`, ['--config', config], process.env.LAG_CPU_PROF_DIR),
  {
    env: {
      PATH: process.env.PATH,
      REPLICATE_WEBHOOK_SECRET: SECRET,
      INLET_LOG_FORMAT: 'json',
      INLET_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const base = await new Promise<string>((resolve) => {
  let out = '';
  serve.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /receiving Replicate webhooks at (http:\/\/\S+?)\/replicate-webhook/.exec(out);
    if (m?.[1] !== undefined) resolve(m[1]);
  });
});

// node:http with keep-alive, not fetch: fetch costs more than a core at 1,000 requests/s on this
// machine, and the load generator shares the two cores with the server it measures.
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const target = new URL(`${base}/replicate-webhook`);
let sent = 0;
let failed = 0;
const inFlight = new Set<Promise<void>>();
function deliver(phase: string, n: number): void {
  const id = `${phase}${Math.floor(n / 3)}`;
  const status = ['starting', 'processing', 'succeeded'][n % 3]!;
  const body = JSON.stringify({
    id,
    model: 'acme/painter',
    version: 'v1',
    input: { prompt: 'a cat' },
    status,
    logs: status === 'starting' ? '' : 'step 1\n',
    output: status === 'succeeded' ? ['https://example.com/a.png'] : null,
  });
  const headers = {
    'content-type': 'application/json',
    ...signWebhook(body, {
      secret: SECRET,
      id: `msg_${phase}${n}`,
      timestampSec: Math.floor(Date.now() / 1000),
    }),
  };
  const p = new Promise<void>((resolve) => {
    const req = request(target, { method: 'POST', agent, headers }, (res) => {
      if (res.statusCode !== 200) failed++;
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => {
      failed++;
      resolve();
    });
    req.end(body);
  }).finally(() => inFlight.delete(p));
  inFlight.add(p);
}

/** Sends RATE deliveries per second for `seconds`, then waits until the messages stop coming. */
async function phase(name: string, seconds: number): Promise<string> {
  lags = [];
  timeline.clear();
  sent = 0;
  failed = 0;
  const started = performance.now();
  const total = RATE * seconds;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE));
      while (sent < due) deliver(name, sent++);
      if (sent >= total) resolve();
      else setTimeout(tick, 10);
    };
    tick();
  });
  await Promise.all(inFlight);
  const loadSeconds = (performance.now() - started) / 1000;
  // Everything sent: wait until the messages stop coming (2 s of silence), bounded.
  let last = lags.length;
  for (let quiet = 0; quiet < 20;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    quiet = lags.length === last ? quiet + 1 : 0;
    last = lags.length;
  }
  const sorted = [...lags].sort((a, b) => a - b);
  const pct = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
  return `${sent} deliveries in ${loadSeconds.toFixed(1)} s (${Math.round(sent / loadSeconds)}/s, ${failed} not 200) -> ${lags.length} messages to 2 destinations; lag (receipt − transition recorded) p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${sorted.at(-1)} ms`;
}

if (WARMUP_SECONDS > 0) {
  console.log(
    `warm-up, the first ${WARMUP_SECONDS} s of a fresh process: ${await phase('warm', WARMUP_SECONDS)}`,
  );
}
console.log(await phase('lag', SECONDS));
if (process.env.LAG_TIMELINE) {
  const first = Math.min(...timeline.keys());
  for (const [slot, { messages, maxLag }] of timeline) {
    console.log(`  ${((slot - first) / 2).toFixed(1)} s: ${messages} messages, longest lag ${maxLag} ms`);
  }
}
serve.kill('SIGTERM');
await new Promise((resolve) => serve.on('exit', resolve));
agent.destroy();
receiver.close();
receiver.closeAllConnections();
rmSync(work, { recursive: true, force: true });
