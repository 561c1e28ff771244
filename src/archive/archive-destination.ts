/** `--archive DEST`, parsed: where archived files go. */
export type ArchiveDestination = FileDestination | S3Destination;

export interface FileDestination {
  readonly kind: 'file';
  readonly dir: string;
}

export interface S3Destination {
  readonly kind: 's3';
  readonly bucket: string;
  /** Without leading or trailing slashes; may be empty. */
  readonly prefix: string;
  /** `S3_ENDPOINT`: another S3-compatible store, addressed path-style. */
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
}

/** The variables an `s3://` destination reads besides the destination itself. */
export interface S3Env {
  S3_ENDPOINT?: string | undefined;
  AWS_REGION?: string | undefined;
  AWS_ACCESS_KEY_ID?: string | undefined;
  AWS_SECRET_ACCESS_KEY?: string | undefined;
}

/** A bad value: `setting` names the flag or variable to change. */
export class ArchiveDestinationError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** `file:DIR` or `s3://BUCKET/PREFIX`; throws `ArchiveDestinationError` saying what is wrong. */
export function parseArchiveDestination(text: string, env: S3Env): ArchiveDestination {
  const value = text.trim();
  if (value.startsWith('file:')) {
    let dir = value.slice('file:'.length);
    // `file:///srv/x` (a file URL) and `file:/srv/x` or `file:./x` (a path) both work.
    if (dir.startsWith('//')) dir = decodeURIComponent(new URL(value).pathname);
    if (dir === '')
      throw new ArchiveDestinationError('--archive', '--archive file: needs a directory (file:DIR).');
    return { kind: 'file', dir };
  }
  if (value.startsWith('s3://')) {
    const rest = value.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
    if (!BUCKET.test(bucket)) {
      throw new ArchiveDestinationError(
        '--archive',
        `--archive: "${bucket}" is not a bucket name (3 to 63 lower-case letters, digits, dots, hyphens): use s3://BUCKET/PREFIX.`,
      );
    }
    const endpoint = env.S3_ENDPOINT?.trim() || undefined;
    if (endpoint !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(endpoint);
      } catch {
        url = undefined;
      }
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        throw new ArchiveDestinationError(
          'S3_ENDPOINT',
          `S3_ENDPOINT must be an http(s) URL; got "${endpoint}".`,
        );
      }
    }
    const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim() || undefined;
    const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim() || undefined;
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
      const missing = accessKeyId === undefined ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY';
      throw new ArchiveDestinationError(
        missing,
        `${missing} is missing: give both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither.`,
      );
    }
    return {
      kind: 's3',
      bucket,
      prefix,
      endpoint,
      region: env.AWS_REGION?.trim() || 'us-east-1',
      credentials:
        accessKeyId === undefined || secretAccessKey === undefined
          ? undefined
          : { accessKeyId, secretAccessKey },
    };
  }
  throw new ArchiveDestinationError(
    '--archive',
    `--archive must be file:DIR or s3://BUCKET/PREFIX; got "${value}".`,
  );
}
