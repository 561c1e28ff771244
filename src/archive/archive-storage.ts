import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Where archived files live, each under the sha256 of its bytes (CONTRACT §11). */
export interface ArchiveStorage {
  /** `file:/srv/inlet-files` or `s3://bucket/prefix`, for logs. */
  readonly location: string;
  /**
   * Streams `source` in, hashing as it goes, and only once every byte is in makes it visible under
   * its sha256 (a partial file never is). Rejects, leaving nothing behind, when the stream fails.
   */
  put(source: Readable, options: { contentType: string; signal?: AbortSignal }): Promise<StoredFile>;
  /** The bytes stored under a sha256, or undefined when there are none. */
  open(sha256: string): Promise<{ body: Readable; size: number } | undefined>;
  /** Every stored file with when it was written, for retention's sweep. */
  list(): AsyncIterable<ListedFile>;
  /** Deletes the bytes stored under a sha256 (nothing when there are none). */
  remove(sha256: string): Promise<void>;
  /** Removes temporary files a killed process left behind. */
  cleanUp?(): Promise<void>;
  close?(): Promise<void>;
}

export interface StoredFile {
  sha256: string;
  size: number;
}

export interface ListedFile {
  sha256: string;
  modifiedAtMs: number;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function tempName(): string {
  return `${Date.now()}-${process.pid}-${randomBytes(6).toString('hex')}.part`;
}

/**
 * Writes a stream to a new file while hashing it, and flushes it to disk. The file is removed when
 * anything fails (source error, abort, disk full).
 */
export async function writeHashed(
  source: Readable,
  path: string,
  signal: AbortSignal | undefined,
): Promise<StoredFile> {
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  let out: WriteStream | undefined;
  try {
    out = createWriteStream(path, { flags: 'wx' });
    await pipeline(source, meter, out, ...(signal === undefined ? [] : [{ signal }]));
    const handle = await open(path, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { sha256: hash.digest('hex'), size };
  } catch (error) {
    source.destroy();
    await unlink(path).catch(() => undefined);
    throw error;
  }
}

/** Temporary files older than this at start are leftovers of a killed process. */
const STALE_TEMP_MS = 60 * 60 * 1000;

/**
 * Removes the temporary files in `dir` that a killed process left. Another process on the same
 * directory may be writing its own right now: only old ones go.
 */
export async function removeStaleTemps(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const now = Date.now();
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info !== undefined && now - info.mtimeMs > STALE_TEMP_MS) await unlink(path).catch(() => undefined);
  }
}
