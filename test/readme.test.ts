import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { ROOT } from './process-helpers.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The `sh` blocks of one `## ` section, each as its lines. */
function blocks(heading: string): string[][] {
  const section = README.split(new RegExp(`^## ${heading}$`, 'm'))[1]?.split(/^## /m)[0] ?? '';
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => (m[1] ?? '').trim().split('\n'));
}

interface Started {
  proc: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function startShell(command: string, cwd: string, env: Record<string, string>): Started {
  const proc = spawn('bash', ['-c', command], {
    cwd,
    env: { ...process.env, INLET_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    output: () => out,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          clearInterval(poll);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const poll = setInterval(() => {
          const m = pattern.exec(out);
          if (m) {
            clearTimeout(timer);
            clearInterval(poll);
            resolve(m);
          } else if (proc.exitCode !== null) {
            clearTimeout(timer);
            clearInterval(poll);
            reject(new Error(`exited ${proc.exitCode} before ${pattern}:\n${out.slice(-4000)}`));
          }
        }, 50);
      }),
    stop: async (signal = 'SIGINT') => {
      // npm runs the command in a child: signal the whole process group, as Ctrl-C does.
      if (proc.exitCode === null && proc.pid !== undefined) process.kill(-proc.pid, signal);
      return exited;
    },
  };
}

const URL_LINE = /Inlet is receiving Replicate webhooks at http:\/\/[^\s]+:(\d+)\/replicate-webhook/;

describe('README', () => {
  it('has a two-command quick start, and .ci/run runs exactly its test command', () => {
    const [quick] = blocks('Quick start');
    expect(quick).toEqual(['npm ci && npm run dev', 'npm test']);
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    expect(ci.split('\n').filter((l) => l.trim() === 'npm test')).toHaveLength(1);
  });

  describe('on a fresh clone', () => {
    const tmp = tempDir('inlet-readme-');
    const clone = join(tmp.dir, 'inlet');
    const running: Started[] = [];
    afterAll(async () => {
      for (const r of running) await r.stop('SIGKILL').catch(() => undefined);
      tmp.cleanup();
    });

    it(
      'the quick start shows the demo predictions as succeeded within 30 s',
      { timeout: 600_000 },
      async () => {
        execFileSync('git', ['clone', '--quiet', ROOT, clone], { timeout: 60_000 });
        const [quick] = blocks('Quick start');
        // Free ports instead of 5000/5555 so the test can run beside anything (both are documented settings).
        const dev = startShell(quick![0]!, clone, { PORT: '0', INLET_EMULATOR_PORT: '0', CI: 'true' });
        running.push(dev);
        const [, port] = await dev.waitFor(URL_LINE, 540_000);
        const t0 = Date.now();
        await dev.waitFor(/All demo predictions are done/, 30_000);
        expect(Date.now() - t0).toBeLessThan(30_000);
        const list = (await (await fetch(`http://127.0.0.1:${port}/api/predictions`)).json()) as {
          data: { status: string; model: string }[];
        };
        expect(list.data.map((p) => p.model).sort()).toEqual(['inlet/echo', 'inlet/image', 'inlet/stream']);
        expect(list.data.every((p) => p.status === 'succeeded')).toBe(true);
        // The demo image was archived, and Inlet serves it.
        const archived = /output\[0\] archived: (http:\/\/\S+)/.exec(dev.output());
        expect(archived).not.toBeNull();
        const file = await fetch(archived![1]!);
        expect(file.headers.get('content-type')).toBe('image/png');
        expect(
          Buffer.from(await file.arrayBuffer())
            .subarray(1, 4)
            .toString(),
        ).toBe('PNG');
        // Ctrl-C reaches the whole group (bash, npm, inlet); what matters is that Inlet stops cleanly.
        await dev.stop('SIGINT');
        expect(dev.output()).toMatch(/"msg":"stopped"/);
      },
    );

    it('"Try it by hand" does what it says', { timeout: 120_000 }, async () => {
      const [serveBlock, handBlock] = blocks('Try it by hand');
      const serveLine = serveBlock![0]!;
      expect(serveLine).toMatch(/^REPLICATE_WEBHOOK_SECRET=whsec_\S+ npm start$/);
      const serve = startShell(serveLine, clone, { PORT: '0' });
      running.push(serve);
      const [, port] = await serve.waitFor(URL_LINE, 30_000);

      const env = { ...process.env, REPLICATE_WEBHOOK_SECRET: /=(whsec_\S+)/.exec(serveLine)![1]! };
      const lines = handBlock!
        .filter((l) => !l.startsWith('export '))
        .map((l) => l.replace(/\s+#.*$/, '').replaceAll('localhost:5000', `127.0.0.1:${port}`));
      const run = (line: string) =>
        execFileSync('bash', ['-c', line], { cwd: clone, env, timeout: 60_000, encoding: 'utf8' });
      const results = lines.map(run);
      const at = (pred: (l: string) => boolean) => results[lines.findIndex(pred)] ?? '';
      const curlLine = lines.find((l) => l.startsWith('curl') && l.includes('replicate-webhook'))!;
      expect(JSON.parse(at((l) => l === curlLine))).toEqual({ received: true, duplicate: false });
      expect(at((l) => l === 'npx inlet predictions')).toMatch(/demo1\s+succeeded/);
      expect(JSON.parse(at((l) => l.includes('/api/predictions/demo1')))).toMatchObject({
        id: 'demo1',
        status: 'succeeded',
        output: ['hi'],
      });
      // "Send the same curl again and the answer says duplicate: true."
      expect(JSON.parse(run(curlLine))).toEqual({ received: true, duplicate: true });
      // "Change one byte of data/body.json and it says invalid_signature."
      const bodyFile = /> (\S+\.json)/.exec(lines.find((l) => l.startsWith('echo '))!)![1]!;
      run(`sed -i 's/hi/ho/' ${bodyFile}`);
      expect(JSON.parse(run(curlLine)).error.code).toBe('invalid_signature');
      const rejections = JSON.parse(run(`curl -s 127.0.0.1:${port}/api/rejections`));
      expect(rejections.data[0].code).toBe('invalid_signature');
      await serve.stop('SIGINT');
      expect(serve.output()).toMatch(/"msg":"stopped"/);
      // The commands leave nothing that git (and so lint and the format check of `npm test`) would see.
      expect(execFileSync('git', ['status', '--porcelain'], { cwd: clone, encoding: 'utf8' })).toBe('');
    });
  });
});
