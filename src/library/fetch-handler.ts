import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { WebhookAnswer } from '../ingest/accept.js';
import { JSON_CONTENT_TYPE, type ReceivedRequest, type Receiver, statedLength } from './receiver.js';

/** A fetch-style handler: Hono, Next.js route handlers, Bun, Deno, workers. */
export type FetchHandler = (request: Request) => Promise<Response>;

function toResponse(answer: WebhookAnswer): Response {
  return new Response(JSON.stringify(answer.body), {
    status: answer.status,
    headers: { ...answer.headers, 'content-type': JSON_CONTENT_TYPE },
  });
}

function headerBag(headers: Headers): IncomingHttpHeaders {
  const bag: IncomingHttpHeaders = {};
  headers.forEach((value, name) => {
    bag[name] = value;
  });
  return bag;
}

/** Reads the body up to `maxBytes`; `undefined` when it is larger (the rest is cancelled). */
async function readBody(request: Request, maxBytes: number): Promise<Buffer | undefined> {
  if (request.body === null) return Buffer.alloc(0);
  const reader: ReadableStreamDefaultReader<Uint8Array> = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}

export function createFetchHandler(receiver: Receiver, logger: Logger): FetchHandler {
  return async (request) => {
    try {
      const received: ReceivedRequest = {
        headers: headerBag(request.headers),
        remoteAddress: '',
        receivedAtMs: Date.now(),
      };
      const early = receiver.precheck(
        request.method,
        new URL(request.url).pathname,
        statedLength(request.headers.get('content-length')),
        received,
      );
      if (early !== undefined) return toResponse(early);
      const body = await readBody(request, receiver.options.maxBodyBytes);
      if (body === undefined) return toResponse(receiver.tooLarge(received));
      return toResponse(await receiver.accept(received, body));
    } catch (error) {
      logger.error({ err: error }, 'webhook request failed');
      // Never a bare 500 on the webhook: a 503 makes Replicate retry, and nothing was stored.
      return toResponse({
        status: 503,
        outcome: 'unavailable',
        code: 'storage_unavailable',
        headers: { 'retry-after': '2' },
        body: {
          error: { code: 'storage_unavailable', message: 'The request could not be handled; retry later.' },
        },
      });
    }
  };
}
