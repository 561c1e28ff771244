import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveStorage, ListedFile } from './archive-storage.js';
import { FileArchiveStorage } from './file-storage.js';
import { S3ArchiveStorage } from './s3-storage.js';

async function listAll(storage: ArchiveStorage): Promise<ListedFile[]> {
  const out: ListedFile[] = [];
  for await (const file of storage.list()) out.push(file);
  return out.sort((a, b) => a.sha256.localeCompare(b.sha256));
}

const kinds: {
  name: string;
  create: () => Promise<{ storage: ArchiveStorage; other?: () => Promise<void> }>;
}[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

kinds.push({
  name: 'file:',
  create: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inlet-sweep-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return { storage: new FileArchiveStorage(dir) };
  },
});

let endpoint = '';
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
kinds.push({
  name: 's3:',
  create: async () => {
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
    await client.send(new CreateBucketCommand({ Bucket: 'sweep' }));
    // Another key beside the prefix, and one under it that is not a sha256: never listed or removed.
    await client.send(new PutObjectCommand({ Bucket: 'sweep', Key: 'elsewhere/x', Body: 'x' }));
    await client.send(new PutObjectCommand({ Bucket: 'sweep', Key: 'files/README', Body: 'x' }));
    client.destroy();
    const storage = new S3ArchiveStorage(
      { kind: 's3', bucket: 'sweep', prefix: 'files', endpoint, region: 'us-east-1', credentials },
      { stagingDir: mkdtempSync(join(tmpdir(), 'inlet-sweep-staging-')) },
    );
    cleanups.push(() => storage.close());
    return { storage };
  },
});

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inlet-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory: dir, silent: true });
  const { port } = await server.run();
  endpoint = `http://127.0.0.1:${port}`;
  cleanups.push(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe.each(kinds)('archive storage $name list and remove (retention’s sweep)', ({ create }) => {
  it('lists what was put with its time, removes one by sha256, and ignores unknown names', async () => {
    const { storage } = await create();
    expect(await listAll(storage)).toEqual([]);
    const before = Date.now() - 60_000;
    const a = await storage.put(Readable.from([Buffer.from('first')]), { contentType: 'text/plain' });
    const b = await storage.put(Readable.from([Buffer.from('second')]), { contentType: 'text/plain' });
    const listed = await listAll(storage);
    expect(listed.map((f) => f.sha256)).toEqual([a.sha256, b.sha256].sort());
    for (const file of listed) expect(file.modifiedAtMs).toBeGreaterThan(before);
    await storage.remove(a.sha256);
    await storage.remove(a.sha256);
    await storage.remove('../not-a-sha');
    expect((await listAll(storage)).map((f) => f.sha256)).toEqual([b.sha256]);
    expect(await storage.open(a.sha256)).toBeUndefined();
    expect(await storage.open(b.sha256)).toBeDefined();
  });
});
