import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerDashboardRoutes } from '../src/server/dashboard-routes.js';
import { createTestInlet, prediction, signedHeaders, type TestInlet } from './helpers.js';

let inlet: TestInlet | undefined;

afterEach(async () => {
  await inlet?.close();
  inlet = undefined;
});

/** A built dashboard of two files, so these tests do not depend on `npm run build`. */
function fakeBuild(): string {
  const dir = mkdtempSync(join(tmpdir(), 'inlet-dashboard-build-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><div id="app"></div>');
  writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
  writeFileSync(join(dir, 'secret.txt'), 'not an asset');
  return dir;
}

describe('dashboard routes', () => {
  it('answers index.html on every page path, assets by name, and nothing outside assets/', async () => {
    const app = Fastify();
    registerDashboardRoutes(app, { webhookPaths: ['/replicate-webhook'], dir: fakeBuild() });
    for (const url of ['/', '/predictions/abc', '/predictions/a%2Fb', '/rejections', '/destinations']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    }
    const asset = await app.inject({ url: '/assets/index-abc.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.headers['cache-control']).toContain('immutable');
    for (const url of [
      '/assets/../secret.txt',
      '/assets/%2e%2e/secret.txt',
      '/assets/nope.js',
      '/secret.txt',
    ]) {
      expect((await app.inject({ url })).statusCode, url).toBe(404);
    }
    await app.close();
  });

  it('never shadows the webhook path, even at /', async () => {
    inlet = await createTestInlet({ INLET_WEBHOOK_PATH: '/' });
    const body = JSON.stringify(prediction({ id: 'at-root' }));
    const res = await inlet.app.inject({
      method: 'POST',
      url: '/',
      payload: body,
      headers: signedHeaders(body),
    });
    expect(res.statusCode).toBe(200);
    // GET of the webhook path is the webhook's 405, not the dashboard.
    expect((await inlet.app.inject({ url: '/' })).statusCode).toBe(405);
    expect((await inlet.app.inject({ url: '/api/predictions/at-root' })).statusCode).toBe(200);
    expect((await inlet.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});
