import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../metrics/metrics.js';
import type { NewRejection, Store } from '../store/types.js';
import { RejectionLog, sourceKey } from './rejection-log.js';

function rejection(remoteAddress: string, bodyBytes = 10): NewRejection {
  return {
    receivedAtMs: 0,
    code: 'invalid_signature',
    message: 'No signature matched',
    remoteAddress,
    headers: {},
    body: Buffer.alloc(bodyBytes, 1),
  };
}

function setup(rates = { perSecond: 10, bytesPerSecond: 256 * 1024 }) {
  const written: NewRejection[] = [];
  const store = {
    recordRejections: async (rows: readonly NewRejection[]) => {
      written.push(...rows);
    },
  } as unknown as Store;
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  );
  const metrics = createMetrics({ processMetrics: false });
  let now = 1_000_000;
  const log = new RejectionLog(store, { maxRows: 10_000, maxBodyBytes: 1 << 30 }, logger, metrics, {
    rates,
    nowMs: () => now,
  });
  const limited = async () =>
    Number(/^inlet_rejections_limited_total (\d+)/m.exec(await metrics.text())?.[1] ?? NaN);
  return { log, written, lines, limited, advance: (ms: number) => (now += ms) };
}

describe('RejectionLog budget per source', () => {
  it('records up to the rate per source and only counts the rest, each source on its own', async () => {
    const { log, written, limited, advance } = setup();
    const answers = Array.from({ length: 50 }, () => log.record(rejection('203.0.113.9')));
    // true: only counted.
    expect(answers.filter((a) => !a)).toHaveLength(10);
    expect(answers.slice(10).every((a) => a)).toBe(true);
    // Another source is not held back by the flood.
    expect(log.record(rejection('198.51.100.1'))).toBe(false);
    await log.flush();
    expect(written).toHaveLength(11);
    expect(await limited()).toBe(40);

    // Half a second later the flooding source has earned 5 more.
    advance(500);
    const later = Array.from({ length: 10 }, () => log.record(rejection('203.0.113.9')));
    expect(later.filter((a) => !a)).toHaveLength(5);
    await log.flush();
    expect(written).toHaveLength(16);
    expect(await limited()).toBe(45);
  });

  it('bounds the body bytes per source too; one body larger than the budget may go when the budget is whole', async () => {
    const { log, written, advance } = setup({ perSecond: 1000, bytesPerSecond: 256 * 1024 });
    const answers = Array.from({ length: 10 }, () => log.record(rejection('203.0.113.9', 64 * 1024)));
    expect(answers.filter((a) => !a)).toHaveLength(4);
    advance(1000);
    // An authenticated body is kept whole: 1 MiB overdraws the budget once…
    expect(log.record(rejection('203.0.113.9', 1024 * 1024))).toBe(false);
    // …and the source then waits for it to be paid back.
    advance(1000);
    expect(log.record(rejection('203.0.113.9', 10))).toBe(true);
    advance(3000);
    expect(log.record(rejection('203.0.113.9', 10))).toBe(false);
    await log.flush();
    expect(written.map((r) => r.body.length)).toEqual([...Array<number>(4).fill(64 * 1024), 1024 * 1024, 10]);
  });

  it('logs the count per source that was not recorded', async () => {
    const { log, lines } = setup();
    for (let i = 0; i < 15; i++) log.record(rejection('203.0.113.9'));
    for (let i = 0; i < 12; i++) log.record(rejection('2001:db8:1:2:aaaa::1'));
    for (let i = 0; i < 12; i++) log.record(rejection('2001:db8:1:2:bbbb::2'));
    await log.flush();
    const report = lines.find((l) => l.notRecorded !== undefined);
    // The two IPv6 addresses share their /64: 24 rejections, 10 recorded.
    expect(report).toMatchObject({ notRecorded: 19, sources: { '203.0.113.9': 5, '2001:db8:1:2::/64': 14 } });
    expect(String(report?.msg)).toContain('not recorded');
  });

  it('keeps a copy of what it records, never a slice of a larger buffer', async () => {
    const { log, written } = setup();
    const requestBody = Buffer.alloc(1024 * 1024, 1);
    log.record({ ...rejection('203.0.113.9'), body: requestBody.subarray(0, 64 * 1024) });
    await log.flush();
    expect(written[0]!.body.length).toBe(64 * 1024);
    expect(written[0]!.body.buffer.byteLength).toBe(64 * 1024);
  });
});

/** A RejectionLog on a store whose writes the test holds (`hold`) or fails (`fail`). */
function writing(limits = { maxRows: 10_000, maxBodyBytes: 1 << 30 }) {
  const writes: { rows: NewRejection[]; limits: unknown }[] = [];
  const state: { held?: Promise<void>; fail?: Error } = {};
  const store = {
    recordRejections: async (rows: readonly NewRejection[], given: unknown) => {
      await state.held;
      if (state.fail !== undefined) throw state.fail;
      writes.push({ rows: [...rows], limits: given });
    },
  } as unknown as Store;
  const warnings: string[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        warnings.push(String((JSON.parse(chunk.toString()) as { msg: string }).msg));
        done();
      },
    }),
  );
  const metrics = createMetrics({ processMetrics: false });
  const log = new RejectionLog(store, limits, logger, metrics, {
    rates: { perSecond: 1e9, bytesPerSecond: 1e15 },
  });
  const metric = async (name: string) =>
    Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await metrics.text())?.[1] ?? NaN);
  const hold = () => {
    let release!: () => void;
    state.held = new Promise<void>((resolve) => (release = resolve));
    return () => {
      state.held = undefined;
      release();
    };
  };
  return { log, writes, state, warnings, metric, hold };
}

