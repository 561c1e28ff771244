import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { signWebhook } from '../src/verify/index.js';
import { createTestInlet, OTHER_SECRET, SECRET, type TestInlet } from './helpers.js';

// Memory soak: many deliveries through the whole app; heap must level off, not grow with the count.

const DELIVERIES = Math.max(1000, Number(process.env.INLET_SOAK_DELIVERIES ?? 100_000));
const CONCURRENCY = 64;
const MiB = 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let inlet: TestInlet | undefined;
let scratch: string | undefined;

afterAll(async () => {
  await inlet?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function sample(): { heapMiB: number; rssMiB: number } {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heapMiB: m.heapUsed / MiB, rssMiB: m.rss / MiB };
}

describe('memory soak', () => {
  it(`keeps memory bounded over ${DELIVERIES} deliveries`, async () => {
    // tmpfs when there is one: the soak measures memory, not the disk.
    scratch = mkdtempSync(
      join(existsSync('/dev/shm') ? '/dev/shm' : (process.env.TMPDIR ?? '/tmp'), 'inlet-soak-'),
    );
    const store = await openStore(`sqlite:${join(scratch, 'soak.db')}`, { mode: 'serve' });
    inlet = await createTestInlet({ INLET_MAX_REJECTIONS: '100' }, {}, store);
    const app = inlet.app;
    const pad = 'x'.repeat(900);
    const started = Date.now();
    const counts = { accepted: 0, duplicate: 0, rejected: 0, other: 0 };

    const one = async (i: number) => {
      // Mostly new deliveries of a few states each; some duplicates and some forgeries.
      const kind = i % 50 === 7 ? 'forged' : i % 10 === 3 ? 'duplicate' : 'new';
      const n = kind === 'duplicate' ? i - 1 : i;
      const status = ['starting', 'processing', 'succeeded'][n % 3]!;
      const body = JSON.stringify({
        id: `soak${Math.floor(n / 3)}`,
        model: `inlet/model-${n % 7}`,
        version: 'v1',
        status,
        input: { prompt: `prompt ${n}` },
        logs: pad,
        output: status === 'succeeded' ? [`https://example.com/${n}.png`] : null,
        created_at: '2026-11-27T13:38:07.123Z',
      });
      const headers = {
        'content-type': 'application/json',
        ...signWebhook(body, {
          secret: kind === 'forged' ? OTHER_SECRET : SECRET,
          id: `msg_soak${n}`,
          timestampSec: Math.floor(Date.now() / 1000),
        }),
      };
      const res = await app.inject({ method: 'POST', url: '/replicate-webhook', payload: body, headers });
      if (res.statusCode === 200) {
        if (res.json<{ duplicate: boolean }>().duplicate) counts.duplicate++;
        else counts.accepted++;
      } else if (res.statusCode === 403) counts.rejected++;
      else counts.other++;
    };

    const run = async (from: number, to: number) => {
      let next = from;
      const worker = async () => {
        while (next < to) await one(next++);
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    };

    const half = Math.floor(DELIVERIES / 2);
    await run(0, Math.floor(DELIVERIES / 4));
    const warm = sample();
    await run(Math.floor(DELIVERIES / 4), half);
    const middle = sample();
    await run(half, DELIVERIES);
    const end = sample();
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `soak: ${DELIVERIES} deliveries in ${seconds.toFixed(1)} s (${Math.round(DELIVERIES / seconds)}/s); ` +
        `heap MiB warm ${warm.heapMiB.toFixed(1)}, middle ${middle.heapMiB.toFixed(1)}, end ${end.heapMiB.toFixed(1)}; ` +
        `rss MiB warm ${warm.rssMiB.toFixed(0)}, middle ${middle.rssMiB.toFixed(0)}, end ${end.rssMiB.toFixed(0)}`,
    );

    expect(counts.other).toBe(0);
    expect(counts.rejected).toBe(Math.floor((DELIVERIES - 8) / 50) + 1);
    expect(counts.duplicate).toBeGreaterThan(DELIVERIES / 20);
    expect(counts.accepted + counts.duplicate + counts.rejected).toBe(DELIVERIES);
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.body).toContain(
      `inlet_webhook_deliveries_total{outcome="accepted",code="ok"} ${counts.accepted}`,
    );

    // The second half stored as many deliveries as the first; the heap must not have grown with them.
    expect(end.heapMiB - middle.heapMiB).toBeLessThan(8);
    expect(end.heapMiB - warm.heapMiB).toBeLessThan(16);
    // RSS also holds SQLite's page cache (up to 32 MiB) and allocator slack.
    expect(end.rssMiB - middle.rssMiB).toBeLessThan(48);
  });
});
