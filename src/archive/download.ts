import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { HostAllowList } from './host-allow-list.js';

/** What fetching one output file gives: a body to stream, or why not (and whether trying again helps). */
export type DownloadOutcome =
  | { ok: true; body: Readable; contentType: string; declaredSize: number | undefined }
  | { ok: false; error: string; retry: boolean };

export interface DownloadOptions {
  allowList: HostAllowList;
  /** `REPLICATE_API_TOKEN`, sent as a bearer token when set (only ever to allowed hosts). */
  token?: string | undefined;
  /** Bytes one file may have; the stream fails with `FileTooLargeError` past it. */
  maxBytes: number;
  signal: AbortSignal;
  /** Longest wait for the answer's headers and then between two chunks of its body. */
  idleTimeoutMs: number;
  fetch?: typeof fetch;
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class FileTooLargeError extends Error {
  override readonly name = 'FileTooLargeError';
  constructor(readonly maxBytes: number) {
    super(`the file is larger than the limit of ${maxBytes} bytes (INLET_ARCHIVE_MAX_BYTES)`);
  }
}

class IdleTimeoutError extends Error {
  override readonly name = 'IdleTimeoutError';
  constructor(ms: number) {
    super(`no bytes from the source for ${ms} ms`);
  }
}

const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?$/;

/** The source's content type when it is a well-formed one (it is served again later), else bytes. */
function safeContentType(value: string | null): string {
  const text = value?.trim() ?? '';
  return text.length <= 200 && MEDIA_TYPE.test(text) ? text : 'application/octet-stream';
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/**
 * Opens an output file for streaming: follows redirects only to allowed hosts, refuses a declared
 * size over the limit, and counts the bytes as they come, failing the stream past the limit or when
 * the source goes quiet. Never fetches a URL the allow-list does not name.
 */
export async function openDownload(sourceUrl: string, options: DownloadOptions): Promise<DownloadOutcome> {
  const doFetch = options.fetch ?? fetch;
  const idle = new AbortController();
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(
      () => idle.abort(new IdleTimeoutError(options.idleTimeoutMs)),
      options.idleTimeoutMs,
    );
    idleTimer.unref();
  };
  const signal = AbortSignal.any([options.signal, idle.signal]);
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'inlet-archive' };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;

  let url = sourceUrl;
  for (let hop = 0; ; hop++) {
    if (!options.allowList.allows(url)) {
      const what = hop === 0 ? 'its host' : `it redirects to ${hostOf(url)}, which`;
      return {
        ok: false,
        retry: false,
        error: `not fetched: ${what} is not in the allowed hosts (INLET_ARCHIVE_HOSTS)`,
      };
    }
    let response: Response;
    armIdle();
    try {
      response = await doFetch(url, { headers, redirect: 'manual', signal });
    } catch (error) {
      clearTimeout(idleTimer);
      const reason = idle.signal.aborted ? (idle.signal.reason as Error) : (error as Error);
      const cause = (reason as { cause?: { code?: string; message?: string } }).cause;
      return {
        ok: false,
        retry: true,
        error: `cannot fetch from ${hostOf(url)}: ${cause?.code ?? cause?.message ?? reason.message}`,
      };
    }
    if (REDIRECTS.has(response.status)) {
      await response.body?.cancel().catch(() => undefined);
      const location = response.headers.get('location');
      if (location === null || hop >= MAX_REDIRECTS) {
        clearTimeout(idleTimer);
        return {
          ok: false,
          retry: true,
          error:
            location === null
              ? `HTTP ${response.status} from ${hostOf(url)} without a Location`
              : `more than ${MAX_REDIRECTS} redirects`,
        };
      }
      url = new URL(location, url).toString();
      continue;
    }
    if (response.status !== 200 || response.body === null) {
      clearTimeout(idleTimer);
      await response.body?.cancel().catch(() => undefined);
      return { ok: false, retry: true, error: `HTTP ${response.status} from ${hostOf(url)}` };
    }
    const lengthHeader = response.headers.get('content-length');
    const declaredSize =
      lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    if (declaredSize !== undefined && declaredSize > options.maxBytes) {
      clearTimeout(idleTimer);
      await response.body.cancel().catch(() => undefined);
      return {
        ok: false,
        retry: false,
        error: `not archived: the file is ${declaredSize} bytes, over the limit of ${options.maxBytes} (INLET_ARCHIVE_MAX_BYTES)`,
      };
    }
    let seen = 0;
    const limiter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        seen += chunk.length;
        if (seen > options.maxBytes) {
          callback(new FileTooLargeError(options.maxBytes));
          return;
        }
        armIdle();
        callback(null, chunk);
      },
      flush(callback) {
        clearTimeout(idleTimer);
        callback();
      },
    });
    const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    const fail = (error: Error) => {
      clearTimeout(idleTimer);
      limiter.destroy(idle.signal.aborted ? (idle.signal.reason as Error) : error);
    };
    body.once('error', fail);
    limiter.once('close', () => {
      clearTimeout(idleTimer);
      body.destroy();
    });
    body.pipe(limiter);
    return {
      ok: true,
      body: limiter,
      contentType: safeContentType(response.headers.get('content-type')),
      declaredSize,
    };
  }
}
