/**
 * Retention (CONTRACT §13) on a large database while deliveries keep arriving. The acceptance figure is
 * a million deliveries: `INLET_PRUNE_ROWS=1000000 npx vitest run test/prune.test.ts` (docs/benchmarks.md);
 * CI runs a tenth of it. The stall is measured twice: as the commits of the store a prune runs on (p99
 * under 100 ms), and as the signed deliveries POSTed to `serve` (p99 and longest, compared with the same
 * load just before the prune: other processes on the machine delay HTTP answers too).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runPrune } from '../src/retention/prune.js';
import { makeEvent } from '../src/store/store-contract.test-suite.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { signWebhook } from '../src/verify/index.js';
import { SECRET, tempDir } from './helpers.js';
import { buildPruneFixture, DAY_MS, expectedPrune, type PruneFixture } from './prune-fixture.js';
import { runCli, startServe, stop, type RunningServer } from './process-helpers.js';

const DELIVERIES = Number(process.env.INLET_PRUNE_ROWS ?? 100_000);
/** The longest any delivery may wait while a prune runs (the acceptance criterion). */
const MAX_STALL_MS = Number(process.env.INLET_PRUNE_MAX_STALL_MS ?? 100);
/**
 * The longest single commit in the store's process: it also catches the machine's own hiccups (other
 * processes on two cores, a checkpoint's write stuck behind the kernel's writeback), so it is bounded
 * loosely there. A prune in one transaction per table stalls for seconds and fails it.
 */
const MAX_COMMIT_MS = Number(process.env.INLET_PRUNE_MAX_COMMIT_MS ?? 250);
const TIMEOUT_MS = Math.max(60_000, DELIVERIES / 5);

interface Sample {
  startMs: number;
  endMs: number;
  status: number;
}

