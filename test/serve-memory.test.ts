import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricIn, prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { startServe, stop, type RunningServer } from './process-helpers.js';

const MIB = 1024 * 1024;
const MAX_BODY = 4 * MIB;
const INFLIGHT = 32 * MIB;
/** Near the limit: 8 of them fit in the bound, the 9th does not. */
const SIZE = MAX_BODY - 1024;
/**
 * What the server may grow by over its idle size. Bodies held (32 MiB) plus what a held signed body costs
 * on its way to the disk (its text and parsed object), plus the slack of a garbage collector that frees
 * late. Measured: about 3x the bound (90–120 MiB over an idle 85 MiB). Without the bound the same traffic
 * took the server from 84 to 450 MiB.
 */
const GROWTH_LIMIT = 5 * INFLIGHT;

/** Resets the process's peak RSS (VmHWM) to its current RSS, so a phase measures its own peak. */
function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** A JSON prediction of exactly `size` bytes (long logs). */
function bodyOf(id: string, size: number): Buffer {
  const base = JSON.stringify(prediction({ id, status: 'processing', logs: '' }));
  return Buffer.from(base.replace('"logs":""', `"logs":"${'x'.repeat(size - base.length)}"`));
}

interface RawAnswer {
  /** 0: the connection closed (or was reset) before a status line arrived. */
  status: number;
  head: string;
}

type Plan =
  /** The whole body at once. */
  | { kind: 'fast' }
  /** In 256 KiB pieces with a pause after each: a slow sender that does finish. */
  | { kind: 'slow' }
  /** Only the first `bytes`, then nothing more until the test lets go. */
  | { kind: 'stall'; bytes: number };

/**
 * One request on its own connection, sent by `plan`. Resolves with the status line and headers as soon
 * as they arrive. The caller destroys the socket.
 */
function rawPost(port: number, body: Buffer, headers: Record<string, string>, plan: Plan) {
  const socket = connect(port, '127.0.0.1');
  let answered = false;
  const answer = new Promise<RawAnswer>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end >= 0 && !answered) {
        answered = true;
        resolve({ status: Number(text.slice(9, 12)), head: text.slice(0, end).toLowerCase() });
      }
    });
    socket.on('error', () => resolve({ status: 0, head: '' }));
    socket.on('close', () => resolve({ status: 0, head: '' }));
  });
  const lines = Object.entries({ ...headers, 'content-length': String(body.length) }).map(
    ([name, value]) => `${name}: ${value}`,
  );
  socket.write(`POST /replicate-webhook HTTP/1.1\r\nhost: 127.0.0.1\r\n${lines.join('\r\n')}\r\n\r\n`);
  if (plan.kind === 'fast') socket.write(body);
  else if (plan.kind === 'stall') socket.write(body.subarray(0, plan.bytes));
  else {
    void (async () => {
      for (let at = 0; at < body.length && !answered && !socket.destroyed; at += MIB / 4) {
        socket.write(body.subarray(at, at + MIB / 4));
        await delay(15);
      }
    })();
  }
  return { socket, answer };
}

const forgedHeaders = (body: Buffer) => ({
  ...signedHeaders(body),
  'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}`,
});

