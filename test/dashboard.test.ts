import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradientPng } from '../src/emulator/png.js';
import { OTHER_SECRET, prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { ROOT, startServe, stop, type RunningServer } from './process-helpers.js';

/**
 * The dashboard in Debian's Chromium against a real `inlet serve` fed signed deliveries: one server and
 * one browser for the file. `INLET_SCREENSHOTS=1` also writes docs/screenshots/*.png.
 */

// What the functions run inside the page (page.evaluate, waitForFunction) use of the browser's globals.
interface PageElement {
  textContent: string | null;
  complete?: boolean;
  naturalWidth?: number;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): { length: number };
};
declare const window: { axe: { run(context: unknown): Promise<{ violations: unknown[] }> } };
declare const sessionStorage: {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
};

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token';
const DIST = join(ROOT, 'dist', 'dashboard');
const SCREENSHOTS = process.env.INLET_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'screenshots') : undefined;
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface Receiver {
  url: string;
  server: Server;
  ok: boolean;
  received: string[];
}

/** A destination that answers 500 until told otherwise. */
async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', server: createServer(), ok: false, received: [] };
  receiver.server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.received.push(Buffer.concat(chunks).toString());
      res.writeHead(receiver.ok ? 200 : 500).end();
    });
  });
  await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

/** Replicate's file host, for the archive to copy the output image from. */
async function startFileHost(png: Buffer): Promise<{ server: Server; base: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length }).end(png);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

