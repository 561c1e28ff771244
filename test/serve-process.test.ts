import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { postgresOrSkip, serveDialects, waitFor } from './pg-helpers.js';
import { runCli, startServe, stop, type RunningServer } from './process-helpers.js';

const ENV = { REPLICATE_WEBHOOK_SECRET: SECRET };
const probe = await postgresOrSkip('the serve process tests on PostgreSQL');
const shared = tempDir();
afterAll(() => shared.cleanup());

const DIALECTS = serveDialects(probe, shared.dir);

async function deliver(base: string, body: string, headers = signedHeaders(body)) {
  const res = await fetch(`${base}/replicate-webhook`, { method: 'POST', body, headers });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

describe('inlet serve as a process', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('exits 2 naming REPLICATE_WEBHOOK_SECRET when no secret is set', async () => {
    const res = await runCli(['serve', '--port', '0'], {}, { cwd: tmp.dir });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('REPLICATE_WEBHOOK_SECRET');
    expect(existsSync(join(tmp.dir, 'data'))).toBe(false);
  });

  it('exits 2 on bad flag values, naming the flag', async () => {
    for (const [flag, value] of [
      ['--port', 'abc'],
      ['--tolerance', '-1'],
      ['--max-body', '1e6'],
      ['--log-level', 'loud'],
      ['--commit-timeout-ms', '0'],
    ]) {
      const res = await runCli(['serve', flag!, value!], ENV, { cwd: tmp.dir });
      expect(res.code, flag).toBe(2);
      expect(res.stderr, flag).toContain(flag);
    }
    const res = await runCli(['serve', '--database', 'mysql://x/y'], ENV, { cwd: tmp.dir });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--database');
  });

  it('exits 2 naming the port when it is in use', async () => {
    const server = await startServe(['--database', join(tmp.dir, 'port.db')], ENV);
    try {
      const res = await runCli(
        [
          'serve',
          '--port',
          String(server.port),
          '--host',
          '127.0.0.1',
          '--database',
          join(tmp.dir, 'port2.db'),
        ],
        ENV,
      );
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(String(server.port));
      // It could not listen, so it never opened (or created) its database.
      expect(existsSync(join(tmp.dir, 'port2.db'))).toBe(false);
    } finally {
      expect(await stop(server)).toBe(0);
    }
  });

  it('prints --version', async () => {
    const res = await runCli(['--version']);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('warns at start that --accept-hex-signature signs no timestamp, so captured requests replay', async () => {
    const server = await startServe(['--database', join(tmp.dir, 'hex.db'), '--accept-hex-signature'], ENV);
    // Stopped the moment its URL line appears: the graceful stop must already be listening.
    expect(await stop(server)).toBe(0);
    expect(server.output()).toMatch(/"level":40[^\n]*--accept-hex-signature[^\n]*replayed forever/);
  });

  it('shows a short preview of the output in the pretty log line, as the tutorial printed it', async () => {
    const server = await startServe(['--database', join(tmp.dir, 'pretty.db')], {
      ...ENV,
      INLET_LOG_FORMAT: 'pretty',
    });
    const body = JSON.stringify(
      prediction({
        id: 'pred_preview',
        status: 'succeeded',
        output: ['https://replicate.delivery/x/out-0.png'],
      }),
    );
    expect((await deliver(server.base, body)).status).toBe(200);
    expect(await stop(server)).toBe(0);
    expect(server.output()).toContain(
      'Received webhook for prediction pred_preview with status succeeded — output ["https://replicate.delivery/x/out-0.png"]',
    );
  });

  describe.each(DIALECTS)('one server on $name', (dialect) => {
    let server: RunningServer;
    let db: { url: string; drop(): Promise<void> };
    beforeAll(async () => {
      db = await dialect.database('one');
      server = await startServe(['--database', db.url], ENV);
    });
    afterAll(async () => {
      expect(await stop(server)).toBe(0);
      await db.drop();
    });

    it('stores 200 concurrent distinct deliveries', async () => {
      const bodies = Array.from({ length: 200 }, () =>
        JSON.stringify(prediction({ model: 'acme/concurrent' })),
      );
      const results = await Promise.all(bodies.map((b) => deliver(server.base, b)));
      expect(results.every((r) => r.status === 200 && r.json.duplicate === false)).toBe(true);
      let count = 0;
      let cursor: string | null = null;
      do {
        const res = await fetch(
          `${server.base}/api/predictions?model=acme/concurrent&limit=200${cursor ? `&cursor=${cursor}` : ''}`,
        );
        const page = (await res.json()) as { data: unknown[]; next_cursor: string | null };
        count += page.data.length;
        cursor = page.next_cursor;
      } while (cursor);
      expect(count).toBe(200);
    });

    it('stores 24 concurrent copies of one delivery once, exactly one duplicate:false', async () => {
      const body = JSON.stringify(prediction());
      const headers = signedHeaders(body);
      const results = await Promise.all(
        Array.from({ length: 24 }, () => deliver(server.base, body, headers)),
      );
      expect(results.every((r) => r.status === 200)).toBe(true);
      expect(results.filter((r) => r.json.duplicate === false)).toHaveLength(1);
      const event = (await (await fetch(`${server.base}/api/events/${headers['webhook-id']}`)).json()) as {
        duplicates: number;
      };
      expect(event.duplicates).toBe(23);
    });

    it('accepts a ~12 MiB delivery whole and answers 413 to 17 MiB, staying healthy', async () => {
      const big = JSON.stringify(prediction({ status: 'succeeded', logs: 'x'.repeat(12 * 1024 * 1024) }));
      const headers = signedHeaders(big);
      expect((await deliver(server.base, big, headers)).status).toBe(200);
      const event = (await (await fetch(`${server.base}/api/events/${headers['webhook-id']}`)).json()) as {
        body: string;
      };
      expect(event.body.length).toBe(big.length);
      expect(event.body === big).toBe(true);

      const huge = JSON.stringify(prediction({ logs: 'y'.repeat(17 * 1024 * 1024) }));
      const res = await fetch(`${server.base}/replicate-webhook`, {
        method: 'POST',
        body: huge,
        headers: signedHeaders(huge),
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
      expect((await fetch(`${server.base}/healthz`)).status).toBe(200);
      // The rejection log is written in the background: poll the API for it.
      let rejections: { data: { code: string; body: string }[] } = { data: [] };
      await waitFor('the 413 in the rejection log', async () => {
        rejections = (await (
          await fetch(`${server.base}/api/rejections?limit=1`)
        ).json()) as typeof rejections;
        return rejections.data.length > 0;
      });
      expect(rejections.data[0]?.code).toBe('payload_too_large');
      expect(rejections.data[0]?.body).toBe(huge.slice(0, 64 * 1024));
      const small = JSON.stringify(prediction());
      expect((await deliver(server.base, small)).status).toBe(200);
    });

    it('logs accepted deliveries with the tutorial line, never secrets or signatures', async () => {
      const body = JSON.stringify(prediction({ id: 'pred_logline', status: 'processing' }));
      const headers = signedHeaders(body);
      await deliver(server.base, body, headers);
      await deliver(server.base, body, headers);
      await waitFor('the duplicate log line', async () =>
        /duplicate webhook for prediction pred_logline/.test(server.output()),
      );
      expect(server.output()).toContain(
        'Received webhook for prediction pred_logline with status processing',
      );
      expect(server.output()).toMatch(/duplicate webhook for prediction pred_logline/);
      expect(server.output()).not.toContain(SECRET);
      expect(server.output()).not.toContain(headers['webhook-signature']!.slice(3));
    });
  });

  it('answers 503 with Retry-After while another process holds the write lock, then recovers', async () => {
    const db = join(tmp.dir, 'locked.db');
    const server = await startServe(['--database', db, '--commit-timeout-ms', '800'], ENV);
    try {
      expect((await deliver(server.base, JSON.stringify(prediction()))).status).toBe(200);
      const locker = new Database(db);
      locker.exec('BEGIN EXCLUSIVE');
      const body = JSON.stringify(prediction());
      const headers = signedHeaders(body);
      const t0 = Date.now();
      const locked = await deliver(server.base, body, headers);
      expect(locked.status).toBe(503);
      expect(locked.json).toMatchObject({ error: { code: 'storage_unavailable' } });
      expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect((await fetch(`${server.base}/readyz`)).status).toBe(503);
      expect((await fetch(`${server.base}/healthz`)).status).toBe(200);
      locker.exec('COMMIT');
      locker.close();
      expect((await deliver(server.base, body, headers)).status).toBe(200);
      expect((await fetch(`${server.base}/readyz`)).status).toBe(200);
    } finally {
      expect(await stop(server)).toBe(0);
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} finishes the in-flight commit, answers it, and exits 0`, async () => {
      const db = join(tmp.dir, `${signal}.db`);
      const server = await startServe(['--database', db], ENV);
      const locker = new Database(db);
      locker.exec('BEGIN EXCLUSIVE');
      const body = JSON.stringify(prediction({ id: `pred_${signal}` }));
      const inFlight = deliver(server.base, body);
      await new Promise((r) => setTimeout(r, 300));
      server.proc.kill(signal);
      await new Promise((r) => setTimeout(r, 300));
      locker.exec('COMMIT');
      locker.close();
      expect((await inFlight).status).toBe(200);
      expect(await server.exited).toBe(0);
      const show = await runCli(['predictions', 'show', `pred_${signal}`, '--json', '--database', db]);
      expect(show.code).toBe(0);
      expect(JSON.parse(show.stdout)).toMatchObject({ id: `pred_${signal}` });
    });
  }

  it.each(DIALECTS)('loses nothing it answered 200 when SIGKILLed mid-stream ($name)', async (dialect) => {
    const database = await dialect.database('crash');
    const db = database.url;
    const server = await startServe(['--database', db], ENV);
    const acknowledged: string[] = [];
    let killed = false;
    const worker = async () => {
      while (!killed) {
        const body = JSON.stringify(prediction({ model: 'acme/crash' }));
        try {
          const res = await fetch(`${server.base}/replicate-webhook`, {
            method: 'POST',
            body,
            headers: signedHeaders(body),
          });
          if (res.status === 200) acknowledged.push(JSON.parse(body).id as string);
        } catch {
          return;
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    await new Promise((r) => setTimeout(r, 700));
    server.proc.kill('SIGKILL');
    killed = true;
    await Promise.all(workers);
    await server.exited;
    expect(acknowledged.length).toBeGreaterThan(20);

    const again = await startServe(['--database', db], ENV);
    try {
      const stored = new Set<string>();
      let cursor: string | null = null;
      do {
        const res = await fetch(
          `${again.base}/api/predictions?model=acme/crash&limit=200${cursor ? `&cursor=${cursor}` : ''}`,
        );
        const page = (await res.json()) as { data: { id: string }[]; next_cursor: string | null };
        page.data.forEach((p) => stored.add(p.id));
        cursor = page.next_cursor;
      } while (cursor);
      const lost = acknowledged.filter((id) => !stored.has(id));
      expect(lost).toEqual([]);
    } finally {
      await stop(again);
      await database.drop();
    }
  });
});

describe('malformed HTTP', () => {
  it('answers 400 bad_request in the contract shape before Fastify sees a request', async () => {
    const db = join(shared.dir, 'malformed.db');
    const server = await startServe(['--database', db], ENV);
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(server.port, '127.0.0.1', () =>
          socket.write('GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n'),
        );
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
        socket.setTimeout(5000, () => reject(new Error(`no answer: ${text}`)));
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400/);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({
        error: { code: 'bad_request' },
      });
      expect((await fetch(`${server.base}/healthz`)).status).toBe(200);
    } finally {
      expect(await stop(server)).toBe(0);
    }
  });
});

describe('inlet with no command', () => {
  it('prints usage and exits 2; --help exits 0', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout + none.stderr).toContain('Usage: inlet');
    expect((await runCli(['--help'])).code).toBe(0);
  });
});
