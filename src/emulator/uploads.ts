import { createHash } from 'node:crypto';
import { formatTime } from './prediction.js';

/** A file sent to `POST /v1/files`, kept in memory until the emulator stops or it is deleted. */
export interface Upload {
  readonly id: string;
  readonly name: string;
  readonly contentType: string;
  readonly bytes: Buffer;
  readonly metadata: unknown;
  readonly createdAtMs: number;
  /** The origin (scheme included) of the request that uploaded it: its URLs use it. */
  readonly origin: string;
}

/** Replicate's own limit for one uploaded file. */
export const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;

/** What `expires_at` says; the emulator itself keeps the file until it stops. */
const UPLOAD_TTL_MS = 24 * 3600 * 1000;

export type ParsedUpload =
  | {
      readonly ok: true;
      readonly name: string;
      readonly contentType: string;
      readonly bytes: Buffer;
      readonly metadata: unknown;
    }
  | { readonly ok: false; readonly detail: string };

// The boundary is the first line of the body, when the header does not give it.
function withBoundary(contentType: string, body: Buffer): string {
  if (/;\s*boundary=/i.test(contentType)) return contentType;
  const firstLine = body.subarray(0, Math.min(body.length, 200)).toString('latin1').split('\r\n', 1)[0] ?? '';
  return firstLine.startsWith('--') ? `multipart/form-data; boundary=${firstLine.slice(2)}` : contentType;
}

/** Reads `content` (the file) and `metadata` (JSON) from a `multipart/form-data` body, as the clients send it. */
export async function parseUpload(body: Buffer, contentType: string | undefined): Promise<ParsedUpload> {
  if (contentType === undefined || !/^multipart\/form-data\b/i.test(contentType)) {
    return { ok: false, detail: 'The request must be multipart/form-data with a "content" file part.' };
  }
  let form: FormData;
  try {
    form = await new Response(body, {
      headers: { 'content-type': withBoundary(contentType, body) },
    }).formData();
  } catch {
    return { ok: false, detail: 'The multipart/form-data body could not be parsed.' };
  }
  const content = form.get('content');
  if (content === null || typeof content === 'string') {
    return { ok: false, detail: 'The "content" part (the file) is missing.' };
  }
  let metadata: unknown = {};
  const rawMetadata = form.get('metadata');
  if (rawMetadata !== null) {
    const text = typeof rawMetadata === 'string' ? rawMetadata : await rawMetadata.text();
    try {
      metadata = text.trim() === '' ? {} : (JSON.parse(text) as unknown);
    } catch {
      return { ok: false, detail: 'The "metadata" part is not valid JSON.' };
    }
  }
  const filename = form.get('filename');
  const type = form.get('type');
  return {
    ok: true,
    name: typeof filename === 'string' && filename !== '' ? filename : content.name || 'file',
    contentType: typeof type === 'string' && type !== '' ? type : content.type || 'application/octet-stream',
    bytes: Buffer.from(await content.arrayBuffer()),
    metadata,
  };
}

/** The file object of `POST /v1/files` and `GET /v1/files/{id}`. */
export function fileObject(upload: Upload): Record<string, unknown> {
  const md5 = createHash('md5').update(upload.bytes).digest('hex');
  return {
    id: upload.id,
    name: upload.name,
    content_type: upload.contentType,
    size: upload.bytes.length,
    etag: md5,
    checksums: { sha256: createHash('sha256').update(upload.bytes).digest('hex'), md5 },
    metadata: upload.metadata,
    created_at: formatTime(upload.createdAtMs),
    expires_at: formatTime(upload.createdAtMs + UPLOAD_TTL_MS),
    urls: { get: `${upload.origin}/v1/files/${upload.id}` },
  };
}