describe('request bodies in memory stay under --max-inflight-bytes', () => {
  const tmp = tempDir();
  let server: RunningServer;
  let baseline: number;
  const sockets: Socket[] = [];

  const metric = async (name: string) => {
    const text = await (await fetch(`${server.base}/metrics`)).text();
    return metricIn(text, name);
  };
  const stored = async (id: string) => {
    const res = await fetch(`${server.base}/api/predictions/${id}`);
    await res.arrayBuffer();
    return res.status === 200;
  };
  /** Resolves once `check` holds (the server's state moved), polling it. */
  const until = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 400 && !(await check()); i++) await delay(25);
    expect(await check()).toBe(true);
  };

  beforeAll(async () => {
    server = await startServe(
      [
        '--database',
        join(tmp.dir, 'memory.db'),
        '--max-body',
        String(MAX_BODY),
        '--max-inflight-bytes',
        String(INFLIGHT),
      ],
      { REPLICATE_WEBHOOK_SECRET: SECRET },
    );
    // Warm up (JIT, the store, the first pages of the heap): the baseline is the server at work, idle.
    const warm = bodyOf('pred_warm', 64 * 1024);
    expect(
      (
        await fetch(`${server.base}/replicate-webhook`, {
          method: 'POST',
          body: warm,
          headers: signedHeaders(warm),
        })
      ).status,
    ).toBe(200);
    baseline = memoryOf(server.proc.pid!).rss;
    resetPeak(server.proc.pid!);
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    if (server !== undefined) {
      await stop(server);
    }
    tmp.cleanup();
  });

  it('takes valid and forged, fast and slow near-limit bodies at once within the bound', async () => {
    const sent = Array.from({ length: 48 }, (_, i) => {
      const kind = i % 3 === 0 ? 'forged' : 'valid';
      const id = `pred_mixed_${i}`;
      const body = bodyOf(id, SIZE);
      const plan: Plan = i % 4 === 1 ? { kind: 'slow' } : { kind: 'fast' };
      const request = rawPost(
        server.port,
        body,
        kind === 'forged' ? forgedHeaders(body) : signedHeaders(body),
        plan,
      );
      sockets.push(request.socket);
      return { kind, id, ...request };
    });
    const answers = await Promise.all(sent.map((s) => s.answer));
    for (const s of sent) s.socket.destroy();
    const { peak } = memoryOf(server.proc.pid!);
    const status = (n: number) => answers.filter((a) => a.status === n).length;
    console.log(
      `mixed: baseline ${(baseline / MIB).toFixed(0)} MiB, peak ${(peak / MIB).toFixed(0)} MiB; ` +
        `answers: ${status(200)}×200, ${status(403)}×403, ${status(503)}×503, ${status(0)} reset`,
    );

    const refused = answers.filter((a) => a.status === 503);
    for (const answer of refused) expect(answer.head).toContain('retry-after: 2');
    // A sender refused while still writing its body for longer than the server goes on reading it (2 s)
    // sees the connection reset instead: those count as refused on the server's side.
    const resets = answers.filter((a) => a.status === 0).length;
    expect(await metric('inlet_inflight_refused_total')).toBe(refused.length + resets);
    expect(refused.length).toBeGreaterThan(0);

    const accepted = sent.filter((s, i) => answers[i]!.status === 200);
    sent.forEach((s, i) => {
      const status = answers[i]!.status;
      expect([s.kind === 'valid' ? 200 : 403, 503, 0]).toContain(status);
    });
    expect(accepted.length).toBeGreaterThan(0);
    for (const s of accepted) expect(await stored(s.id)).toBe(true);

    expect(peak - baseline).toBeLessThan(GROWTH_LIMIT);
  });

  it('refuses at once, with 503 and Retry-After, what would pass the bound while stalled senders hold it', async () => {
    await until(async () => (await metric('inlet_inflight_body_bytes')) === 0);
    // 40 senders that declare a near-limit body, send its first 16 KiB and stall. 8 fit in the bound; the
    // other 32 are answered at once, before their body is read.
    const stalled = Array.from({ length: 40 }, (_, i) => {
      const body = bodyOf(`pred_stall_${i}`, SIZE);
      const request = rawPost(server.port, body, signedHeaders(body), { kind: 'stall', bytes: 16 * 1024 });
      sockets.push(request.socket);
      return { body, ...request };
    });
    const answered = new Set<number>();
    const refused = await new Promise<RawAnswer[]>((resolve) => {
      const got: RawAnswer[] = [];
      stalled.forEach((s, i) =>
        s.answer.then((a) => {
          answered.add(i);
          got.push(a);
          if (got.length === 32) resolve(got);
        }),
      );
    });
    for (const answer of refused) {
      expect(answer.status).toBe(503);
      expect(answer.head).toContain('retry-after: 2');
      expect(answer.head).toContain('connection: close');
    }
    expect(await metric('inlet_inflight_body_bytes')).toBe(8 * SIZE);
    expect(answered.size).toBe(32);

    // The 8 that fit send most of their body and stall again: 28 MiB held in all.
    stalled.forEach((s, i) => {
      if (!answered.has(i)) s.socket.write(s.body.subarray(16 * 1024, SIZE - MIB / 2));
    });

    // A valid delivery now does not fit: refused before its body is read.
    const late = bodyOf('pred_late', SIZE);
    const lateAnswer = rawPost(server.port, late, signedHeaders(late), { kind: 'stall', bytes: 0 });
    sockets.push(lateAnswer.socket);
    expect((await lateAnswer.answer).status).toBe(503);

    // The stalled senders go away: every reservation comes back, and deliveries fit again.
    for (const s of stalled) s.socket.destroy();
    await until(async () => (await metric('inlet_inflight_body_bytes')) === 0);
    const again = bodyOf('pred_again', SIZE);
    const res = await fetch(`${server.base}/replicate-webhook`, {
      method: 'POST',
      body: again,
      headers: signedHeaders(again),
    });
    expect(res.status).toBe(200);
    expect(await stored('pred_again')).toBe(true);

    const { peak } = memoryOf(server.proc.pid!);
    console.log(`stalled: baseline ${(baseline / MIB).toFixed(0)} MiB, peak ${(peak / MIB).toFixed(0)} MiB`);
    expect(peak - baseline).toBeLessThan(GROWTH_LIMIT);
  });
});
