import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveDestination } from '../src/archive/archive-destination.js';
import { createInlet, type Inlet } from '../src/inlet.js';
import type { ArchiveResult } from '../src/store/recover-types.js';
import { openStore } from '../src/store/index.js';
import { prediction, quietLogger, signedHeaders, testConfig } from './helpers.js';

/**
 * The archive end to end in one process: a real Inlet (SQLite), real HTTP sources on loopback, and
 * both destinations (a directory, and an S3-compatible server started here).
 */

const MAX_BYTES = 64 * 1024;
const PNG = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(5000, 7)]);
const SECOND = Buffer.from('second file, different bytes');
const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Source {
  server: Server;
  base: string;
  requests: string[];
  authorizations: (string | undefined)[];
  removed: boolean;
}

async function listen(
  host: string,
  handler: (req: IncomingMessage, res: ServerResponse, source: Source) => void,
): Promise<Source> {
  const source = { requests: [], authorizations: [], removed: false } as unknown as Source;
  source.server = createServer((req, res) => {
    source.requests.push(req.url ?? '');
    source.authorizations.push(req.headers.authorization);
    handler(req, res, source);
  });
  await new Promise<void>((resolve) => source.server.listen(0, host, resolve));
  source.base = `http://${host}:${(source.server.address() as AddressInfo).port}`;
  return source;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Replicate's file host, as far as the archive can tell: files that expire, and the usual failures. */
function serveFiles(req: IncomingMessage, res: ServerResponse, source: Source, disallowed: () => string) {
  const path = req.url ?? '';
  if (path.startsWith('/files/') && source.removed) {
    res.writeHead(404).end();
  } else if (path === '/files/out-0.png') {
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length }).end(PNG);
  } else if (path === '/files/second.txt') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(SECOND);
  } else if (path === '/files/missing.png') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such file');
  } else if (path === '/files/big.bin') {
    res.writeHead(200, { 'content-length': MAX_BYTES + 1 }).end(Buffer.alloc(MAX_BYTES + 1));
  } else if (path === '/files/endless.bin') {
    // No Content-Length: the limit must hold while streaming.
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(16 * 1024, 1);
    const write = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', write);
    };
    res.on('close', () => res.removeAllListeners('drain'));
    write();
  } else if (path === '/files/redirect-out') {
    res.writeHead(302, { location: `${disallowed()}/stolen` }).end();
  } else if (path === '/files/redirect-in') {
    res.writeHead(302, { location: '/files/second.txt' }).end();
  } else {
    res.writeHead(404).end();
  }
}