/** Signed deliveries POSTed by `lanes` senders one after another each, until `stop()`. */
function keepDelivering(base: string, lanes = 2) {
  const samples: Sample[] = [];
  let running = true;
  let n = 0;
  const lane = async (laneId: number) => {
    while (running) {
      n += 1;
      const id = `live${laneId}x${n}`;
      const body = JSON.stringify({ id, status: 'processing', model: 'acme/painter', logs: `tick ${n}` });
      const headers = signWebhook(body, {
        secret: SECRET,
        id: `msg_${id}`,
        timestampSec: Math.floor(Date.now() / 1000),
      });
      const startMs = performance.now();
      const res = await fetch(`${base}/replicate-webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      await res.arrayBuffer();
      samples.push({ startMs, endMs: performance.now(), status: res.status });
    }
  };
  const done = Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
  return {
    samples,
    async stop() {
      running = false;
      await done;
    },
  };
}

function stallWhile(samples: readonly Sample[], fromMs: number, toMs: number) {
  const during = samples.filter((s) => s.endMs >= fromMs && s.startMs <= toMs);
  const latencies = during.map((s) => s.endMs - s.startMs).sort((a, b) => a - b);
  return {
    deliveries: during.length,
    statuses: [...new Set(during.map((s) => s.status))],
    maxMs: Math.round(latencies.at(-1) ?? 0),
    p99Ms: Math.round(latencies[Math.floor(latencies.length * 0.99)] ?? 0),
  };
}

/**
 * Deliveries answered while a prune ran wait no longer than the same load just before it: the longest
 * within 100 ms (or twice the longest before), and the p99 within 100 ms (or twice the p99 before), which
 * a prune that holds the write lock too long raises for every delivery behind it.
 */
function expectNoStall(stall: ReturnType<typeof stallWhile>, baseline: ReturnType<typeof stallWhile>): void {
  expect(stall.maxMs).toBeLessThanOrEqual(Math.max(MAX_STALL_MS, 2 * baseline.maxMs));
  expect(stall.p99Ms).toBeLessThanOrEqual(Math.max(MAX_STALL_MS, 2 * baseline.p99Ms));
}

function tableCounts(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    return {
      objects: count('SELECT COUNT(*) AS n FROM objects'),
      events: count('SELECT COUNT(*) AS n FROM events'),
      transitions: count('SELECT COUNT(*) AS n FROM transitions'),
      messages: count('SELECT COUNT(*) AS n FROM messages'),
      pending: count("SELECT COUNT(*) AS n FROM messages WHERE state = 'pending'"),
      dead: count("SELECT COUNT(*) AS n FROM messages WHERE state = 'dead'"),
      attempts: count('SELECT COUNT(*) AS n FROM message_attempts'),
      rejections: count('SELECT COUNT(*) AS n FROM rejections'),
      // Every folded state still has its body, every undelivered message its transition's.
      orphanObjects: count(
        'SELECT COUNT(*) AS n FROM objects o WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.delivery_key = o.winning_event_key)',
      ),
      orphanMessages: count(
        `SELECT COUNT(*) AS n FROM messages m WHERE m.state <> 'delivered' AND NOT EXISTS (
           SELECT 1 FROM transitions t JOIN events e ON e.delivery_key = t.event_key WHERE t.seq = m.transition_seq)`,
      ),
    };
  } finally {
    db.close();
  }
}

function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Resolves with the first JSON log line whose `msg` is `msg`. */
function logLine(server: RunningServer, msg: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const line = jsonLines(server.output()).find((l) => l.msg === msg);
      if (line === undefined) return;
      cleanup();
      resolve(line);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no "${msg}" log line:\n${server.output().slice(-3000)}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      server.proc.stdout?.off('data', check);
    };
    server.proc.stdout?.on('data', check);
    check();
  });
}

describe(`prune on ${DELIVERIES.toLocaleString('en-US')} deliveries`, () => {
  let dir: ReturnType<typeof tempDir>;
  let server: RunningServer | undefined;
  let path: string;
  let fixture: PruneFixture;
  const env = () => ({ REPLICATE_WEBHOOK_SECRET: SECRET, DATABASE_URL: `sqlite:${path}` });

  beforeEach(async () => {
    dir = tempDir('inlet-prune-');
    path = join(dir.dir, 'inlet.db');
    const started = performance.now();
    fixture = await buildPruneFixture(path, DELIVERIES);
    console.log(`fixture: ${DELIVERIES} deliveries built in ${Math.round(performance.now() - started)} ms`);
  }, TIMEOUT_MS);

  afterEach(async () => {
    if (server !== undefined) await stop(server);
    server = undefined;
    dir.cleanup();
  });

  function checkPruned(before: ReturnType<typeof tableCounts>, liveDeliveries: number) {
    const expected = expectedPrune(fixture);
    const after = tableCounts(path);
    expect(after.orphanObjects).toBe(0);
    expect(after.orphanMessages).toBe(0);
    // Folded states and undelivered messages stay; the live deliveries are recent and stay too.
    expect(after.objects).toBe(before.objects + liveDeliveries);
    expect(after.pending).toBe(fixture.pending);
    expect(after.dead).toBe(fixture.dead);
    expect(before.events + liveDeliveries - after.events).toBe(expected.events);
    expect(before.transitions + liveDeliveries - after.transitions).toBe(expected.transitions);
    expect(before.messages - after.messages).toBe(expected.messages);
    expect(before.attempts - after.attempts).toBe(expected.message_attempts);
    expect(before.rejections - after.rejections).toBe(expected.rejections);
  }

  it(
    'a prune keeps folded states and pending messages, and no commit waits over 100 ms meanwhile',
    async () => {
      const before = tableCounts(path);
      const store = await openSqliteStore(path, { mode: 'serve' });
      const latencies: { startMs: number; ms: number }[] = [];
      let committing = true;
      let n = 0;
      // One delivery at a time, as fast as the store takes them, for the whole prune and a little before.
      const committer = (async () => {
        while (committing) {
          n += 1;
          const event = makeEvent(
            `live-${n}`,
            { id: `live${n}`, status: 'processing', logs: `tick ${n}` },
            { receivedAtMs: Date.now() },
          );
          const startMs = performance.now();
          await store.commitEvents([event]);
          latencies.push({ startMs, ms: performance.now() - startMs });
        }
      })();
      try {
        while (latencies.length < 500) await new Promise((resolve) => setTimeout(resolve, 10));
        const startedMs = performance.now();
        const report = await runPrune(store, { cutoffMs: Date.now() - 30 * DAY_MS });
        const finishedMs = performance.now();
        committing = false;
        await committer;
        // Every commit that overlaps the prune, including one in flight as it began (the prune's first
        // reads once scanned whole tables on this event loop).
        const during = latencies
          .filter((l) => l.startMs + l.ms >= startedMs && l.startMs <= finishedMs)
          .map((l) => l.ms)
          .sort((a, b) => a - b);
        const before = latencies
          .filter((l) => l.startMs < startedMs)
          .map((l) => l.ms)
          .sort((a, b) => a - b);
        const p99 = (xs: number[]) => xs[Math.floor(xs.length * 0.99)] ?? 0;
        console.log(
          `prune in the store's process: ${report.durationMs} ms, ${report.windows} windows (longest ${report.longestWindowMs} ms); ` +
            `${during.length} commits meanwhile, the longest ${during.at(-1)?.toFixed(1)} ms, p99 ${p99(during).toFixed(1)} ms ` +
            `(before it: ${before.length} commits, the longest ${before.at(-1)?.toFixed(1)} ms)`,
        );
        expect(report.deleted).toMatchObject(expectedPrune(fixture));
        expect(during.length).toBeGreaterThan(report.windows / 2);
        expect(p99(during)).toBeLessThanOrEqual(MAX_STALL_MS);
        // The longest single commit is bounded loosely (MAX_COMMIT_MS), and measured on a quiet machine
        // for docs/benchmarks.md. One transaction per table fails both.
        expect(during.at(-1)).toBeLessThanOrEqual(MAX_COMMIT_MS);
      } finally {
        committing = false;
        await committer;
        await store.close();
      }
      checkPruned(before, n);
    },
    TIMEOUT_MS * 2,
  );

  it(
    'serve --retention prunes shortly after start, keeping folded states and pending messages, while signed deliveries keep being answered 200',
    async () => {
      const before = tableCounts(path);
      // INLET_TIME_SCALE 0.05: the first prune 3 s after start, not a minute; deliveries flow meanwhile.
      server = await startServe(['--retention', '30d'], { ...env(), INLET_TIME_SCALE: '0.05' });
      const sender = keepDelivering(server.base);
      const sendingMs = performance.now();
      const started = await logLine(server, 'pruning what is older than the retention', 10_000);
      const finished = await logLine(server, 'pruned what is older than the retention', TIMEOUT_MS);
      await sender.stop();
      // Log times are wall-clock; the samples are on the monotonic clock of this process.
      const offset = Date.now() - performance.now();
      const stall = stallWhile(
        sender.samples,
        Date.parse(started.time as string) - offset,
        Date.parse(finished.time as string) - offset,
      );
      const baseline = stallWhile(
        sender.samples,
        sendingMs + 500,
        Date.parse(started.time as string) - offset,
      );
      const deleted = finished.deleted as Record<string, number>;
      console.log(
        `serve --retention: pruned in ${String(finished.durationMs)} ms (longest window ${String(finished.longestWindowMs)} ms), ` +
          `${stall.deliveries} deliveries meanwhile, max ${stall.maxMs} ms, p99 ${stall.p99Ms} ms ` +
          `(before it: ${baseline.deliveries} deliveries, max ${baseline.maxMs} ms, p99 ${baseline.p99Ms} ms); deleted ${JSON.stringify(deleted)}`,
      );
      expect(stall.deliveries).toBeGreaterThan(0);
      expect(stall.statuses).toEqual([200]);
      expectNoStall(stall, baseline);
      expect(deleted).toMatchObject(expectedPrune(fixture));
      await stop(server);
      server = undefined;
      checkPruned(before, sender.samples.length);
    },
    TIMEOUT_MS * 2,
  );

  it(
    'inlet prune in another process while serve takes deliveries: --dry-run counts and deletes nothing, then the prune deletes as much',
    async () => {
      const before = tableCounts(path);
      const dry = await runCli(['prune', '--older-than', '30d', '--dry-run'], env(), {
        timeoutMs: TIMEOUT_MS,
      });
      expect(dry.stderr).toBe('');
      expect(dry.code).toBe(0);
      const expected = expectedPrune(fixture);
      expect(dry.stdout).toContain('Would delete (dry run: nothing deleted)');
      expect(dry.stdout).toMatch(new RegExp(`events\\s+${expected.events.toLocaleString('en-US')}\\n`));
      expect(dry.stdout).toMatch(
        new RegExp(`delivered messages\\s+${expected.messages.toLocaleString('en-US')}\\n`),
      );
      expect(tableCounts(path)).toEqual(before);

      server = await startServe([], env());
      const sender = keepDelivering(server.base);
      // Deliveries flow for a while before the prune starts: the same load without it, for comparison.
      const sendingMs = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const startedMs = performance.now();
      const pruned = await runCli(['prune', '--older-than', '30d'], env(), { timeoutMs: TIMEOUT_MS });
      const finishedMs = performance.now();
      await sender.stop();
      expect(pruned.stderr).toBe('');
      expect(pruned.code).toBe(0);
      const stall = stallWhile(sender.samples, startedMs, finishedMs);
      const baseline = stallWhile(sender.samples, sendingMs + 500, startedMs);
      console.log(
        `inlet prune beside serve: ${Math.round(finishedMs - startedMs)} ms, ${stall.deliveries} deliveries meanwhile, ` +
          `max ${stall.maxMs} ms, p99 ${stall.p99Ms} ms (before it: ${baseline.deliveries} deliveries, max ${baseline.maxMs} ms, p99 ${baseline.p99Ms} ms)\n${pruned.stdout}`,
      );
      expect(stall.statuses).toEqual([200]);
      expectNoStall(stall, baseline);
      expect(pruned.stdout).toMatch(new RegExp(`events\\s+${expected.events.toLocaleString('en-US')}\\n`));
      await stop(server);
      server = undefined;
      checkPruned(before, sender.samples.length);
    },
    TIMEOUT_MS * 2,
  );
});

describe('inlet prune', () => {
  it('refuses an --older-than that is not a duration (exit 2) and a missing database', async () => {
    const dir = tempDir('inlet-prune-args-');
    try {
      const bad = await runCli(['prune', '--older-than', '30', '--database', join(dir.dir, 'x.db')]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--older-than must be a number with a unit: 30d, 12h, 90m');
      expect(bad.stderr).toContain('got "30"');
      const missing = await runCli(['prune', '--older-than', '30d', '--database', join(dir.dir, 'x.db')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('No Inlet database');
    } finally {
      dir.cleanup();
    }
  });
});
