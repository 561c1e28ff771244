import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { ROOT } from './process-helpers.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced block right under "## Quick start": the run command, then the test command. */
function quickStart(): { run: string; test: string } {
  const section = README.split(/^## Quick start$/m)[1] ?? '';
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const [run, test] = block.trim().split('\n');
  return { run: run ?? '', test: test ?? '' };
}

function sh(command: string, cwd: string, env: Record<string, string>, timeoutMs: number): string {
  return execFileSync('bash', ['-c', command], {
    cwd,
    env: { ...process.env, ...env },
    timeout: timeoutMs,
    encoding: 'utf8',
  });
}

describe('README', () => {
  it('has a two-command quick start, and .ci/run runs exactly its test command', () => {
    const { run, test } = quickStart();
    expect(run).toMatch(/^npm ci && /);
    expect(test).toBe('npm test');
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    expect(ci.split('\n').filter((l) => l.trim() === test)).toHaveLength(1);
  });

  describe('the quick start on a fresh clone', () => {
    const tmp = tempDir('inlet-readme-');
    const clone = join(tmp.dir, 'inlet');
    let server: ChildProcess | undefined;
    afterAll(async () => {
      if (server && server.exitCode === null) {
        server.kill('SIGTERM');
        await new Promise((r) => server!.once('exit', r));
      }
      tmp.cleanup();
    });

    it('installs, builds, serves, and does what "Try it locally" says', { timeout: 600_000 }, async () => {
      execFileSync('git', ['clone', '--quiet', ROOT, clone], { timeout: 60_000 });
      const { run } = quickStart();
      // The README's first command, on a free port instead of 5000 (PORT is one of its documented settings).
      server = spawn('bash', ['-c', `exec ${run.replace(/ npm start$/, ' exec npm start')}`], {
        cwd: clone,
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', INLET_LOG_FORMAT: 'json', CI: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let out = '';
      server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      server.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`quick start did not start serving:\n${out.slice(-3000)}`)),
          540_000,
        );
        const check = () => {
          const m = /Inlet is receiving Replicate webhooks at http:\/\/[^\s]+:(\d+)\/replicate-webhook/.exec(
            out,
          );
          if (m?.[1]) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        };
        server!.stdout!.on('data', check);
        server!.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`quick start exited ${code}:\n${out.slice(-3000)}`));
        });
      });

      // "Try it locally", step by step, against that port.
      const secret = /REPLICATE_WEBHOOK_SECRET=(whsec_\S+)/.exec(run)?.[1] ?? '';
      const env = { REPLICATE_WEBHOOK_SECRET: secret };
      const section = README.split(/^## Try it locally$/m)[1]?.split(/^## /m)[0] ?? '';
      const block = (/```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '').replaceAll(
        'localhost:5000',
        `127.0.0.1:${port}`,
      );
      expect(block).toContain('inlet sign');
      const script = block.split('\n').filter((l) => !l.startsWith('export '));
      const joined = script.join('\n').replace(/\\\n/g, ' ');
      const lines = joined
        .split('\n')
        .map((l) => l.replace(/\s+#.*$/, '').trim())
        .filter(Boolean);
      const results = lines.map((line) => sh(line, clone, env, 60_000));
      const curlAnswer =
        results[lines.findIndex((l) => l.startsWith('curl') && l.includes('replicate-webhook'))];
      expect(JSON.parse(curlAnswer ?? '{}')).toEqual({ received: true, duplicate: false });
      const listed = results[lines.findIndex((l) => l === 'npx inlet predictions')];
      expect(listed).toContain('demo1');
      expect(listed).toContain('succeeded');
      const api = results[lines.findIndex((l) => l.includes('/api/predictions/demo1'))];
      expect(JSON.parse(api ?? '{}')).toMatchObject({ id: 'demo1', status: 'succeeded', output: ['hi'] });

      // "Send the same curl again and the answer says duplicate: true".
      const curlLine = lines.find((l) => l.startsWith('curl') && l.includes('replicate-webhook'))!;
      expect(JSON.parse(sh(curlLine, clone, env, 60_000))).toEqual({ received: true, duplicate: true });
    });
  });
});