async function startS3(): Promise<{ destination: ArchiveDestination; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'inlet-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory: dir, silent: true });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  await client.send(new CreateBucketCommand({ Bucket: 'inlet-files' }));
  client.destroy();
  return {
    destination: {
      kind: 's3',
      bucket: 'inlet-files',
      prefix: 'archive/test',
      endpoint,
      region: 'us-east-1',
      credentials,
    },
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Kind = 'file' | 's3';

describe.each<Kind>(['file', 's3'])('archive to %s', (kind) => {
  let source: Source;
  let outside: Source;
  let inlet: Inlet;
  let dir: string;
  let s3: Awaited<ReturnType<typeof startS3>> | undefined;
  const results: { path: string; result: ArchiveResult }[] = [];
  const waiters: (() => void)[] = [];

  /** Resolves once `n` attempts have been recorded in all. */
  function attempts(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (results.length >= n) resolve();
        else waiters.push(check);
      };
      check();
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inlet-archive-'));
    outside = await listen('127.0.0.2', (_req, res) => res.writeHead(200).end('secret'));
    source = await listen('127.0.0.1', (req, res, s) => serveFiles(req, res, s, () => outside.base));
    if (kind === 's3') s3 = await startS3();
    const store = await openStore(`sqlite:${join(dir, 'inlet.db')}`, { mode: 'serve' });
    inlet = createInlet(testConfig(), store, quietLogger, {
      archive: {
        destination: s3?.destination ?? { kind: 'file', dir: join(dir, 'files') },
        hosts: ['127.0.0.1'],
        maxBytes: MAX_BYTES,
        token: 'r8_test_token',
        publicUrl: undefined,
        service: {
          pollIntervalMs: 60_000,
          retryDelaysMs: [],
          onResult: (file, result) => {
            results.push({ path: file.path, result });
            waiters.splice(0).forEach((w) => w());
          },
        },
      },
    });
    await inlet.start();
  });

  afterAll(async () => {
    await inlet.close();
    await close(source.server);
    await close(outside.server);
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('archives every allowed URL of a succeeded output and serves it after the source removed it', async () => {
    const body = JSON.stringify(
      prediction({
        id: `archive-${kind}`,
        status: 'succeeded',
        output: {
          images: [`${source.base}/files/out-0.png`, `${source.base}/files/missing.png`],
          nested: { deeper: [{ file: `${source.base}/files/redirect-in` }] },
          big: `${source.base}/files/big.bin`,
          endless: `${source.base}/files/endless.bin`,
          elsewhere: `${outside.base}/secret`,
          escape: `${source.base}/files/redirect-out`,
          caption: 'a red fox',
        },
      }),
    );
    const res = await inlet.app.inject({
      method: 'POST',
      url: '/replicate-webhook',
      payload: body,
      headers: signedHeaders(body),
    });
    expect(res.statusCode).toBe(200);
    await attempts(7);
    source.removed = true;

    const list = await inlet.app.inject({ url: `/api/predictions/archive-${kind}/files` });
    expect(list.statusCode).toBe(200);
    const files = list.json<{ data: Record<string, unknown>[] }>().data;
    const byPath = Object.fromEntries(files.map((f) => [f.path, f]));
    expect(Object.keys(byPath).sort()).toEqual(
      [
        'output.big',
        'output.elsewhere',
        'output.endless',
        'output.escape',
        'output.images[0]',
        'output.images[1]',
        'output.nested.deeper[0].file',
      ].sort(),
    );
    expect(byPath['output.images[0]']).toEqual({
      path: 'output.images[0]',
      source_url: `${source.base}/files/out-0.png`,
      sha256: sha(PNG),
      size: PNG.length,
      content_type: 'image/png',
      archived_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      url: `/api/files/${sha(PNG)}`,
    });
    expect(byPath['output.nested.deeper[0].file']).toMatchObject({
      sha256: sha(SECOND),
      size: SECOND.length,
    });
    expect(byPath['output.images[1]']).toEqual({
      path: 'output.images[1]',
      source_url: `${source.base}/files/missing.png`,
      error: expect.stringContaining('HTTP 404'),
    });
    expect(byPath['output.big']?.error).toMatch(/over the limit of 65536 \(INLET_ARCHIVE_MAX_BYTES\)/);
    expect(byPath['output.endless']?.error).toMatch(/larger than the limit of 65536 bytes/);
    expect(byPath['output.elsewhere']?.error).toMatch(/not in the allowed hosts \(INLET_ARCHIVE_HOSTS\)/);
    expect(byPath['output.escape']?.error).toMatch(
      /redirects to 127\.0\.0\.2:\d+, which is not in the allowed/,
    );
    // The guard: the host not listed got nothing, not even through a redirect.
    expect(outside.requests).toEqual([]);
    expect(source.authorizations.every((a) => a === 'Bearer r8_test_token')).toBe(true);

    // The source has removed its files; Inlet still serves the copy.
    expect((await fetch(`${source.base}/files/out-0.png`)).status).toBe(404);
    const served = await inlet.app.inject({ url: `/api/files/${sha(PNG)}` });
    expect(served.statusCode).toBe(200);
    expect(served.headers['content-type']).toBe('image/png');
    expect(served.headers['x-content-type-options']).toBe('nosniff');
    expect(served.rawPayload.equals(PNG)).toBe(true);

    // Nothing partial or oversized is left in the archive.
    if (kind === 'file') {
      expect(readdirSync(join(dir, 'files')).sort()).toEqual(['.partial', sha(PNG), sha(SECOND)].sort());
      expect(readdirSync(join(dir, 'files', '.partial'))).toEqual([]);
    }
  });

  it('shows archived_output with absolute links to the copies', async () => {
    const res = await inlet.app.inject({
      url: `/api/predictions/archive-${kind}`,
      headers: { host: 'localhost:5000' },
    });
    const view = res.json<{ output: Record<string, unknown>; archived_output: Record<string, unknown> }>();
    expect(view.archived_output).toEqual({
      ...view.output,
      images: [`http://localhost:5000/api/files/${sha(PNG)}`, `${source.base}/files/missing.png`],
      nested: { deeper: [{ file: `http://localhost:5000/api/files/${sha(SECOND)}` }] },
    });
  });

  it('answers 404 for unknown files and predictions, and keeps /api closed to others', async () => {
    expect((await inlet.app.inject({ url: `/api/files/${'0'.repeat(64)}` })).statusCode).toBe(404);
    expect((await inlet.app.inject({ url: '/api/files/not-a-hash' })).statusCode).toBe(404);
    expect((await inlet.app.inject({ url: '/api/predictions/nope/files' })).statusCode).toBe(404);
    const foreign = await inlet.app.inject({
      url: `/api/files/${sha(PNG)}`,
      remoteAddress: '203.0.113.9',
    });
    expect(foreign.statusCode).toBe(403);
  });

  if (kind === 'file') {
    it('leaves no partial file when the download fails midway', () => {
      expect(existsSync(join(dir, 'files', '.partial'))).toBe(true);
      expect(readdirSync(join(dir, 'files', '.partial'))).toEqual([]);
    });
  }
});
