import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { ROOT } from './process-helpers.js';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};

/** What a stranger does: `npm pack`, install the tarball into an empty folder, run what the README says. */
describe(`the packed ${pkg.name} package, installed into an empty folder`, () => {
  const tmp = tempDir('inlet-pack-');
  const app = join(tmp.dir, 'app');
  const env = { ...process.env, INLET_LOG_FORMAT: 'json', npm_config_update_notifier: 'false' };
  let dev: ChildProcess | undefined;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/cli/bin.js'))) throw new Error('dist/ is missing: run `npm run build`');
    // dist/ is built by `npm test` before the tests run; packing does not rebuild it.
    const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.dir], {
      cwd: ROOT,
      env,
    });
    const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'try-inlet', private: true, type: 'module' }),
    );
    // The npm cache that `npm ci` filled serves the dependencies; the registry is asked only for what it lacks.
    await run(
      'npm',
      ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', join(tmp.dir, filename)],
      { cwd: app, env, timeout: 240_000 },
    );
    // better-sqlite3's install script would compile the addon (minutes without its prebuilt download):
    // reuse the one this checkout built, for the same version and Node.
    const addon = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
    const version = (dir: string) =>
      (
        JSON.parse(readFileSync(join(dir, 'node_modules/better-sqlite3/package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
    if (version(app) === version(ROOT)) {
      mkdirSync(join(app, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
      copyFileSync(join(ROOT, addon), join(app, addon));
    } else {
      await run('npm', ['rebuild', 'better-sqlite3'], { cwd: app, env, timeout: 400_000 });
    }
  }, 600_000);

  afterAll(() => {
    if (dev?.pid !== undefined && dev.exitCode === null && dev.signalCode === null) {
      process.kill(-dev.pid, 'SIGKILL');
    }
    tmp.cleanup();
  });

  it('ships the command as `inlet` and the built files only', () => {
    const installed = JSON.parse(
      readFileSync(join(app, 'node_modules', pkg.name, 'package.json'), 'utf8'),
    ) as {
      bin: Record<string, string>;
    };
    expect(Object.keys(installed.bin)).toEqual(['inlet']);
    expect(existsSync(join(app, 'node_modules', pkg.name, 'src'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', pkg.name, 'dist/index.d.ts'))).toBe(true);
    // The built dashboard ships; its source does not.
    expect(existsSync(join(app, 'node_modules', pkg.name, 'dist/dashboard/index.html'))).toBe(true);
    expect(existsSync(join(app, 'node_modules', pkg.name, 'dashboard'))).toBe(false);
  });

  it('`npx inlet --version` prints the version', async () => {
    const { stdout } = await run('npx', ['inlet', '--version'], { cwd: app, env });
    expect(stdout.trim()).toBe(pkg.version);
  });

  it('`npx inlet dev` starts and prints its URLs', async () => {
    const proc = spawn('npx', ['inlet', 'dev', '--port', '0', '--emulator-port', '0'], {
      cwd: app,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    dev = proc;
    let out = '';
    // 'close' waits for every process holding the pipes (npx and the inlet it started), not npx alone.
    const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
    const urls = await new Promise<{ webhook: string; emulator: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`inlet dev printed no URLs:\n${out}`)), 30_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const webhook = /receiving Replicate webhooks at (http:\/\/\S+)/.exec(out)?.[1];
        const emulator = /Replicate emulator at (https?:\/\/\S+)/.exec(out)?.[1];
        if (webhook && emulator) {
          clearTimeout(timer);
          resolve({ webhook, emulator });
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      void exited.then((code) => reject(new Error(`inlet dev exited (${code}):\n${out}`)));
    });
    expect(urls.webhook).toMatch(/\/replicate-webhook$/);
    const health = await fetch(new URL('/healthz', urls.webhook));
    expect(health.status).toBe(200);
    // Ctrl-C reaches the whole group (npx, inlet); what matters is that Inlet stops cleanly.
    process.kill(-proc.pid!, 'SIGINT');
    await exited;
    expect(out).toMatch(/"msg":"stopped"/);
    expect(existsSync(join(app, 'data/inlet.db'))).toBe(true);
  });

  it(`\`import … from '${pkg.name}'\` works`, async () => {
    const script = `
      import * as inlet from '${pkg.name}';
      const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
      const body = Buffer.from('{"id":"p1","status":"succeeded"}');
      const headers = inlet.signWebhook(body, { secret, id: 'msg_1', timestampSec: Math.floor(Date.now() / 1000) });
      const result = inlet.verifyWebhook(body, headers, { secrets: [secret], toleranceSec: 300 });
      console.log(JSON.stringify({ exports: Object.keys(inlet), ok: result.ok }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env });
    const { exports, ok } = JSON.parse(stdout) as { exports: string[]; ok: boolean };
    expect(exports).toEqual(expect.arrayContaining(['verifyWebhook', 'signWebhook', 'createEmulator']));
    expect(ok).toBe(true);
  });
});
