/**
 * The library example (examples/library/server.mjs) as a user runs it: a signed delivery through the
 * node:http listener and one through the fetch handler each run its handler once (CONTRACT §10).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { waitFor } from './pg-helpers.js';
import { ROOT } from './process-helpers.js';

const tmp = tempDir('inlet-example-');
let child: ChildProcess | undefined;
afterAll(() => {
  if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
  tmp.cleanup();
});

describe('examples/library', () => {
  it('runs its handler once per completed prediction, through node:http and through fetch', async () => {
    const proc = spawn(process.execPath, [join(ROOT, 'examples/library/server.mjs')], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        PORT: '0',
        REPLICATE_WEBHOOK_SECRET: SECRET,
        DATABASE_URL: `sqlite:${join(tmp.dir, 'example.db')}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    await waitFor('the listening line', async () => /listening on (http:\S+)/.test(out));
    const base = /listening on (http:\/\/[^/\s]+)/.exec(out)![1]!;

    const send = async (path: string, object: Record<string, unknown>, id: string) => {
      const body = JSON.stringify(object);
      const res = await fetch(`${base}${path}`, {
        method: 'POST',
        body,
        headers: signedHeaders(body, { id }),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const viaNode = prediction({ status: 'succeeded', output: ['https://x/a.png'] });
    const viaFetch = prediction({ status: 'succeeded', output: ['https://x/b.png'] });
    expect(await send('/replicate-webhook', viaNode, 'msg_node1')).toMatchObject({ status: 200 });
    expect(await send('/fetch/replicate-webhook', viaFetch, 'msg_fetch1')).toMatchObject({ status: 200 });
    // A redelivery is a duplicate, and makes no second call.
    expect(await send('/replicate-webhook', viaNode, 'msg_node1')).toMatchObject({
      status: 200,
      json: { duplicate: true },
    });
    const bad = JSON.stringify(viaNode);
    const forged = await fetch(`${base}/replicate-webhook`, {
      method: 'POST',
      body: bad,
      headers: { ...signedHeaders(bad, { id: 'msg_x' }), 'webhook-signature': 'v1,AAAA' },
    });
    expect(forged.status).toBe(403);

    await waitFor(
      'both handler calls',
      async () =>
        out.includes(`completed ${String(viaNode.id)}`) && out.includes(`completed ${String(viaFetch.id)}`),
    );
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const id of [viaNode.id, viaFetch.id]) {
      expect(out.split(`completed ${String(id)} `).length - 1, String(id)).toBe(1);
    }
  });
});
