/**
 * `inlet listen` against a real `inlet serve`: forwarding, catching up after a SIGKILL, two names, and
 * the live stream across two instances on one PostgreSQL. Needs `npm run build` first (npm test does it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse } from '../src/cli/listen-command.js';
import {
  createTestDatabase,
  deliver,
  postgresOrSkip,
  signedDelivery,
  startServe,
  waitFor,
  type ServeProcess,
  type TestDatabase,
} from './pg-helpers.js';
import { tempDir } from './helpers.js';
import { BIN, ROOT, runCli } from './process-helpers.js';

const LISTEN_SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';
/** The scenario restarts after 20 s; the suite uses less (INLET_TEST_LISTEN_GAP_MS=20000 for the full wait). */
const GAP_MS = Number(process.env.INLET_TEST_LISTEN_GAP_MS ?? 1500);
const RANK: Record<string, number> = { starting: 0, processing: 1, succeeded: 2 };

interface Received {
  webhookId: string;
  body: string;
  headers: IncomingMessage['headers'];
}

/** A local app: records every request per path, answers 200. */
async function startReceiver(): Promise<{ server: Server; url: string; got: Map<string, Received[]> }> {
  const got = new Map<string, Received[]>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const list = got.get(req.url ?? '') ?? [];
      list.push({
        webhookId: String(req.headers['webhook-id']),
        body: Buffer.concat(chunks).toString('utf8'),
        headers: req.headers,
      });
      got.set(req.url ?? '', list);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got };
}

interface Listener {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | string>;
}

