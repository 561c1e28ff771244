import { describe, expect, it } from 'vitest';
import { ConfigError, parseServeConfig } from '../config.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const parse = (env: Record<string, string>, flags: Record<string, string> = {}) =>
  parseServeConfig(flags, { REPLICATE_WEBHOOK_SECRET: SECRET, ...env }, { isTty: false });

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('no ConfigError');
}

describe('archive settings', () => {
  it('is off by default, with the replicate.delivery hosts and 1 GiB', () => {
    const config = parse({});
    expect(config.archive).toBeUndefined();
    expect(config.archiveHosts).toEqual(['replicate.delivery', '*.replicate.delivery']);
    expect(config.archiveMaxBytes).toBe(1024 ** 3);
    expect(config.publicUrl).toBeUndefined();
  });

  it('reads file: and s3:// destinations, the flag before the variable', () => {
    expect(parse({ INLET_ARCHIVE: 'file:/srv/a' }, { archive: 'file:./b' }).archive).toEqual({
      kind: 'file',
      dir: './b',
    });
    expect(
      parse({
        INLET_ARCHIVE: 's3://my-bucket/inlet/files/',
        S3_ENDPOINT: 'http://127.0.0.1:9000',
        AWS_ACCESS_KEY_ID: 'id',
        AWS_SECRET_ACCESS_KEY: 'key',
      }).archive,
    ).toEqual({
      kind: 's3',
      bucket: 'my-bucket',
      prefix: 'inlet/files',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      credentials: { accessKeyId: 'id', secretAccessKey: 'key' },
    });
  });

  it('names the setting to fix', () => {
    expect(configError(() => parse({ INLET_ARCHIVE: 'ftp://x' })).setting).toBe('--archive');
    expect(configError(() => parse({ INLET_ARCHIVE: 's3://A' })).message).toMatch(/bucket name/);
    expect(configError(() => parse({ INLET_ARCHIVE: 's3://bkt', AWS_ACCESS_KEY_ID: 'id' })).setting).toBe(
      'AWS_SECRET_ACCESS_KEY',
    );
    expect(configError(() => parse({ INLET_ARCHIVE: 's3://bkt', S3_ENDPOINT: 'nope' })).setting).toBe(
      'S3_ENDPOINT',
    );
    expect(configError(() => parse({ INLET_ARCHIVE_HOSTS: 'replicate.delivery:443' })).message).toMatch(
      /INLET_ARCHIVE_HOSTS: .*port/,
    );
    expect(configError(() => parse({ INLET_ARCHIVE_MAX_BYTES: '1GB' })).setting).toBe(
      'INLET_ARCHIVE_MAX_BYTES',
    );
    expect(configError(() => parse({ INLET_PUBLIC_URL: 'inlet.example.com' })).setting).toBe(
      'INLET_PUBLIC_URL',
    );
  });

  it('keeps a path prefix of INLET_PUBLIC_URL without its trailing slash', () => {
    expect(parse({ INLET_PUBLIC_URL: 'https://example.com/inlet/' }).publicUrl).toBe(
      'https://example.com/inlet',
    );
  });
});
