import { createReadStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type * as S3Sdk from '@aws-sdk/client-s3';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import {
  SHA256_HEX,
  removeStaleTemps,
  tempName,
  writeHashed,
  type ArchiveStorage,
  type ListedFile,
  type StoredFile,
} from './archive-storage.js';
import type { S3Destination } from './archive-destination.js';

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/**
 * `s3://BUCKET/PREFIX` on any S3-compatible store: each file is `PREFIX/<sha256>`. The key is known
 * only after the last byte, so bytes are staged in a local temporary file while hashing, then
 * uploaded to their final key: no partial object is ever visible under a sha256.
 */
export class S3ArchiveStorage implements ArchiveStorage {
  readonly location: string;
  readonly #config: S3ClientConfig;
  #sdk: Promise<{ client: S3Client; sdk: typeof S3Sdk }> | undefined;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #staging: string;

  constructor(destination: S3Destination, options: { stagingDir?: string } = {}) {
    this.#bucket = destination.bucket;
    this.#prefix = destination.prefix === '' ? '' : `${destination.prefix.replace(/\/+$/, '')}/`;
    this.#staging = options.stagingDir ?? join(tmpdir(), 'inlet-archive-staging');
    this.location = `s3://${destination.bucket}/${this.#prefix}`;
    const config: S3ClientConfig = {
      region: destination.region,
      // Checksums only where S3 requires them: S3-compatible stores often lack the newer trailers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (destination.endpoint !== undefined) {
      config.endpoint = destination.endpoint;
      config.forcePathStyle = true;
    }
    if (destination.credentials !== undefined) config.credentials = destination.credentials;
    this.#config = config;
  }

  /** The SDK is large: loaded on first use, so a `serve` without an S3 archive never pays for it. */
  #s3() {
    this.#sdk ??= import('@aws-sdk/client-s3').then((sdk) => ({
      sdk,
      client: new sdk.S3Client(this.#config),
    }));
    return this.#sdk;
  }

  #key(sha256: string): string {
    return `${this.#prefix}${sha256}`;
  }

  async put(source: Readable, options: { contentType: string; signal?: AbortSignal }): Promise<StoredFile> {
    await mkdir(this.#staging, { recursive: true });
    const temp = join(this.#staging, tempName());
    const stored = await writeHashed(source, temp, options.signal);
    try {
      const { client, sdk } = await this.#s3();
      const key = this.#key(stored.sha256);
      const exists = await client
        .send(new sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: key }), { abortSignal: options.signal })
        .then(
          () => true,
          (error: unknown) => {
            if (isNotFound(error)) return false;
            throw error;
          },
        );
      if (!exists) {
        await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.#bucket,
            Key: key,
            Body: createReadStream(temp),
            ContentLength: stored.size,
            ContentType: options.contentType,
          }),
          { abortSignal: options.signal },
        );
      }
      return stored;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async open(sha256: string): Promise<{ body: Readable; size: number } | undefined> {
    if (!SHA256_HEX.test(sha256)) return undefined;
    try {
      const { client, sdk } = await this.#s3();
      const answer = await client.send(
        new sdk.GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(sha256) }),
      );
      return { body: answer.Body as Readable, size: answer.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async *list(): AsyncIterable<ListedFile> {
    const { client, sdk } = await this.#s3();
    let token: string | undefined;
    do {
      const page = await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: this.#prefix,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      for (const object of page.Contents ?? []) {
        const name = (object.Key ?? '').slice(this.#prefix.length);
        if (!SHA256_HEX.test(name)) continue;
        yield { sha256: name, modifiedAtMs: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async remove(sha256: string): Promise<void> {
    if (!SHA256_HEX.test(sha256)) return;
    const { client, sdk } = await this.#s3();
    // S3 answers 204 whether or not the key existed.
    await client.send(new sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(sha256) }));
  }

  async cleanUp(): Promise<void> {
    await removeStaleTemps(this.#staging);
  }

  async close(): Promise<void> {
    if (this.#sdk !== undefined) (await this.#sdk).client.destroy();
  }
}
