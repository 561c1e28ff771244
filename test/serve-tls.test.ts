import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { runCli, startServe, stop, type RunningServer } from './process-helpers.js';

const ENV = { REPLICATE_WEBHOOK_SECRET: SECRET };

/** A throwaway self-signed certificate for 127.0.0.1 and localhost. */
function makeCertificate(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=inlet-test-${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

interface Answer {
  status: number;
  body: string;
  fingerprint: string;
  reused: boolean;
}

function send(port: number, agent: Agent, path: string, body?: string, headers: Record<string, string> = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', agent, headers },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text, fingerprint, reused: req.reusedSocket }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('serve over HTTPS (--tls-cert, --tls-key)', () => {
  const tmp = tempDir();
  let first: ReturnType<typeof makeCertificate>;
  let second: ReturnType<typeof makeCertificate>;
  let live: { cert: string; key: string };
  let server: RunningServer;

  beforeAll(async () => {
    first = makeCertificate(tmp.dir, 'first');
    second = makeCertificate(tmp.dir, 'second');
    live = { cert: join(tmp.dir, 'live.crt'), key: join(tmp.dir, 'live.key') };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    server = await startServe(
      ['--database', join(tmp.dir, 'tls.db'), '--tls-cert', live.cert, '--tls-key', live.key],
      ENV,
    );
  });
  afterAll(async () => {
    if (server !== undefined) await stop(server);
    tmp.cleanup();
  });

  it('stores a signed delivery sent over TLS, and prints an https:// URL', async () => {
    expect(server.output()).toMatch(/webhooks at https:\/\/127\.0\.0\.1:\d+\/replicate-webhook/);
    const agent = new Agent({ ca: readFileSync(first.cert) });
    const body = JSON.stringify(prediction({ id: 'pred_tls' }));
    const res = await send(server.port, agent, '/replicate-webhook', body, {
      ...signedHeaders(body),
      'content-type': 'application/json',
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ received: true, duplicate: false });
    const stored = await send(server.port, agent, '/api/predictions/pred_tls');
    expect(JSON.parse(stored.body)).toMatchObject({ id: 'pred_tls' });
    agent.destroy();
  });

  it('on SIGHUP serves new connections the new certificate while an open keep-alive connection goes on', async () => {
    const kept = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    const before = await send(server.port, kept, '/healthz');
    expect(before.fingerprint).toBe(first.fingerprint);

    copyFileSync(second.cert, live.cert);
    copyFileSync(second.key, live.key);
    const reloads = server.output().split('TLS certificate reloaded').length;
    server.proc.kill('SIGHUP');
    for (let i = 0; i < 400 && server.output().split('TLS certificate reloaded').length === reloads; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(server.output().split('TLS certificate reloaded').length).toBe(reloads + 1);

    const fresh = new Agent({ ca: readFileSync(second.cert) });
    expect((await send(server.port, fresh, '/healthz')).fingerprint).toBe(second.fingerprint);
    fresh.destroy();
    const again = await send(server.port, kept, '/healthz');
    expect(again).toMatchObject({ status: 200, reused: true, fingerprint: first.fingerprint });
    kept.destroy();
  });

  it('keeps the current certificate when the new files do not make a pair', async () => {
    writeFileSync(live.key, readFileSync(first.key));
    server.proc.kill('SIGHUP');
    for (let i = 0; i < 400 && !server.output().includes('TLS certificate not reloaded'); i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(server.output()).toContain('TLS certificate not reloaded');
    const agent = new Agent({ ca: readFileSync(second.cert) });
    expect((await send(server.port, agent, '/healthz')).fingerprint).toBe(second.fingerprint);
    agent.destroy();
  });

  it('exits 2 at start on half a pair, an unreadable file or a key that does not match', async () => {
    const db = ['--database', join(tmp.dir, 'bad.db')];
    const half = await runCli(['serve', ...db, '--tls-cert', first.cert], ENV);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('--tls-key is missing');
    const missing = await runCli(
      ['serve', ...db, '--tls-cert', join(tmp.dir, 'nope.crt'), '--tls-key', first.key],
      ENV,
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('ENOENT');
    const mismatch = await runCli(['serve', ...db, '--tls-cert', first.cert, '--tls-key', second.key], ENV);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain('not a usable PEM certificate and matching key');
  });
});
