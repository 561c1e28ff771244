/**
 * The operations verbs against a running Inlet (CONTRACT §13, issue #15): `inlet destinations`,
 * `messages`, `replay` with `--url` print what they print from the database serve uses, byte for byte,
 * and change the same things.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { waitFor } from './pg-helpers.js';
import { type RunningServer, startServe, stop } from './process-helpers.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function inlet(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await runCli(args, {
    env,
    stdin: new PassThrough(),
    stdout,
    stderr,
    setExitCode: () => undefined,
  });
  return { code, stdout: out, stderr: err };
}

const TOKEN = 'tok-remote';

describe('operations verbs through --url print what they print from the database', () => {
  const tmp = tempDir('inlet-remote-');
  const db = join(tmp.dir, 'inlet.db');
  let receiver: Server;
  let server: RunningServer;
  const good = prediction({ model: 'acme/good' });
  const bad = [prediction({ status: 'succeeded' }), prediction({ status: 'failed', error: 'boom' })];
  let startedAt = '';

  const local = (args: string[]) => inlet([...args, '--database', db]);
  const remote = (args: string[]) => inlet([...args, '--url', server.base, '--token', TOKEN]);

  async function app(): Promise<{ pending: number; dead: number }> {
    const res = await fetch(`${server.base}/api/destinations`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const { data } = (await res.json()) as { data: { name: string; pending: number; dead: number }[] };
    return data.find((d) => d.name === 'app')!;
  }

  async function settled(dead: number): Promise<void> {
    await waitFor(`app settled with ${dead} dead`, async () => {
      const d = await app();
      return d.pending === 0 && d.dead === dead;
    });
  }

  async function deliver(object: Record<string, unknown>): Promise<void> {
    const body = JSON.stringify(object);
    const res = await fetch(`${server.base}/replicate-webhook`, {
      method: 'POST',
      body,
      headers: signedHeaders(body),
    });
    expect(res.status).toBe(200);
  }

  beforeAll(async () => {
    // The receiver fails every message but those of the good prediction: the others die at once.
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const id = (JSON.parse(body) as { data?: { id?: string } }).data?.id;
        res.writeHead(id === good.id || id === undefined ? 204 : 500).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const config = join(tmp.dir, 'inlet.config.json');
    writeFileSync(
      config,
      JSON.stringify({
        destinations: [
          {
            name: 'app',
            url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
            secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
            events: ['prediction.*'],
            allowPrivateNetwork: true,
            retryDelaysMs: [],
          },
        ],
      }),
    );
    server = await startServe(['--database', db, '--config', config], {
      REPLICATE_WEBHOOK_SECRET: SECRET,
      INLET_ADMIN_TOKEN: TOKEN,
    });
    startedAt = new Date().toISOString();
    await deliver(good);
    await deliver({ ...good, status: 'succeeded', output: ['https://x/y.png'] });
    for (const b of bad) await deliver(b);
    await settled(2);
  });

  afterAll(async () => {
    if (server !== undefined) await stop(server);
    receiver?.close();
    tmp.cleanup();
  });

  async function messageIds(state: string): Promise<string[]> {
    const out = await local(['messages', '--state', state, '--json']);
    return (JSON.parse(out.stdout) as { data: { id: string }[] }).data.map((m) => m.id);
  }

  it('reads: destinations, one destination, messages and their filters, one message, dry runs', async () => {
    const [deadId] = await messageIds('dead');
    const [deliveredId] = await messageIds('delivered');
    const verbs = [
      ['destinations'],
      ['destinations', 'list', '--json'],
      ['destinations', 'show', 'app'],
      ['destinations', 'show', 'app', '--json'],
      ['messages'],
      ['messages', '--json'],
      ['messages', '--state', 'dead'],
      ['messages', '--destination', 'app', '--limit', '1'],
      ['messages', '--limit', '1', '--json'],
      ['messages', '--prediction', good.id as string],
      ['messages', '--destination', 'nope'],
      ['messages', 'show', deadId!],
      ['messages', 'show', deliveredId!],
      ['replay', good.id as string, '--to', 'app', '--dry-run'],
      ['replay', '--since', startedAt, '--to', 'app', '--dry-run'],
      ['replay', '--since', startedAt, '--status', 'failed', '--to', 'app', '--dry-run'],
      ['replay', '--until', startedAt, '--to', 'app', '--dry-run'],
    ];
    for (const verb of verbs) {
      const here = await local(verb);
      expect({ verb, code: here.code, stderr: here.stderr }).toEqual({ verb, code: 0, stderr: '' });
      expect({ verb, ...(await remote(verb)) }).toEqual({ verb, ...here });
    }
    // The next page: the cursor of one answer works in the other.
    const first = JSON.parse((await remote(['messages', '--limit', '2', '--json'])).stdout) as {
      next_cursor: string;
    };
    const page = ['messages', '--limit', '2', '--cursor', first.next_cursor];
    expect(await remote(page)).toEqual(await local(page));
    expect((await local(['replay', '--since', startedAt, '--to', 'app', '--dry-run'])).stdout).toBe(
      'Would replay 4 messages to app (dry run: nothing sent).\n',
    );
  });

  it('not found and usage errors: the same exit code and stdout; stderr names where it looked', async () => {
    const verbs = [
      ['destinations', 'show', 'nope'],
      ['destinations', 'enable', 'nope'],
      ['destinations', 'disable', 'nope'],
      ['destinations', 'test', 'nope'],
      ['messages', 'show', 'msg_nope'],
      ['messages', 'retry', 'msg_nope'],
      ['replay', good.id as string, '--to', 'nope', '--dry-run'],
    ];
    for (const verb of verbs) {
      const here = await local(verb);
      const there = await remote(verb);
      expect({ verb, code: there.code, stdout: there.stdout }).toEqual({ verb, code: 1, stdout: '' });
      expect(here.code).toBe(1);
      expect(there.stderr).toBe(here.stderr.replace(db, server.base));
    }
    for (const verb of [
      ['messages', '--state', 'lost'],
      ['messages', '--limit', '0'],
      ['messages', 'retry'],
      ['replay', '--to', 'app'],
      ['replay', '--since', 'yesterday', '--to', 'app'],
      ['destinations', 'enable', 'app', '--from', 'then'],
    ]) {
      const here = await local(verb);
      expect({ verb, code: here.code }).toEqual({ verb, code: 2 });
      expect({ verb, ...(await remote(verb)) }).toEqual({ verb, ...here });
    }
  });

  it('changes: disable, enable (from now), retry, retry --all-dead, replay, test', async () => {
    const [deliveredId] = await messageIds('delivered');
    // Each change once here and once there, on the same state: the same output, the same effect.
    for (const verb of [
      ['destinations', 'disable', 'app'],
      ['destinations', 'enable', 'app'],
      ['destinations', 'enable', 'app', '--from', 'now'],
      ['messages', 'retry', deliveredId!],
      ['messages', 'retry', '--all-dead', '--destination', 'nope'],
    ]) {
      const here = await local(verb);
      expect({ verb, ...(await remote(verb)) }).toEqual({ verb, ...here });
    }
    expect((await local(['messages', 'retry', deliveredId!])).stderr).toContain('is not dead');

    const [deadId] = await messageIds('dead');
    for (const run of [local, remote]) {
      const one = await run(['messages', 'retry', deadId!]);
      expect(one).toEqual({ code: 0, stdout: `Retrying ${deadId}: pending now.\n`, stderr: '' });
      await settled(2);
      const all = await run(['messages', 'retry', '--all-dead']);
      expect(all).toEqual({ code: 0, stdout: 'Retrying 2 dead messages: pending now.\n', stderr: '' });
      await settled(2);
      const replayed = await run(['replay', good.id as string, '--to', 'app']);
      expect(replayed).toEqual({ code: 0, stdout: 'Replaying 2 messages to app.\n', stderr: '' });
      await settled(2);
    }
    // The receiver answered every attempt: 2 good messages + 2 that died, then per round 1 + 2 + 2.
    const attempts = JSON.parse((await remote(['messages', 'show', deadId!])).stdout) as {
      attempt_log: unknown[];
    };
    expect(attempts.attempt_log).toHaveLength(5);

    // A test message goes from where the verb runs; only its id and duration differ.
    const normalise = (r: Result) => ({
      ...r,
      stdout: r.stdout.replace(/"msg_[^"]+"/, '"msg_…"').replace(/"duration_ms": \d+/, '"duration_ms": 0'),
    });
    const here = normalise(await local(['destinations', 'test', 'app']));
    expect(here).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(here.stdout)).toMatchObject({ outcome: 'delivered', status: 204 });
    expect(normalise(await remote(['destinations', 'test', 'app']))).toEqual(here);
  });

  it('INLET_URL and INLET_ADMIN_TOKEN; a refused token and an unreachable Inlet say what to do', async () => {
    const viaEnv = await inlet(['messages'], { INLET_URL: server.base, INLET_ADMIN_TOKEN: TOKEN });
    expect(viaEnv).toEqual(await local(['messages']));

    for (const verb of [
      ['messages'],
      ['destinations', 'disable', 'app'],
      ['replay', good.id as string, '--to', 'app'],
    ]) {
      const refused = await inlet([...verb, '--url', server.base, '--token', 'wrong']);
      expect({ verb, code: refused.code }).toEqual({ verb, code: 2 });
      expect(refused.stderr).toContain('pass --token or set INLET_ADMIN_TOKEN');
      expect(refused.stdout).toBe('');
    }
    expect((await app()).pending).toBe(0);

    const down = await inlet([
      'messages',
      'retry',
      '--all-dead',
      '--url',
      'http://127.0.0.1:9',
      '--token',
      TOKEN,
    ]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('Cannot reach Inlet at http://127.0.0.1:9');
    const badUrl = await inlet(['destinations', '--url', 'ftp://x']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('--url must be an http:// or https:// URL');
  });
});
