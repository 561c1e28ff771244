import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createAdminAccessHook, isLoopbackHost } from './admin-access.js';

describe('isLoopbackHost (against DNS rebinding)', () => {
  it('accepts localhost and loopback addresses, with an optional port', () => {
    for (const host of [
      'localhost',
      'localhost:5000',
      'LOCALHOST',
      'LocalHost:80',
      'app.localhost:5000',
      '127.0.0.1',
      '127.0.0.1:5000',
      '127.255.255.254:65535',
      '[::1]',
      '[::1]:5000',
      '[0:0:0:0:0:0:0:1]:5000',
      '[::ffff:127.0.0.1]:5000',
    ]) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
  });

  it('refuses every other form', () => {
    for (const host of [
      undefined,
      '',
      ' ',
      '[::1]evil',
      '[::1]evil.com:5000',
      '[::1].evil.com',
      '[::1]:5000evil',
      '[::1]:',
      '[::1]:abc',
      '[::1',
      '::1',
      '[::2]',
      '[fe80::1%25lo]',
      '[::ffff:10.0.0.1]',
      'localhost.evil.com',
      'localhost.evil.com:5000',
      'evil.com',
      'evillocalhost',
      '127.0.0.1.nip.io',
      '127.0.0.1.nip.io:5000',
      '127.0.0.1evil',
      '127.1',
      '127.0.0.256',
      '127.0.0.01',
      '128.0.0.1',
      '0.0.0.0',
      'localhost:abc',
      'localhost:',
      'localhost:5000:5000',
      'localhost:99999',
      'localhost ',
      'localhost/',
      'user@localhost',
      'localhost\u0000.evil.com',
      '-.localhost',
      '.localhost',
    ]) {
      expect(isLoopbackHost(host), JSON.stringify(host)).toBe(false);
    }
  });
});

describe('createAdminAccessHook (CONTRACT §5)', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  /** An app whose /api/thing (GET and POST) is behind the hook; `trustProxy` as Fastify reads it. */
  function serve(adminToken: string | undefined, trustProxy = false): FastifyInstance {
    app = Fastify({ trustProxy });
    app.addHook('onRequest', createAdminAccessHook({ adminToken }));
    app.get('/api/thing', async () => ({ ok: true }));
    app.post('/api/thing', async () => ({ ok: true }));
    return app;
  }

  async function ask(
    server: FastifyInstance,
    options: { method?: 'GET' | 'POST'; remoteAddress?: string; headers?: Record<string, string> } = {},
  ) {
    const res = await server.inject({
      method: options.method ?? 'GET',
      url: '/api/thing',
      remoteAddress: options.remoteAddress ?? '127.0.0.1',
      headers: { host: 'localhost:5000', ...options.headers },
    });
    return {
      status: res.statusCode,
      code: res.statusCode === 200 ? 'ok' : res.json<{ error: { code: string } }>().error.code,
      authenticate: res.headers['www-authenticate'],
    };
  }

  it('with a token, answers 401 with WWW-Authenticate: Bearer unless the request carries it', async () => {
    const server = serve('s3cret-token');
    for (const authorization of [
      undefined,
      '',
      'Bearer wrong-token!',
      'Bearer s3cret-toke',
      'Bearer s3cret-token-and-more',
      'Basic s3cret-token',
      's3cret-token',
    ]) {
      const answer = await ask(server, authorization === undefined ? {} : { headers: { authorization } });
      expect(answer, String(authorization)).toEqual({
        status: 401,
        code: 'unauthorized',
        authenticate: 'Bearer',
      });
    }
    for (const authorization of ['Bearer s3cret-token', 'bearer   s3cret-token ']) {
      expect((await ask(server, { headers: { authorization } })).status, authorization).toBe(200);
    }
  });

  it('with a token, lets it in from anywhere, through proxies and from other hosts', async () => {
    const server = serve('s3cret-token');
    const authorization = 'Bearer s3cret-token';
    expect(
      await ask(server, {
        method: 'POST',
        remoteAddress: '203.0.113.9',
        headers: {
          authorization,
          'x-forwarded-for': '198.51.100.1',
          host: 'inlet.example.com',
          origin: 'https://x.example',
        },
      }),
    ).toMatchObject({ status: 200 });
    expect((await ask(server, { remoteAddress: '203.0.113.9' })).status).toBe(401);
  });

  it('without a token, answers loopback clients naming a loopback host, and refuses others with 403', async () => {
    const server = serve(undefined);
    for (const remoteAddress of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) {
      expect((await ask(server, { remoteAddress })).status, remoteAddress).toBe(200);
    }
    for (const remoteAddress of ['203.0.113.9', '10.0.0.5', '::ffff:10.0.0.5', '2001:db8::1']) {
      expect(await ask(server, { remoteAddress }), remoteAddress).toMatchObject({
        status: 403,
        code: 'forbidden',
      });
    }
    for (const host of ['evil.example', 'localhost.evil.example', '127.0.0.1.nip.io']) {
      expect(await ask(server, { headers: { host } }), host).toMatchObject({
        status: 403,
        code: 'forbidden',
      });
    }
  });

  it('without a token, refuses anything that came through a proxy, whether Fastify trusts proxies or not', async () => {
    for (const trustProxy of [false, true]) {
      const server = serve(undefined, trustProxy);
      for (const headers of [
        { 'x-forwarded-for': '127.0.0.1' } as Record<string, string>,
        { 'x-forwarded-for': '' },
        { forwarded: 'for=127.0.0.1' },
      ]) {
        expect(await ask(server, { headers }), `${trustProxy} ${JSON.stringify(headers)}`).toMatchObject({
          status: 403,
          code: 'forbidden',
        });
      }
      // A proxy elsewhere naming a loopback client does not make it one.
      expect(
        await ask(server, { remoteAddress: '10.0.0.5', headers: { 'x-forwarded-for': '127.0.0.1' } }),
      ).toMatchObject({ status: 403 });
      await server.close();
    }
  });

  it('without a token, refuses changes from a foreign Origin but not reads, nor changes from its own', async () => {
    const server = serve(undefined);
    expect(await ask(server, { method: 'POST', headers: { origin: 'https://evil.example' } })).toMatchObject({
      status: 403,
      code: 'forbidden',
    });
    expect((await ask(server, { method: 'POST' })).status).toBe(200);
    expect((await ask(server, { method: 'POST', headers: { origin: 'http://localhost:5000' } })).status).toBe(
      200,
    );
    expect((await ask(server, { headers: { origin: 'https://evil.example' } })).status).toBe(200);
  });
});
