/**
 * `inlet serve` end to end (CONTRACT §8, §9): webhooks in, the transitions they make out to an HTTP
 * destination from the config file, signed, retried, in order; on every dialect serve takes.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { postgresOrSkip, serveDialects, waitFor } from './pg-helpers.js';
import { runCli, startServe, stop } from './process-helpers.js';

const APP_SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';
const probe = await postgresOrSkip('serve with destinations on PostgreSQL');
const shared = tempDir();
afterAll(() => shared.cleanup());

const DIALECTS = serveDialects(probe, shared.dir);

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

interface Receiver {
  server: Server;
  url: string;
  received: Received[];
  /** The status of request number `n` (from 0); change it to change the receiver's mood. */
  respond: (n: number) => number;
}

/** A real HTTP receiver on loopback; by default it fails its first 3 requests with 500, then answers 204. */
async function startReceiver(respond: (n: number) => number = (n) => (n < 3 ? 500 : 204)): Promise<Receiver> {
  const received: Received[] = [];
  const receiver: Receiver = { server: undefined as unknown as Server, url: '', received, respond };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = receiver.respond(received.length);
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  receiver.server = server;
  receiver.url = `http://127.0.0.1:${port}/hooks`;
  return receiver;
}

async function deliver(base: string, object: Record<string, unknown>, id: string) {
  const body = JSON.stringify(object);
  const res = await fetch(`${base}/replicate-webhook`, {
    method: 'POST',
    body,
    headers: signedHeaders(body, { id }),
  });
  return res.status;
}

function writeConfig(dir: string, url: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      destinations: [
        {
          name: 'app',
          url,
          secret: '${APP_SECRET}',
          events: ['prediction.*'],
          allowPrivateNetwork: true,
          retryDelaysMs: [1000, 1000, 1000],
          ...extra,
        },
      ],
    }),
  );
  return file;
}

