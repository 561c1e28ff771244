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
