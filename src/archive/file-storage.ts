import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import {
  SHA256_HEX,
  removeStaleTemps,
  tempName,
  writeHashed,
  type ArchiveStorage,
  type ListedFile,
  type StoredFile,
} from './archive-storage.js';

/**
 * `file:DIR`: each file is `DIR/<sha256>`. Bytes go to `DIR/.partial/` first and are renamed into
 * place once hashed and flushed: a rename on one file system is atomic, so a reader (or a crash)
 * sees the whole file or none.
 */
export class FileArchiveStorage implements ArchiveStorage {
  readonly location: string;
  readonly #dir: string;
  readonly #partial: string;
  #ready: Promise<void> | undefined;

  constructor(dir: string) {
    this.#dir = resolve(dir);
    this.#partial = join(this.#dir, '.partial');
    this.location = `file:${this.#dir}`;
  }

  #ensureDirs(): Promise<void> {
    this.#ready ??= mkdir(this.#partial, { recursive: true }).then(() => undefined);
    return this.#ready.catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
  }

  async put(source: Readable, options: { signal?: AbortSignal }): Promise<StoredFile> {
    await this.#ensureDirs();
    const temp = join(this.#partial, tempName());
    const stored = await writeHashed(source, temp, options.signal);
    try {
      // Same bytes already there: keep the existing file.
      await rename(temp, join(this.#dir, stored.sha256));
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    // The rename is durable once the directory entry is.
    const dir = await open(this.#dir, 'r');
    await dir.sync().finally(() => dir.close());
    return stored;
  }

  async open(sha256: string): Promise<{ body: Readable; size: number } | undefined> {
    if (!SHA256_HEX.test(sha256)) return undefined;
    const path = join(this.#dir, sha256);
    try {
      const handle = await open(path, 'r');
      const { size } = await handle.stat();
      return { body: createReadStream(path, { fd: handle }), size };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async *list(): AsyncIterable<ListedFile> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) {
      if (!SHA256_HEX.test(name)) continue;
      try {
        yield { sha256: name, modifiedAtMs: (await stat(join(this.#dir, name))).mtimeMs };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }

  async remove(sha256: string): Promise<void> {
    if (!SHA256_HEX.test(sha256)) return;
    await unlink(join(this.#dir, sha256)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  async cleanUp(): Promise<void> {
    await this.#ensureDirs();
    await removeStaleTemps(this.#partial);
  }
}
