import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateWebhook } from 'replicate';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, within, type Receiver } from './emulator-receiver.js';

const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

// The emulator keeps its certificate under XDG_CACHE_HOME: a fresh one here, not the user's.
const CACHE = mkdtempSync(join(tmpdir(), 'inlet-emulate-cli-'));
afterAll(() => rmSync(CACHE, { recursive: true, force: true }));

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.REPLICATE_WEBHOOK_SECRET;
  delete env.REPLICATE_WEBHOOK_SIGNING_SECRET;
  return { ...env, XDG_CACHE_HOME: CACHE, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = cleanEnv(), timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`inlet ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let children: ChildProcess[] = [];
let receivers: Receiver[] = [];
afterEach(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const receiver of receivers) await receiver.close();
  children = [];
  receivers = [];
});

async function receiver(reply?: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(reply);
  receivers.push(r);
  return r;
}

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" before these tests`);
});

describe('inlet emulate', () => {
  it('prints its URL and secret, sends signed webhooks, logs attempts, and stops cleanly on SIGTERM', async () => {
    const hook = await receiver();
    const child = spawn(
      process.execPath,
      [BIN, 'emulate', '--port', '0', '--time-scale', '0.05', '--secret', SECRET],
      {
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 10_000;
    // the start-up block ends with the `try:` line
    while (!/^try: /m.test(stdout)) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`emulate did not start:\n${stdout}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const url = /listening on (http:\/\/127\.0\.0\.1:(\d+)\/v1)/.exec(stdout)![1]!;
    expect(url).not.toMatch(/:0\//);
    expect(stdout).toContain(`secret: ${SECRET}`);
    // What Replicate's clients read: REPLICATE_BASE_URL (an origin) and the JS client's baseUrl.
    const origin = url.replace(/\/v1$/, '');
    expect(stdout).toContain(`REPLICATE_API_TOKEN=anything REPLICATE_BASE_URL=${origin}\n`);
    const httpsUrl = url.replace(/^http:/, 'https:');
    const certPath = join(CACHE, 'inlet', 'emulator', 'emulator-cert.pem');
    expect(stdout).toMatch(/and on https:\/\/127\.0\.0\.1:\d+\/v1 \(same port; certificate (made|reused): /);
    expect(stdout).toContain(`and on ${httpsUrl} (same port; certificate `);
    expect(stdout).toContain(`: ${certPath})`);
    expect(stdout).toContain(
      `JS client: new Replicate({ auth: 'anything', baseUrl: '${httpsUrl}' }), run with NODE_EXTRA_CA_CERTS=${certPath}`,
    );
    expect(stdout).not.toContain('REPLICATE_API_BASE_URL');

    const res = await fetch(`${url}/models/inlet/echo/predictions`, {
      method: 'POST',
      headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
      body: JSON.stringify({
        input: { text: 'cli' },
        webhook: hook.url,
        webhook_events_filter: ['completed'],
      }),
    });
    expect(res.status).toBe(201);
    await hook.waitFor((list) => list.length === 1, 5_000, 'the completed webhook');
    const delivery = hook.received[0]!;
    expect(delivery.json).toMatchObject({ status: 'succeeded', output: 'cli' });
    expect(() =>
      new Webhook(SECRET).verify(delivery.body, delivery.headers as Record<string, string>),
    ).not.toThrow();
    const logDeadline = Date.now() + 2_000;
    while (!stdout.includes('webhook delivered') && Date.now() < logDeadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(stdout).toMatch(
      new RegExp(`webhook delivered webhookId=${delivery.id} .*event=completed .*responseStatus=200`),
    );

    child.kill('SIGTERM');
    expect(await within(exited, 5_000, 'emulate to exit')).toBe(0);
    expect(stdout).toMatch(/stopped/);
  });

  it.each([
    [['--time-scale', 'fast'], '--time-scale'],
    [['--time-scale', '0'], '--time-scale'],
    [['--port', '70000'], '--port'],
    [['--fault-drop', '1.5'], '--fault-drop'],
    [['--retry-window-ms', '-1'], '--retry-window-ms'],
    [['--seed', 'x'], '--seed'],
    [['--secret', 'not a secret!'], '--secret'],
    // a file is no directory: the certificate cannot be kept there
    [['--tls-dir', join(fileURLToPath(import.meta.url), 'tls')], '--tls-dir'],
  ])('rejects %j with exit 2 naming the flag', async (args, flag) => {
    const result = await run(['emulate', '--port', '0', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(flag);
  });

  it('exits 2 naming the port when it is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await run(['emulate', '--port', String(port)]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(String(port));
    } finally {
      blocker.close();
    }
  });
});

describe('inlet trigger', () => {
  it('sends start, logs, output and completed, signed with REPLICATE_WEBHOOK_SECRET, one line each, exit 0', async () => {
    const hook = await receiver();
    const result = await run(
      ['trigger', hook.url, '--model', 'echo'],
      cleanEnv({ REPLICATE_WEBHOOK_SECRET: SECRET }),
    );
    expect(result.code).toBe(0);
    expect(hook.received.map((r) => r.json.status)).toEqual([
      'processing',
      'processing',
      'processing',
      'succeeded',
    ]);
    const ids = new Set(hook.received.map((r) => r.json.id));
    expect(ids.size).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Sending 4 webhooks for prediction [a-z0-9]{26} \(inlet\/echo, succeeded\)/);
    expect(lines.slice(1)).toHaveLength(4);
    lines.slice(1).forEach((line, i) => {
      expect(line).toContain(hook.received[i]!.id);
      expect(line).toMatch(/-> 200 \{"received":true\}$/);
    });
    expect(lines[1]).toMatch(/^start /);
    expect(lines[4]).toMatch(/^completed succeeded/);
    const wh = new Webhook(SECRET);
    for (const r of hook.received) {
      expect(() => wh.verify(r.body, r.headers as Record<string, string>)).not.toThrow();
      await expect(
        validateWebhook({
          id: r.id,
          timestamp: r.timestamp,
          signature: r.signature,
          body: r.body,
          secret: SECRET,
        }),
      ).resolves.toBe(true);
    }
  });

  it('honours --events, --status and --id', async () => {
    const hook = await receiver();
    const result = await run([
      'trigger',
      hook.url,
      '--secret',
      SECRET,
      '--model',
      'stream',
      '--events',
      'start,completed',
      '--status',
      'failed',
      '--id',
      'mypredictionid',
    ]);
    expect(result.code).toBe(0);
    expect(hook.received.map((r) => r.json.status)).toEqual(['processing', 'failed']);
    expect(hook.received.every((r) => r.json.id === 'mypredictionid')).toBe(true);
    expect(hook.received[1]!.json.webhook_events_filter).toEqual(['start', 'completed']);
    expect(hook.received[1]!.json.error).toMatch(/forced/);
  });

  it('exits 1 when a webhook is not answered 2xx', async () => {
    const hook = await receiver((r) =>
      r.json.status === 'succeeded' ? { status: 500, body: '{"error":"nope"}' } : { status: 200 },
    );
    const result = await run(['trigger', hook.url, '--secret', SECRET]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/completed succeeded +msg_\S+ -> 500 \{"error":"nope"\}/);
  });

  it('exits 1 with a clear message when nothing listens at the URL', async () => {
    const closed = await startReceiver();
    await closed.close();
    const result = await run(['trigger', closed.url, '--secret', SECRET]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`cannot reach ${closed.url}`);
    expect(result.stderr).toContain('ECONNREFUSED');
  });

  it.each([
    [[], 'REPLICATE_WEBHOOK_SECRET'],
    [['--secret', SECRET, '--model', 'nope'], '--model'],
    [['--secret', SECRET, '--events', 'start,finished'], '--events'],
    [['--secret', SECRET, '--status', 'done'], '--status'],
    [['--secret', SECRET, '--model', 'fail', '--status', 'succeeded'], '--model'],
    [['--secret', 'whsec_!!'], '--secret'],
    [['ftp://example.test/x', '--secret', SECRET], 'URL'],
  ])('exits 2 for %j', async (args, mention) => {
    const result = await run(['trigger', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(mention);
  });
});