describe('RejectionLog writes', () => {
  it('writes what was recorded in one turn in one call, with the limits, and what comes during a write in the next', async () => {
    const limits = { maxRows: 500, maxBodyBytes: 1 << 20 };
    const { log, writes, hold, metric } = writing(limits);
    const release = hold();
    for (const address of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) log.record(rejection(address));
    // The first write is held: these wait for it and go together.
    await new Promise((resolve) => setImmediate(resolve));
    log.record(rejection('198.51.100.4'));
    log.record(rejection('198.51.100.5'));
    release();
    await log.flush();
    expect(writes.map((w) => w.rows.map((r) => r.remoteAddress.slice(-1)))).toEqual([
      ['1', '2', '3'],
      ['4', '5'],
    ]);
    expect(writes.map((w) => w.limits)).toEqual([limits, limits]);
    expect(await metric('inlet_rejections_recorded_total')).toBe(5);
  });

  it('flush waits for every write, including those queued while one ran', async () => {
    const { log, writes, hold } = writing();
    const release = hold();
    log.record(rejection('198.51.100.1'));
    let flushed = false;
    const flushing = log.flush().then(() => (flushed = true));
    await new Promise((resolve) => setImmediate(resolve));
    log.record(rejection('198.51.100.2'));
    expect(flushed).toBe(false);
    release();
    await flushing;
    expect(writes.flatMap((w) => w.rows)).toHaveLength(2);
  });

  it('drops (and counts) what the store fails to take, then goes on writing', async () => {
    const { log, writes, state, warnings, metric } = writing();
    state.fail = new Error('disk I/O error');
    log.record(rejection('198.51.100.1'));
    log.record(rejection('198.51.100.2'));
    await log.flush();
    expect(writes).toEqual([]);
    expect(warnings).toContain('could not record rejections');
    expect(await metric('inlet_rejections_dropped_total')).toBe(2);
    expect(await metric('inlet_store_errors_total\\{operation="record_rejections"\\}')).toBe(1);
    state.fail = undefined;
    expect(log.record(rejection('198.51.100.3'))).toBe(false);
    await log.flush();
    expect(writes.flatMap((w) => w.rows.map((r) => r.remoteAddress))).toEqual(['198.51.100.3']);
  });

  it('keeps at most 1000 rejections in memory while the store is slow, dropping the oldest', async () => {
    const { log, writes, hold, metric } = writing();
    const release = hold();
    log.record(rejection('198.51.100.1'));
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 1500; i++) log.record({ ...rejection('198.51.100.2'), message: `m${i}` });
    release();
    await log.flush();
    expect(writes.map((w) => w.rows.length)).toEqual([1, 1000]);
    expect(writes[1]!.rows[0]!.message).toBe('m500');
    expect(await metric('inlet_rejections_dropped_total')).toBe(500);
  });

  it('keeps at most 64 MiB of bodies in memory while the store is slow, and always the newest', async () => {
    const { log, writes, hold } = writing();
    const MiB = 1024 * 1024;
    let release = hold();
    log.record(rejection('198.51.100.1'));
    await new Promise((resolve) => setImmediate(resolve));
    for (const address of ['198.51.100.2', '198.51.100.3', '198.51.100.4'])
      log.record(rejection(address, 30 * MiB));
    release();
    await log.flush();
    expect(writes.map((w) => w.rows.map((r) => r.remoteAddress))).toEqual([
      ['198.51.100.1'],
      ['198.51.100.3', '198.51.100.4'],
    ]);

    release = hold();
    log.record(rejection('198.51.100.5'));
    await new Promise((resolve) => setImmediate(resolve));
    log.record(rejection('198.51.100.6', 30 * MiB));
    // Alone over the bound: kept (the newest always is), the one before it dropped.
    log.record(rejection('198.51.100.7', 80 * MiB));
    release();
    await log.flush();
    expect(writes.at(-1)!.rows.map((r) => r.remoteAddress)).toEqual(['198.51.100.7']);
  });

  it('records nothing when the log is off (--max-rejections 0)', async () => {
    const { log, writes } = writing({ maxRows: 0, maxBodyBytes: 1 << 20 });
    expect(log.record(rejection('198.51.100.1'))).toBe(false);
    await log.flush();
    expect(writes).toEqual([]);
  });
});

describe('sourceKey', () => {
  it('keys IPv6 clients by their /64 and keeps other addresses as they are', () => {
    expect(sourceKey('203.0.113.9')).toBe('203.0.113.9');
    expect(sourceKey('::ffff:203.0.113.9')).toBe('::ffff:203.0.113.9');
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('2001:0db8:0001:0002:0003:0004:0005:0006')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('')).toBe('');
  });
});
