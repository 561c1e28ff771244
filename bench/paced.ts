import { Agent, request } from 'node:http';
import { signWebhook } from '../src/verify/index.js';
import { predictionBody } from './deliveries.js';

/**
 * An open-loop sender: a steady RATE of distinct, validly signed deliveries (three per prediction, as
 * bench/deliveries.ts makes them), however fast the server answers. The predictions run side by side,
 * as Replicate's do: STREAMS of them at once, each sending its next delivery STREAMS ÷ RATE seconds after
 * its last (1,000 predictions and half a second apart at 2,000 a second), not three back to back. Every
 * millisecond it sends the number of requests due by the clock, never waiting for answers first, and
 * each request's latency runs from the time it was due, not from when it went out: a server that stalls
 * is charged for the requests that queued behind the stall (no coordinated omission, unlike a closed
 * loop such as wrk's).
 *
 * node:http with a keep-alive Agent, not fetch: fetch costs more than a core at 1,000 requests/s here,
 * and the sender shares the machine's two cores with the server it measures.
 */

export interface PacedOptions {
  url: URL;
  secret: string;
  /** Deliveries per second. */
  rate: number;
  /**
   * The warm-up, at least: the window opens once the server has kept up with the load for KEPT_UP_MS
   * (all that time, no request due more than CAUGHT_UP_MS before was still unanswered), or at
   * `maxWarmupSeconds` whether it has or not. A fixed warm-up measured a cold server's backlog on a
   * slow machine: started together, the first 2 s of a 2,000/s load left Inlet ≈ 0.5 s behind, and the
   * window's first 1.75 s were that backlog draining (the whole p99).
   */
  warmupSeconds: number;
  maxWarmupSeconds: number;
  seconds: number;
  /** Sockets at most; requests due beyond them wait in the Agent (and that wait counts). */
  connections: number;
  /** Makes the deliveries of this run distinct from any other's. */
  tag: string;
  /** Predictions in progress at once (1,000 unless set). */
  streams?: number;
}

/**
 * The `predictionBody` sequence number of the n-th delivery sent: the sends go round `streams`
 * predictions, all of them starting, then all processing, then all succeeded, then the next `streams`.
 */
export function interleaved(n: number, streams: number): number {
  const block = Math.floor(n / (3 * streams));
  const stage = Math.floor(n / streams) % 3;
  const prediction = block * streams + (n % streams);
  return prediction * 3 + stage;
}

export interface PacedResult {
  /** Requests due in the measured window. */
  sent: number;
  /** Of those, answered 2xx. */
  answered: number;
  /** Of those, answered otherwise, failed or timed out. */
  errors: number;
  /** Answered ÷ the time from the window's start to the last answer of it. */
  achievedRps: number;
  /** The warm-up it took: when the window opened, from the first request. */
  warmedUpSeconds: number;
  /** Whether the server had caught up by then (false: the window opened at the longest warm-up). */
  caughtUp: boolean;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface PacedRun {
  /** Resolves when the measured window opens (the warm-up's requests are all due). */
  measuring: Promise<void>;
  done: Promise<PacedResult>;
}

const TICK_MS = 1;
const TIMEOUT_MS = 10_000;
/** Keeping up: no request due longer ago than CAUGHT_UP_MS is unanswered, for KEPT_UP_MS on end. */
export const CAUGHT_UP_MS = 25;
export const KEPT_UP_MS = 1000;

export function startPaced(o: PacedOptions): PacedRun {
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections });
  const minWarmup = Math.round(o.rate * o.warmupSeconds);
  const maxWarmup = Math.max(minWarmup, Math.round(o.rate * o.maxWarmupSeconds));
  const measured = Math.round(o.rate * o.seconds);
  // Every request the window can send is built and signed before the clock starts: the sender shares
  // the machine's cores with the server it measures, so the less it does while measuring, the less of
  // its own time is charged to the server. A longer warm-up builds one more for each it sends past the
  // shortest, so the window's are always built before it opens. The timestamps stay well inside the
  // five minutes' tolerance.
  const timestampSec = Math.floor(Date.now() / 1000);
  // Each is dropped once sent.
  const requests: ({ body: Buffer; headers: Record<string, string> } | undefined)[] = [];
  /** Whether each request has settled (answered or failed). */
  const answered: boolean[] = [];
  const build = () => {
    const n = requests.length;
    const body = Buffer.from(predictionBody(o.tag, interleaved(n, o.streams ?? 1000)));
    requests.push({
      body,
      headers: {
        'content-type': 'application/json',
        'content-length': String(body.length),
        ...signWebhook(body, { secret: o.secret, id: `msg_${o.tag}${n}`, timestampSec }),
      },
    });
    answered.push(false);
  };
  while (requests.length < minWarmup + measured) build();
  const started = performance.now();
  const dueAt = (n: number) => started + (n * 1000) / o.rate;
  const latencies: number[] = [];
  let errors = 0;
  /** The window's first request, once it is open; its last is `warmup + measured - 1`. */
  let warmup = Number.POSITIVE_INFINITY;
  let caughtUp = false;
  /** Since when no request due more than CAUGHT_UP_MS before is unanswered (undefined: it is behind). */
  let keptUpSince: number | undefined;
  let lastAnswer = 0;
  /** The oldest request not answered yet (or failed). */
  let oldest = 0;
  const pending: Promise<void>[] = [];

  function send(n: number): Promise<void> {
    const { body, headers } = requests[n]!;
    requests[n] = undefined;
    return new Promise<void>((resolve) => {
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        answered[n] = true;
        while (answered[oldest] === true) oldest++;
        if (n >= warmup) {
          lastAnswer = performance.now();
          if (ok) latencies.push(lastAnswer - dueAt(n));
          else errors++;
        }
        resolve();
      };
      const req = request(o.url, { method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.once('close', () => settle(res.complete && res.statusCode! >= 200 && res.statusCode! < 300));
      });
      req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timed out')));
      req.once('error', () => settle(false));
      req.end(body);
    });
  }

  let opened: () => void;
  const measuring = new Promise<void>((resolve) => (opened = resolve));
  const done = new Promise<PacedResult>((resolve) => {
    let next = 0;
    const tick = () => {
      const now = performance.now();
      const due = Math.floor(((now - started) * o.rate) / 1000) + 1;
      const behind = oldest < next && dueAt(oldest) < now - CAUGHT_UP_MS;
      keptUpSince = behind ? undefined : (keptUpSince ?? now);
      while (next < Math.min(due, warmup + measured)) {
        if (warmup === Number.POSITIVE_INFINITY && next >= minWarmup) {
          caughtUp = keptUpSince !== undefined && now - keptUpSince >= KEPT_UP_MS;
          if (caughtUp || next >= maxWarmup) {
            warmup = next;
            lastAnswer = dueAt(warmup);
            opened();
          } else {
            build();
          }
        }
        const n = next++;
        const p = send(n);
        // Only the measured window's answers are awaited at the end; the warm-up's settle on their own.
        if (n >= warmup) pending.push(p);
      }
      if (next < warmup + measured) setTimeout(tick, TICK_MS);
      else void Promise.all(pending).then(() => resolve(summary()));
    };
    tick();
  });

  function summary(): PacedResult {
    agent.destroy();
    const sorted = latencies.sort((a, b) => a - b);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
    return {
      sent: measured,
      answered: sorted.length,
      errors,
      achievedRps: sorted.length / ((lastAnswer - dueAt(warmup)) / 1000),
      warmedUpSeconds: (dueAt(warmup) - started) / 1000,
      caughtUp,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      maxMs: sorted.at(-1) ?? NaN,
    };
  }

  return { measuring, done };
}