// CI installs Debian's chromium (.ci/run); a machine without it skips, CI never does.
describe.skipIf(!existsSync(CHROMIUM) && process.env.CI !== 'true')(
  'dashboard (Chromium against inlet serve)',
  () => {
    const tmp = tempDir('inlet-dashboard-');
    let server: RunningServer;
    let browser: Browser;
    let receiver: Receiver;
    let fileHost: { server: Server; base: string };
    const consoleErrors: string[] = [];
    const t0 = Date.now();
    const at = (seconds: number) => new Date(t0 - 600_000 + seconds * 1000).toISOString();

    async function deliver(object: Record<string, unknown>, options: { id?: string; secret?: string } = {}) {
      const body = JSON.stringify(object);
      return fetch(`${server.base}/replicate-webhook`, {
        method: 'POST',
        body,
        headers: signedHeaders(body, options),
      });
    }

    async function api<T>(path: string): Promise<T> {
      const res = await fetch(`${server.base}/api${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status, path).toBe(200);
      return (await res.json()) as T;
    }

    async function until<T>(
      what: string,
      read: () => Promise<T | undefined>,
      timeoutMs = 10_000,
    ): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = await read();
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    /** A page whose console errors fail the test; signed in unless told otherwise. */
    async function open(
      path: string,
      options: { width?: number; signedIn?: boolean; dark?: boolean; allowConsole?: RegExp } = {},
    ): Promise<{ page: Page; context: BrowserContext }> {
      const width = options.width ?? 1280;
      const context = await browser.newContext({
        viewport: { width, height: width > 800 ? 900 : 844 },
        colorScheme: options.dark === true ? 'dark' : 'light',
        // The page's Content-Security-Policy allows no inline script; axe-core is injected as one.
        bypassCSP: true,
        ...(width > 800 ? {} : { deviceScaleFactor: 2, isMobile: true, hasTouch: true }),
      });
      if (options.signedIn !== false) {
        await context.addInitScript((token) => sessionStorage.setItem('inlet.token', token), TOKEN);
      }
      const page = await context.newPage();
      page.on('console', (message) => {
        if (message.type() !== 'error') return;
        if (options.allowConsole?.test(message.text())) return;
        consoleErrors.push(`${path}: ${message.text()}`);
      });
      page.on('pageerror', (error) => consoleErrors.push(`${path}: ${error.message}`));
      await page.goto(`${server.base}${path}`);
      return { page, context };
    }

    /** axe-core in the page: no serious or critical violation. */
    async function expectAccessible(page: Page): Promise<void> {
      await page.addScriptTag({ content: axeSource });
      const violations = await page.evaluate(async () => {
        const axe = window.axe;
        const result = await axe.run(document);
        return (
          result.violations as { id: string; impact: string; nodes: { target: string[] }[]; help: string }[]
        )
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map(
            (v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`,
          );
      });
      expect(violations).toEqual([]);
    }

    async function screenshot(page: Page, name: string): Promise<void> {
      if (SCREENSHOTS === undefined) return;
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: false });
    }

    beforeAll(async () => {
      receiver = await startReceiver();
      fileHost = await startFileHost(gradientPng(7, 96));
      const config = join(tmp.dir, 'inlet.config.json');
      writeFileSync(
        config,
        JSON.stringify({
          destinations: [
            {
              name: 'app',
              url: receiver.url,
              events: ['prediction.completed'],
              allowPrivateNetwork: true,
              retryDelaysMs: [1000],
            },
          ],
        }),
      );
      server = await startServe(
        [
          '--database',
          join(tmp.dir, 'inlet.db'),
          '--config',
          config,
          '--archive',
          `file:${join(tmp.dir, 'files')}`,
        ],
        {
          REPLICATE_WEBHOOK_SECRET: SECRET,
          INLET_ADMIN_TOKEN: TOKEN,
          INLET_ARCHIVE_HOSTS: '127.0.0.1',
          // The 1 s retry delay passes in 10 ms.
          INLET_TIME_SCALE: '0.01',
        },
      );
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });

      // One prediction with a whole life: started, logs, output, completed, and a repeated delivery.
      const painter = prediction({
        id: 'dash-painter',
        model: 'acme/painter',
        input: { prompt: 'a lighthouse at dusk', steps: 30 },
        created_at: at(0),
      });
      const image = `${fileHost.base}/pbxt/out-0.png`;
      const steps = [
        { ...painter, status: 'starting' },
        { ...painter, status: 'processing', started_at: at(1), logs: 'loading weights\n' },
        {
          ...painter,
          status: 'processing',
          started_at: at(1),
          logs: 'loading weights\nstep 1/30\nstep 30/30\n',
          output: [image],
        },
        {
          ...painter,
          status: 'succeeded',
          started_at: at(1),
          completed_at: at(5),
          logs: 'loading weights\nstep 1/30\nstep 30/30\ndone\n',
          output: [image],
          metrics: { predict_time: 3.92, total_time: 5.01 },
        },
      ];
      for (const [i, step] of steps.entries()) {
        expect((await deliver(step, { id: `msg_painter_${i}` })).status).toBe(200);
      }
      expect((await deliver(steps[3]!, { id: 'msg_painter_3' })).status).toBe(200);

      const others: Record<string, unknown>[] = [
        {
          id: 'dash-writer-1',
          model: 'acme/writer',
          status: 'succeeded',
          output: ['Once ', 'upon ', 'a time.'],
        },
        { id: 'dash-writer-2', model: 'acme/writer', status: 'processing', logs: 'thinking\n' },
        { id: 'dash-broken', model: 'acme/painter', status: 'failed', error: 'CUDA out of memory' },
        { id: 'dash-upscaler', model: 'acme/upscaler', status: 'canceled' },
        { id: 'dash-starting', model: 'acme/upscaler', status: 'starting' },
      ];
      for (const [i, other] of others.entries()) {
        const started = other.status === 'starting' ? {} : { started_at: at(10 + i) };
        const completed =
          other.status === 'succeeded' || other.status === 'failed' || other.status === 'canceled'
            ? { completed_at: at(12 + i), metrics: { predict_time: 1.5 + i } }
            : {};
        const object = prediction({ created_at: at(10 + i), ...started, ...completed, ...other });
        expect((await deliver(object)).status).toBe(200);
      }

      // Rejections: a wrong secret, a skewed clock, a proxy that dropped the headers.
      expect((await deliver(prediction({ id: 'dash-forged' }), { secret: OTHER_SECRET })).status).toBe(403);
      const skewed = JSON.stringify(prediction({ id: 'dash-skewed' }));
      const old = await fetch(`${server.base}/replicate-webhook`, {
        method: 'POST',
        body: skewed,
        headers: signedHeaders(skewed, { timestampSec: Math.floor(Date.now() / 1000) - 3600 }),
      });
      expect(old.status).toBe(403);
      const bare = await fetch(`${server.base}/replicate-webhook`, {
        method: 'POST',
        body: JSON.stringify(prediction({ id: 'dash-bare' })),
        headers: { 'content-type': 'application/json' },
      });
      expect(bare.status).toBe(400);

      // The archive copies the image, and the destination gives up on the completed message.
      await until('the archived image', async () => {
        const files = await api<{ data: { sha256?: string }[] }>('/predictions/dash-painter/files');
        return files.data[0]?.sha256 === undefined ? undefined : true;
      });
      // Four completed predictions: four messages, each dead after two failed attempts.
      await until('the dead messages', async () => {
        const dead = await api<{ data: unknown[] }>('/messages?state=dead');
        return dead.data.length === 4 ? true : undefined;
      });
      await until('the rejections', async () => {
        const rejections = await api<{ data: unknown[] }>('/rejections');
        return rejections.data.length === 3 ? true : undefined;
      });
    });

    afterAll(async () => {
      await browser?.close();
      if (server !== undefined) await stop(server);
      if (receiver !== undefined) await closeServer(receiver.server);
      if (fileHost !== undefined) await closeServer(fileHost.server);
      tmp.cleanup();
      expect(consoleErrors).toEqual([]);
    });

    it('ships a first page under 100 KB of gzipped JavaScript, from the package', () => {
      const html = readFileSync(join(DIST, 'index.html'), 'utf8');
      const scripts = [...html.matchAll(/<script[^>]*src="\/([^"]+)"/g)].map((m) => m[1]!);
      expect(scripts.length).toBeGreaterThan(0);
      expect(html).not.toMatch(/https?:\/\//);
      let gzipped = 0;
      for (const script of scripts) {
        const bytes = readFileSync(join(DIST, script));
        gzipped += gzipSync(bytes).length;
        // Static imports load with the first page too.
        for (const m of bytes.toString().matchAll(/from\s*["']\.\/([^"']+\.js)["']/g)) {
          gzipped += gzipSync(readFileSync(join(DIST, 'assets', m[1]!))).length;
        }
      }
      expect(gzipped).toBeLessThan(100 * 1024);
      const assets = readdirSync(join(DIST, 'assets'));
      expect(assets.some((f) => f.endsWith('.css'))).toBe(true);
      for (const file of assets) expect(statSync(join(DIST, 'assets', file)).size).toBeGreaterThan(0);
    });

    it('serves index.html for deep links, without a token, and leaves the API and webhook alone', async () => {
      for (const path of ['/', '/predictions/dash-painter', '/rejections', '/destinations']) {
        const res = await fetch(`${server.base}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/html/);
        expect(await res.text()).toContain('<div id="app">');
      }
      expect((await fetch(`${server.base}/api/predictions`)).status).toBe(401);
      expect((await fetch(`${server.base}/replicate-webhook`)).status).toBe(405);
      expect((await fetch(`${server.base}/healthz`)).status).toBe(200);
      expect((await fetch(`${server.base}/assets/nope.js`)).status).toBe(404);
    });

    it('lists predictions, narrows them with filters and search, and draws the chart', async () => {
      const { page, context } = await open('/');
      await page.waitForSelector('tr[data-id="dash-painter"]');
      expect(await page.locator('tbody tr').count()).toBe(6);
      await expect.poll(() => page.locator('[data-total="accepted"]').textContent()).not.toBe('0');
      expect(await page.locator('[data-total="duplicate"]').textContent()).toBe('1');
      const rejected = (await api<{ data: unknown[] }>('/rejections')).data.length;
      expect(rejected).toBeGreaterThanOrEqual(3);
      expect(await page.locator('[data-total="rejected"]').textContent()).toBe(String(rejected));
      const painterRow = page.locator('tr[data-id="dash-painter"]');
      expect(await painterRow.locator('.badge').textContent()).toBe('succeeded');
      expect(await painterRow.textContent()).toContain('3.92 s');
      await expectAccessible(page);
      await screenshot(page, 'predictions-1280');

      await page.selectOption('select[name="status"]', 'failed');
      await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
      expect(await page.locator('tbody tr').getAttribute('data-id')).toBe('dash-broken');
      expect(page.url()).toContain('status=failed');

      await page.selectOption('select[name="status"]', '');
      await page.fill('input[name="q"]', 'writer');
      await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 2);
      const ids = await page
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
      expect(ids.sort()).toEqual(['dash-writer-1', 'dash-writer-2']);
      await context.close();

      // Keyset paging: the API's next_cursor behind "Show older".
      const paged = await open('/?limit=4');
      await paged.page.waitForSelector('tr[data-id="dash-starting"]');
      expect(await paged.page.locator('tbody tr').count()).toBe(4);
      await paged.page.getByRole('button', { name: 'Show older' }).click();
      await paged.page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 6);
      expect(await paged.page.getByRole('button', { name: 'Show older' }).count()).toBe(0);
      await paged.context.close();

      const narrow = await open('/', { width: 390 });
      await narrow.page.waitForSelector('tr[data-id="dash-painter"]');
      await expectAccessible(narrow.page);
      await screenshot(narrow.page, 'predictions-390');
      await narrow.context.close();

      const dark = await open('/', { dark: true });
      await dark.page.waitForSelector('tr[data-id="dash-painter"]');
      await expectAccessible(dark.page);
      await screenshot(dark.page, 'predictions-dark-1280');
      await dark.context.close();
    });

    it('shows a prediction: timeline with gaps, archived output image, logs and the raw delivery', async () => {
      const { page, context } = await open('/predictions/dash-painter');
      await page.waitForSelector('.timeline li');
      expect(await page.locator('.timeline li').count()).toBe(4);
      const timeline = await page.locator('.timeline').textContent();
      for (const what of ['started', 'new logs', 'new output', 'completed', '1 duplicate']) {
        expect(timeline).toContain(what);
      }
      expect(await page.locator('.timeline .gap').count()).toBe(3);
      // The image is the archive's copy, read through the API with the token.
      const image = page.locator('img[data-archived]');
      await image.waitFor();
      await page.waitForFunction(() => {
        const img = document.querySelector('img[data-archived]');
        return img !== null && img.complete && img.naturalWidth === 96;
      });
      expect(await page.locator('pre.logs').textContent()).toContain('step 30/30');
      expect(await page.locator('pre.json').first().textContent()).toContain('a lighthouse at dusk');
      // The raw delivery of the last event: redacted signature, the body as received.
      const raw = page.locator('[data-raw-event="msg_painter_3"]');
      await raw.waitFor();
      expect(await raw.locator('tr', { hasText: 'webhook-signature' }).locator('td').textContent()).toBe(
        '[redacted]',
      );
      expect(await raw.locator('pre').textContent()).toContain('"completed_at"');
      // Another delivery's raw view on demand.
      await page.locator('.timeline li').first().getByRole('button', { name: 'Raw delivery' }).click();
      await page.waitForSelector('[data-raw-event="msg_painter_0"]');
      // Its transitions and the message each made, with the dead one's retry button.
      const transitions = await page.locator('.transitions').textContent();
      expect(transitions).toContain('prediction.completed');
      expect(await page.locator('.message [data-message], .message').count()).toBeGreaterThan(0);
      await expectAccessible(page);
      await screenshot(page, 'prediction-1280');
      await context.close();

      const narrow = await open('/predictions/dash-painter', { width: 390 });
      await narrow.page.waitForSelector('img[data-archived]');
      await expectAccessible(narrow.page);
      await screenshot(narrow.page, 'prediction-390');
      await narrow.context.close();
    });

    it('shows a delivery sent while the page is open within a second', async () => {
      const { page, context } = await open('/');
      await page.waitForSelector('tr[data-id="dash-painter"]');
      await page.waitForSelector('.live-on');
      const sent = Date.now();
      expect(
        (await deliver(prediction({ id: 'dash-live', model: 'acme/live', status: 'starting' }))).status,
      ).toBe(200);
      await page.waitForSelector('tr[data-id="dash-live"]', { timeout: 1000 });
      expect(Date.now() - sent).toBeLessThan(1000);
      expect(await page.locator('tbody tr').first().getAttribute('data-id')).toBe('dash-live');

      // And on its own page, the next change joins the timeline.
      await page.click('a[href="/predictions/dash-live"]');
      await page.waitForSelector('.timeline li');
      expect(
        (
          await deliver(
            prediction({ id: 'dash-live', model: 'acme/live', status: 'processing', logs: 'booting\n' }),
          )
        ).status,
      ).toBe(200);
      await page.waitForFunction(() => document.querySelectorAll('.timeline li').length === 2, undefined, {
        timeout: 1000,
      });
      await context.close();
    });

    it('explains each rejection: clock skew, wrong secret, missing headers', async () => {
      const { page, context } = await open('/rejections');
      await page.waitForSelector('[data-code="invalid_signature"]');
      const text = async (code: string) => page.locator(`[data-code="${code}"]`).textContent();
      expect(await text('invalid_signature')).toContain('Wrong or rotated secret');
      expect(await text('invalid_signature')).toContain('re-serialised');
      expect(await text('timestamp_out_of_tolerance')).toContain('Clock skew');
      expect(await text('timestamp_out_of_tolerance')).toContain('NTP');
      expect(await text('missing_signature')).toContain('Missing signature headers');
      await screenshot(page, 'rejections-1280');
      await page.locator('[data-code="invalid_signature"] summary').click();
      expect(await page.locator('[data-code="invalid_signature"] pre').textContent()).toContain(
        'dash-forged',
      );
      await expectAccessible(page);
      await context.close();

      const narrow = await open('/rejections', { width: 390 });
      await narrow.page.waitForSelector('[data-code="invalid_signature"]');
      await expectAccessible(narrow.page);
      await screenshot(narrow.page, 'rejections-390');
      await narrow.context.close();
    });

    it('asks for the token when the API wants one, keeps it for the session, and then works', async () => {
      // The first API answer is the 401 that brings up the form: the browser logs that request.
      const { page, context } = await open('/rejections', { signedIn: false, allowConsole: /401/ });
      await page.waitForSelector('form.sign-in');
      await expectAccessible(page);
      await screenshot(page, 'sign-in-1280');
      await page.fill('input[name="token"]', TOKEN);
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-code="invalid_signature"]');
      expect(await page.evaluate(() => sessionStorage.getItem('inlet.token'))).toBe(TOKEN);
      // Keyboard: the nav is reachable and works without a mouse.
      await page.focus('a[href="/destinations"]');
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-destination="app"]');
      expect(new URL(page.url()).pathname).toBe('/destinations');
      await context.close();
    });

    it('retries a dead message from the destinations page', async () => {
      const { page, context } = await open('/destinations');
      const card = page.locator('[data-destination="app"]');
      await card.locator('.messages .message').first().waitFor();
      expect(Number(await card.locator('[data-dead]').textContent())).toBeGreaterThan(0);
      expect(await card.textContent()).toContain('HTTP 500');
      await expectAccessible(page);
      await screenshot(page, 'destinations-1280');
      const narrow = await open('/destinations', { width: 390 });
      await narrow.page.locator('[data-destination="app"] .messages .message').first().waitFor();
      await expectAccessible(narrow.page);
      await screenshot(narrow.page, 'destinations-390');
      await narrow.context.close();

      receiver.ok = true;
      const before = receiver.received.length;
      const deadMessages = await card.locator('.messages .message').count();
      for (let i = 0; i < deadMessages; i++) {
        await card.locator('.messages .message').first().getByRole('button', { name: 'Retry' }).click();
        await page.waitForFunction(
          (left) => document.querySelectorAll('[data-destination="app"] .messages .message').length === left,
          deadMessages - i - 1,
        );
      }
      await page.waitForFunction(
        () => document.querySelector('[data-destination="app"] [data-dead]')?.textContent === '0',
      );
      await until('the retried delivery', async () => (receiver.received.length > before ? true : undefined));
      const delivered = await api<{ data: unknown[] }>('/messages?state=delivered&destination=app');
      expect(delivered.data.length).toBeGreaterThan(0);

      // Disable and enable from the page.
      await card.getByRole('button', { name: 'Disable' }).click();
      await card.getByRole('button', { name: 'Enable' }).waitFor();
      expect((await api<{ data: { enabled: boolean }[] }>('/destinations')).data[0]!.enabled).toBe(false);
      await card.getByRole('button', { name: 'Enable' }).click();
      await card.getByRole('button', { name: 'Disable' }).waitFor();
      await context.close();
    });
  },
);
