import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type ReplicateEmulator } from '../src/emulator/index.js';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { startServe, stop, type RunningServer } from './process-helpers.js';

/**
 * The archive inside `inlet serve` as a process: the emulator's `inlet/image` PNGs outlive their
 * expiry, and a SIGKILL in the middle of a download leaves no partial file; a restart completes it.
 */

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface FileRow {
  path: string;
  source_url: string;
  sha256?: string;
  size?: number;
  error?: string | null;
}

async function files(server: RunningServer, id: string): Promise<FileRow[]> {
  const res = await fetch(`${server.base}/api/predictions/${id}/files`);
  if (res.status === 404) return [];
  return ((await res.json()) as { data: FileRow[] }).data;
}

/** Polls the files API until `done` holds (the archive works in the background of another process). */
async function filesUntil(
  server: RunningServer,
  id: string,
  done: (rows: FileRow[]) => boolean,
  timeoutMs = 10_000,
): Promise<FileRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await files(server, id);
    if (done(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`files of ${id} never settled: ${JSON.stringify(rows)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function deliver(server: RunningServer, object: Record<string, unknown>): Promise<void> {
  const body = JSON.stringify(object);
  const res = await fetch(`${server.base}/replicate-webhook`, {
    method: 'POST',
    body,
    headers: signedHeaders(body),
  });
  expect(res.status).toBe(200);
}

describe('inlet serve --archive (process)', () => {
  const tmp = tempDir('inlet-archive-proc-');
  const env = (extra: Record<string, string> = {}) => ({
    REPLICATE_WEBHOOK_SECRET: SECRET,
    INLET_ARCHIVE_HOSTS: '127.0.0.1',
    INLET_TIME_SCALE: '0.01',
    ...extra,
  });
  const args = (name: string) => [
    '--database',
    join(tmp.dir, `${name}.db`),
    '--archive',
    `file:${join(tmp.dir, name)}`,
  ];
  afterAll(() => tmp.cleanup());

  describe.each(['file', 's3'] as const)('with the emulator, to %s', (kind) => {
    const archiveDir = join(tmp.dir, 'emulator');
    let emulator: ReplicateEmulator;
    let api: string;
    let server: RunningServer;
    let s3: { server: S3rver; dir: string } | undefined;
    beforeAll(async () => {
      emulator = createEmulator({ secret: SECRET, timeScale: 0.05, outputTtlMs: 300 });
      api = await emulator.listen(0);
      if (kind === 'file') {
        server = await startServe(args('emulator'), env());
        return;
      }
      // A local S3-compatible store, as a bucket on any S3 service would be.
      const dir = mkdtempSync(join(tmpdir(), 'inlet-s3rver-'));
      const s3server = new S3rver({ port: 0, address: '127.0.0.1', directory: dir, silent: true });
      const { port } = await s3server.run();
      s3 = { server: s3server, dir };
      const endpoint = `http://127.0.0.1:${port}`;
      const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
      const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
      await client.send(new CreateBucketCommand({ Bucket: 'inlet-files' }));
      client.destroy();
      server = await startServe(
        ['--database', join(tmp.dir, 'emulator-s3.db'), '--archive', 's3://inlet-files/archive/emulator'],
        env({
          S3_ENDPOINT: endpoint,
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        }),
      );
    });
    afterAll(async () => {
      await stop(server);
      await emulator.close();
      if (s3 !== undefined) {
        await s3.server.close();
        rmSync(s3.dir, { recursive: true, force: true });
      }
    });

    it('archives inlet/image PNGs, still served after the emulator removed them', async () => {
      const created = await fetch(`${api}/models/inlet/image/predictions`, {
        method: 'POST',
        headers: { authorization: 'Bearer test', 'content-type': 'application/json' },
        body: JSON.stringify({
          input: { prompt: 'a red fox', n: 2 },
          webhook: `${server.base}/replicate-webhook`,
          webhook_events_filter: ['completed'],
        }),
      });
      const { id } = (await created.json()) as { id: string };
      const rows = await filesUntil(server, id, (r) => r.length === 2 && r.every((f) => f.sha256));
      expect(rows.map((r) => r.path)).toEqual(['output[0]', 'output[1]']);

      // The emulator deletes outputs after its TTL, as Replicate does after an hour.
      const source = rows[0]!.source_url;
      for (let i = 0; (await fetch(source)).status === 200; i++) {
        expect(i, 'the emulator removes its files').toBeLessThan(100);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (const row of rows) {
        const copy = await fetch(`${server.base}/api/files/${row.sha256}`);
        expect(copy.status).toBe(200);
        expect(copy.headers.get('content-type')).toBe('image/png');
        const bytes = Buffer.from(await copy.arrayBuffer());
        expect(sha(bytes)).toBe(row.sha256);
        expect(bytes.subarray(1, 4).toString()).toBe('PNG');
        if (kind === 'file') expect(readFileSync(join(archiveDir, row.sha256!)).equals(bytes)).toBe(true);
      }
      const view = (await (await fetch(`${server.base}/api/predictions/${id}`)).json()) as {
        archived_output: string[];
      };
      expect(view.archived_output).toEqual(rows.map((r) => `${server.base}/api/files/${r.sha256}`));
    });
  });

  describe('killed in the middle of a download', () => {
    const archiveDir = join(tmp.dir, 'kill');
    const BYTES = Buffer.alloc(256 * 1024, 'x');
    let source: Server;
    let base: string;
    let slow = true;
    let requests = 0;
    let firstHalfSent: () => void;
    const halfSent = new Promise<void>((resolve) => (firstHalfSent = resolve));
    const held: ServerResponse[] = [];

    beforeAll(async () => {
      source = createServer((_req, res) => {
        requests++;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BYTES.length });
        if (!slow) {
          res.end(BYTES);
          return;
        }
        // Half now, the rest never: the download is in the middle when serve is killed.
        res.write(BYTES.subarray(0, BYTES.length / 2), () => firstHalfSent());
        held.push(res);
      });
      await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(source.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      held.forEach((res) => res.destroy());
      source.closeAllConnections();
      await new Promise((resolve) => source.close(resolve));
    });

    it('leaves no partial file visible, and completes the file after a restart', async () => {
      const first = await startServe(args('kill'), env());
      const id = 'slow-download';
      await deliver(first, prediction({ id, status: 'succeeded', output: [`${base}/big.bin`] }));
      await halfSent;
      // Wait until serve has written some of it to disk (under whatever name), then kill it.
      const written = () =>
        existsSync(archiveDir) &&
        readdirSync(archiveDir, { recursive: true, withFileTypes: true }).some((e) => e.isFile());
      for (let i = 0; !written(); i++) {
        expect(i, 'serve writes the download to disk as it comes').toBeLessThan(200);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(await stop(first, 'SIGKILL')).toBe('SIGKILL');
      // Only temporary names exist: nothing under a sha256 name, nothing the API lists or serves.
      expect(readdirSync(archiveDir).filter((name) => name !== '.partial')).toEqual([]);

      slow = false;
      const second = await startServe(args('kill'), env());
      try {
        const rows = await filesUntil(second, id, (r) => r[0]?.sha256 !== undefined);
        expect(rows).toEqual([
          expect.objectContaining({ path: 'output[0]', sha256: sha(BYTES), size: BYTES.length }),
        ]);
        expect(requests).toBe(2);
        expect(readFileSync(join(archiveDir, sha(BYTES))).equals(BYTES)).toBe(true);
        const served = await fetch(`${second.base}/api/files/${sha(BYTES)}`);
        expect(Buffer.from(await served.arrayBuffer()).equals(BYTES)).toBe(true);
      } finally {
        await stop(second);
      }
    });
  });
});