async function startListen(args: string[]): Promise<Listener> {
  const proc = spawn(process.execPath, [BIN, 'listen', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const listener = { proc, output: () => out, exited };
  await waitFor('listen to start', async () => out.includes('Listening to'), 15_000);
  return listener;
}

/** The distinct deliveries a path received, first arrival of each webhook-id, in arrival order. */
function firstArrivals(list: readonly Received[]): Received[] {
  const seen = new Set<string>();
  return list.filter((r) => (seen.has(r.webhookId) ? false : (seen.add(r.webhookId), true)));
}

describe('inlet listen', () => {
  const temp = tempDir('inlet-listen-');
  let serve: ServeProcess;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const children: Listener[] = [];

  beforeAll(async () => {
    serve = await startServe(`${temp.dir}/inlet.db`);
    receiver = await startReceiver();
  });

  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    await serve?.stop();
    await new Promise((resolve) => receiver?.server.close(resolve));
    temp.cleanup();
  });

  it('forwards every transition in order, re-signed, and catches up after a SIGKILL; two names each get all', async () => {
    const common = ['--url', serve.base, '--secret', LISTEN_SECRET];
    let laptop = await startListen([...common, '--name', 'laptop', '--forward', `${receiver.url}/laptop`]);
    const desk = await startListen([...common, '--name', 'desk', '--forward', `${receiver.url}/desk`]);
    children.push(laptop, desk);

    const run = Math.random().toString(36).slice(2, 8);
    const ids = Array.from({ length: 100 }, (_, i) => `lst_${run}_${i}`);
    const send = async (id: string) => {
      for (const [status, extra] of [
        ['starting', {}],
        ['processing', { logs: 'step 1\n' }],
        ['succeeded', { logs: 'step 1\nstep 2\n', output: [`https://example.com/${id}.png`] }],
      ] as const) {
        const answer = await deliver(
          serve.webhookUrl,
          signedDelivery({ id, model: 'acme/listen', version: 'v', status, input: {}, ...extra }),
        );
        expect(answer.status).toBe(200);
      }
    };
    const completedAt = (path: string, id: string) =>
      (receiver.got.get(path) ?? []).some((r) => r.body.includes(`"${id}"`) && r.body.includes('succeeded'));

    for (const id of ids.slice(0, 30)) await send(id);
    await waitFor('laptop to get the first 30', async () => completedAt('/laptop', ids[29]!));
    laptop.proc.kill('SIGKILL');
    await laptop.exited;

    for (const id of ids.slice(30)) await send(id);
    await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    laptop = await startListen([...common, '--name', 'laptop', '--forward', `${receiver.url}/laptop`]);
    children.push(laptop);

    for (const path of ['/laptop', '/desk']) {
      await waitFor(
        `${path} to get all 300 transitions`,
        async () => {
          return firstArrivals(receiver.got.get(path) ?? []).length >= 300;
        },
        30_000,
      );
    }

    const wh = new Webhook(LISTEN_SECRET);
    for (const path of ['/laptop', '/desk']) {
      const all = receiver.got.get(path)!;
      const distinct = firstArrivals(all);
      expect(distinct).toHaveLength(300);
      for (const r of all) {
        // Every body verifies with the listen secret, byte for byte.
        expect(() => wh.verify(r.body, r.headers as Record<string, string>)).not.toThrow();
      }
      for (const id of ids) {
        const statuses = distinct
          .map((r) => JSON.parse(r.body) as { id: string; status: string })
          .filter((b) => b.id === id)
          .map((b) => RANK[b.status]!);
        expect(statuses, `${path} ${id}`).toEqual([...statuses].sort((a, b) => a - b));
        expect(statuses.at(-1), `${path} ${id}`).toBe(RANK.succeeded);
      }
      // The original Replicate body, unchanged.
      expect(JSON.parse(distinct.at(-1)!.body)).toMatchObject({ model: 'acme/listen', status: 'succeeded' });
    }
    expect(laptop.output()).toMatch(/prediction\.completed\s+lst_\S+\s+succeeded\s+acme\/listen\s+→ 200/);

    const listeners = (await (await fetch(`${serve.base}/api/listeners`)).json()) as {
      data: { name: string; behind: number }[];
    };
    expect(listeners.data.map((l) => l.name).sort()).toEqual(['desk', 'laptop']);

    laptop.proc.kill('SIGINT');
    desk.proc.kill('SIGINT');
    expect(await laptop.exited).toBe(0);
    expect(await desk.exited).toBe(0);
  }, 90_000);

  it('says what is wrong: no --url (2), a bad name (2), an Inlet it cannot reach (1)', async () => {
    const none = await runCli(['listen']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--url');
    const badName = await runCli(['listen', '--url', serve.base, '--name', 'a b']);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/listener name/);
    const down = await runCli(['listen', '--url', 'http://127.0.0.1:9']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/Cannot reach Inlet at http:\/\/127\.0\.0\.1:9/);
  });

  it('GET /api/stream resumes after Last-Event-ID and filters by type', async () => {
    const run = Math.random().toString(36).slice(2, 8);
    const send = (id: string, status: string) =>
      deliver(serve.webhookUrl, signedDelivery({ id, model: 'acme/stream', status, input: {} }));
    const controller = new AbortController();
    const response = await fetch(`${serve.base}/api/stream?events=prediction.completed`, {
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const next = async () => {
      for (;;) {
        const { events, rest } = parseSse(text);
        if (events.length > 0) {
          text = rest;
          return events[0]!;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        text += decoder.decode(value, { stream: true });
      }
    };
    await send(`str_${run}_a`, 'starting');
    await send(`str_${run}_a`, 'succeeded');
    const first = await next();
    expect(first.event).toBe('prediction.completed');
    expect(JSON.parse(first.data)).toMatchObject({ object_id: `str_${run}_a`, status: 'succeeded' });
    await send(`str_${run}_b`, 'failed');
    const second = await next();
    controller.abort();

    // Resuming after the first completed gives the second again, and nothing before it.
    const resumed = await fetch(`${serve.base}/api/stream?events=prediction.completed`, {
      headers: { 'last-event-id': first.id! },
      signal: AbortSignal.timeout(5_000),
    });
    const resumedReader = resumed.body!.getReader();
    let resumedText = '';
    for (;;) {
      const { events } = parseSse(resumedText);
      if (events.length > 0) {
        expect(events[0]!.id).toBe(second.id);
        break;
      }
      const { value } = await resumedReader.read();
      resumedText += decoder.decode(value, { stream: true });
    }
    await resumedReader.cancel();

    const unknown = await fetch(`${serve.base}/api/stream`, { headers: { 'last-event-id': 'tr_nope' } });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('invalid_query');
  });
});

const probe = await postgresOrSkip('the live stream across instances');

describe.skipIf(!probe.ok)('the live stream on PostgreSQL', () => {
  let db: TestDatabase;
  let a: ServeProcess;
  let b: ServeProcess;

  beforeAll(async () => {
    if (!probe.ok) return;
    db = await createTestDatabase(probe.adminUrl, 'inlet_test_stream');
    [a, b] = await Promise.all([startServe(db.url), startServe(db.url)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it("streams the other instance's transitions within a second", async () => {
    const controller = new AbortController();
    const response = await fetch(`${a.base}/api/stream`, { signal: controller.signal });
    const reader = response.body!.getReader();
    // The stream is live once its opening comment arrives.
    let text = new TextDecoder().decode((await reader.read()).value);
    const id = `pgs_${Math.random().toString(36).slice(2, 8)}`;
    const sentAt = performance.now();
    expect((await deliver(b.webhookUrl, signedDelivery({ id, status: 'starting', input: {} }))).status).toBe(
      200,
    );
    for (;;) {
      const { events } = parseSse(text);
      const found = events.find((e) => e.data.includes(id));
      if (found !== undefined) break;
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      text += new TextDecoder().decode(value);
    }
    // NOTIFY wakes it; the 1 s poll is only the fallback.
    expect(performance.now() - sentAt).toBeLessThan(1000);
    controller.abort();
  });
});
