import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export type PostResult =
  | { readonly ok: true; readonly status: number; readonly body: string }
  | {
      readonly ok: false;
      readonly reason: 'connection' | 'timeout' | 'aborted' | 'invalid_url';
      readonly error: string;
    };

const MAX_RESPONSE_CHARS = 4096;

/**
 * One POST, the way Replicate sends a webhook: no redirects followed (a 3xx is just a status),
 * a whole-attempt timeout, and the response body kept short for logs.
 */
export function postOnce(
  url: string,
  body: string,
  headers: Readonly<Record<string, string>>,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<PostResult> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve({ ok: false, reason: 'invalid_url', error: `not a URL: ${url}` });
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    return Promise.resolve({ ok: false, reason: 'invalid_url', error: `not an http(s) URL: ${url}` });
  }
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const payload = Buffer.from(body, 'utf8');
  return new Promise<PostResult>((resolve) => {
    let settled = false;
    const finish = (result: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const req = send(target, {
      method: 'POST',
      agent: false,
      headers: { ...headers, 'content-length': String(payload.length) },
    });
    const timer = setTimeout(() => {
      finish({ ok: false, reason: 'timeout', error: `no answer within ${options.timeoutMs} ms` });
      req.destroy();
    }, options.timeoutMs);
    const onAbort = () => {
      finish({ ok: false, reason: 'aborted', error: 'emulator closed' });
      req.destroy();
    };
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort);
    req.on('error', (error: NodeJS.ErrnoException) => {
      finish({ ok: false, reason: 'connection', error: error.code ?? error.message });
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (part: string) => {
        if (text.length < MAX_RESPONSE_CHARS) text += part;
      });
      const done = () =>
        finish({ ok: true, status: res.statusCode ?? 0, body: text.slice(0, MAX_RESPONSE_CHARS) });
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
    });
    req.end(payload);
  });
}