describe.each(DIALECTS)('serve delivers transitions to a destination ($name)', (dialect) => {
  let db: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    db = await dialect.database(`dest_${dialect.name}`);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('sends started, logs and completed once each, in order, signed, the first after 3 failures', async () => {
    const receiver = await startReceiver();
    const file = writeConfig(shared.dir, receiver.url);
    const server = await startServe(['--database', db.url, '--config', file], {
      REPLICATE_WEBHOOK_SECRET: SECRET,
      APP_SECRET,
      // The 1 s retry delays pass in 1 ms.
      INLET_TIME_SCALE: '0.001',
    });
    try {
      const p = prediction();
      const id = p.id as string;
      expect(await deliver(server.base, p, `msg_${id}_1`)).toBe(200);
      expect(await deliver(server.base, { ...p, status: 'processing', logs: 'step 1' }, `msg_${id}_2`)).toBe(
        200,
      );
      const done = { ...p, status: 'succeeded', logs: 'step 1', output: ['https://x/out.png'] };
      expect(await deliver(server.base, done, `msg_${id}_3`)).toBe(200);
      // A redelivery and a late, older webhook change nothing: no more messages.
      expect(await deliver(server.base, done, `msg_${id}_3`)).toBe(200);
      expect(await deliver(server.base, { ...p, status: 'processing', logs: 'step' }, `msg_${id}_4`)).toBe(
        200,
      );

      await waitFor(
        'three delivered messages',
        async () => receiver.received.filter((r) => r.status === 204).length >= 3,
      );
      const delivered = receiver.received.filter((r) => r.status === 204);
      const bodies = delivered.map(
        (r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> },
      );
      expect(bodies.map((b) => b.type)).toEqual([
        'prediction.started',
        'prediction.logs',
        'prediction.completed',
      ]);
      expect(bodies[2]!.data).toMatchObject({ id, status: 'succeeded', output: ['https://x/out.png'] });

      // Every request verifies with the destination's secret; the failed attempt and its retry share an id.
      const verifier = new Webhook(APP_SECRET.slice('whsec_'.length));
      for (const r of receiver.received) {
        expect(() => verifier.verify(r.body, r.headers as Record<string, string>)).not.toThrow();
        expect(r.headers['user-agent']).toMatch(/^Inlet\//);
      }
      // The first message failed 3 times: all 4 attempts carry its id, and it succeeded once.
      const firstId = receiver.received[0]!.headers['webhook-id'];
      expect(receiver.received.slice(0, 4).map((r) => [r.headers['webhook-id'], r.status])).toEqual([
        [firstId, 500],
        [firstId, 500],
        [firstId, 500],
        [firstId, 204],
      ]);
      expect(new Set(delivered.map((r) => r.headers['webhook-id'])).size).toBe(3);
      const detail = await fetch(`${server.base}/api/messages/${String(firstId)}`);
      const log = ((await detail.json()) as { attempt_log: { status: number | null }[] }).attempt_log;
      expect(log.map((a) => a.status)).toEqual([500, 500, 500, 204]);

      // Nothing more arrives after the three (a settle wait would be a sleep: ask the API instead).
      const res = await fetch(`${server.base}/api/messages?destination=app&prediction_id=${id}`);
      const messages = ((await res.json()) as { data: { state: string; attempts: number }[] }).data;
      expect(messages.map((m) => m.state)).toEqual(['delivered', 'delivered', 'delivered']);
      expect(messages.reduce((n, m) => n + m.attempts, 0)).toBe(6);
      expect(receiver.received).toHaveLength(6);

      // Replay from the CLI: a dry run counts; the real one sends the same messages (same ids) again.
      const dry = await runCli(['replay', id, '--to', 'app', '--dry-run', '--database', db.url]);
      expect(dry).toMatchObject({ code: 0 });
      expect(dry.stdout).toContain('Would replay 3');
      expect(receiver.received).toHaveLength(6);
      const replayed = await runCli(['replay', id, '--to', 'app', '--database', db.url]);
      expect(replayed).toMatchObject({ code: 0 });
      await waitFor('the replay', async () => receiver.received.length === 9);
      expect(receiver.received.slice(6).map((r) => r.headers['webhook-id'])).toEqual(
        delivered.map((r) => r.headers['webhook-id']),
      );
    } finally {
      await stop(server);
      receiver.server.close();
    }
  });
});

/** Starts serve on `db` with one destination `app` at `url`; delays are scaled 1,000 times down. */
function serveWith(dbUrl: string, url: string, extra: Record<string, unknown> = {}) {
  return startServe(['--database', dbUrl, '--config', writeConfig(shared.dir, url, extra)], {
    REPLICATE_WEBHOOK_SECRET: SECRET,
    APP_SECRET,
    INLET_TIME_SCALE: '0.001',
  });
}

async function messagesOf(base: string, predictionId: string) {
  const res = await fetch(`${base}/api/messages?destination=app&prediction_id=${predictionId}`);
  return (
    (await res.json()) as {
      data: { id: string; state: string; type: string; last_error: string; attempts: number }[];
    }
  ).data;
}

async function destination(base: string) {
  const res = await fetch(`${base}/api/destinations`);
  return ((await res.json()) as { data: Record<string, unknown>[] }).data.find((d) => d.name === 'app')!;
}

describe.each(DIALECTS)('destinations under trouble ($name)', (dialect) => {
  it('410 disables; later transitions wait; enable delivers them in order', async () => {
    const db = await dialect.database(`gone_${dialect.name}`);
    const receiver = await startReceiver((n) => (n === 0 ? 410 : 204));
    const server = await serveWith(db.url, receiver.url, { events: ['prediction.completed'] });
    try {
      const [a, b, c] = [prediction(), prediction(), prediction()];
      expect(await deliver(server.base, { ...a, status: 'succeeded' }, `msg_${String(a.id)}`)).toBe(200);
      await waitFor('the 410', async () => (await destination(server.base)).enabled === false);
      expect((await destination(server.base)).disabled_reason).toMatch(/410/);
      expect(await deliver(server.base, { ...b, status: 'succeeded' }, `msg_${String(b.id)}`)).toBe(200);
      expect(await deliver(server.base, { ...c, status: 'failed' }, `msg_${String(c.id)}`)).toBe(200);
      const enabled = await runCli(['destinations', 'enable', 'app', '--database', db.url]);
      expect(enabled).toMatchObject({ code: 0 });
      await waitFor('three deliveries', async () => receiver.received.length >= 4);
      // The 410'd message stays where it stopped and goes first; then the two that waited, in order.
      const ids = receiver.received
        .slice(1)
        .map((r) => (JSON.parse(r.body) as { data: { id: string } }).data.id);
      expect(ids).toEqual([a.id, b.id, c.id]);
    } finally {
      await stop(server);
      receiver.server.close();
      await db.drop();
    }
  });

  it('a receiver down for the whole schedule: dead; inlet messages retry delivers it once back', async () => {
    const db = await dialect.database(`dead_${dialect.name}`);
    const receiver = await startReceiver(() => 503);
    const server = await serveWith(db.url, receiver.url, { retryDelaysMs: [1000, 1000] });
    try {
      const p = prediction({ status: 'succeeded', output: ['https://x/y.png'] });
      expect(await deliver(server.base, p, `msg_${String(p.id)}`)).toBe(200);
      await waitFor(
        'a dead message',
        async () => (await messagesOf(server.base, p.id as string))[0]?.state === 'dead',
      );
      expect(receiver.received).toHaveLength(3);
      receiver.respond = () => 200;
      const [message] = await messagesOf(server.base, p.id as string);
      const retried = await runCli(['messages', 'retry', message!.id, '--database', db.url]);
      expect(retried).toMatchObject({ code: 0 });
      await waitFor(
        'delivered',
        async () => (await messagesOf(server.base, p.id as string))[0]?.state === 'delivered',
      );
      expect(receiver.received.map((r) => r.status)).toEqual([503, 503, 503, 200]);
      expect(new Set(receiver.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([message!.id]));
    } finally {
      await stop(server);
      receiver.server.close();
      await db.drop();
    }
  });

  it('SIGKILL between attempts: after a restart the message is delivered once, same id', async () => {
    const db = await dialect.database(`kill_${dialect.name}`);
    const receiver = await startReceiver((n) => (n === 0 ? 500 : 204));
    // The retry waits 2 s (2,000 s scaled down): time enough to kill serve before it comes.
    let server = await serveWith(db.url, receiver.url, { retryDelaysMs: [2_000_000] });
    try {
      const p = prediction({ status: 'succeeded' });
      expect(await deliver(server.base, p, `msg_${String(p.id)}`)).toBe(200);
      await waitFor('the first attempt', async () => receiver.received.length === 1);
      // Between attempts: the failure is recorded and the retry scheduled. (Killed while an attempt is
      // still in flight, the message waits for its lease to expire instead, ~40 s: another test.)
      await waitFor(
        'the failure recorded',
        async () => (await messagesOf(server.base, p.id as string))[0]?.attempts === 1,
      );
      await stop(server, 'SIGKILL');
      server = await serveWith(db.url, receiver.url, { retryDelaysMs: [2_000_000] });
      await waitFor('the retry', async () => receiver.received.length === 2);
      const [first, second] = receiver.received;
      expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
      expect(second!.status).toBe(204);
      await waitFor(
        'delivered',
        async () => (await messagesOf(server.base, p.id as string))[0]?.state === 'delivered',
      );
      expect(receiver.received).toHaveLength(2);
    } finally {
      await stop(server);
      receiver.server.close();
      await db.drop();
    }
  });

  it('refuses a destination on 127.0.0.1 without allowPrivateNetwork, saying why', async () => {
    const db = await dialect.database(`private_${dialect.name}`);
    const receiver = await startReceiver(() => 204);
    const server = await serveWith(db.url, receiver.url, { allowPrivateNetwork: false, retryDelaysMs: [] });
    try {
      const p = prediction({ status: 'succeeded' });
      expect(await deliver(server.base, p, `msg_${String(p.id)}`)).toBe(200);
      await waitFor(
        'a dead message',
        async () => (await messagesOf(server.base, p.id as string))[0]?.state === 'dead',
      );
      const [message] = await messagesOf(server.base, p.id as string);
      expect(message!.last_error).toMatch(/private|loopback/i);
      expect(message!.last_error).toContain('allowPrivateNetwork');
      expect(receiver.received).toHaveLength(0);
    } finally {
      await stop(server);
      receiver.server.close();
      await db.drop();
    }
  });
});

describe('the config file at start', () => {
  it('refuses unknown keys and bad values with invalid_config, naming the JSON path (exit 2)', async () => {
    const unknown = writeConfig(shared.dir, 'https://example.com/h', { retries: 3 });
    let res = await runCli(['serve', '--config', unknown], { REPLICATE_WEBHOOK_SECRET: SECRET, APP_SECRET });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('invalid_config');
    expect(res.stderr).toContain('unknown key "retries" at $.destinations[0]');

    const bad = writeConfig(shared.dir, 'ftp://example.com/h');
    res = await runCli(['serve', '--config', bad], { REPLICATE_WEBHOOK_SECRET: SECRET, APP_SECRET });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('$.destinations[0].url');

    res = await runCli(['serve', '--config', bad], { REPLICATE_WEBHOOK_SECRET: SECRET });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('APP_SECRET');

    res = await runCli(['serve'], {
      REPLICATE_WEBHOOK_SECRET: SECRET,
      INLET_CONFIG: join(shared.dir, 'nope.json'),
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/invalid_config: .*nope\.json: no such file/);
  });

  it('inlet config schema prints a JSON Schema; inlet config check validates a file', async () => {
    const schema = await runCli(['config', 'schema']);
    expect(schema.code).toBe(0);
    const json = JSON.parse(schema.stdout) as { properties: { destinations: unknown } };
    expect(json.properties.destinations).toBeDefined();
    const good = writeConfig(shared.dir, 'https://example.com/h');
    const check = await runCli(['config', 'check', good], { APP_SECRET });
    expect(check).toMatchObject({ code: 0 });
    expect(check.stdout).toContain('destinations app');
  });
});
