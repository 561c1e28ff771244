import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { WebhookAnswer } from '../ingest/accept.js';
import { JSON_CONTENT_TYPE, type ReceivedRequest, type Receiver, statedLength } from './receiver.js';

/** A Node request listener: `http.createServer(listener)`, or an Express/Connect route handler. */
export type NodeListener = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

function send(res: ServerResponse, answer: WebhookAnswer): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    ...answer.headers,
    'content-type': JSON_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The raw bytes of a body a framework already read (`express.raw()`, `express.text()`), if any. */
function alreadyRead(req: IncomingMessage): Buffer | string | object | undefined {
  const body = (req as { body?: unknown }).body;
  if (Buffer.isBuffer(body) || typeof body === 'string') return body;
  // express.json() leaves `{}` even for requests it did not parse; only a consumed stream means it parsed.
  if (typeof body === 'object' && body !== null && req.readableEnded) return body;
  return undefined;
}

/** Reads the body up to `maxBytes`; `undefined` when it is larger (the rest is left unread). */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
    req.once('close', () => {
      if (!req.complete) reject(new Error('the client went away before sending its whole body'));
    });
  });
}

export function createNodeListener(receiver: Receiver, logger: Logger): NodeListener {
  const handle = async (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => {
    const request: ReceivedRequest = {
      headers: req.headers,
      remoteAddress: req.socket.remoteAddress ?? '',
      receivedAtMs: Date.now(),
    };
    // Express strips a mount prefix into req.url and keeps the whole path in originalUrl.
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const pathname = url.split('?')[0] ?? '/';
    const early = receiver.precheck(
      req.method ?? 'GET',
      pathname,
      statedLength(req.headers['content-length']),
      request,
    );
    if (early !== undefined) {
      if (!req.readableEnded) res.setHeader('connection', 'close');
      send(res, early);
      req.resume();
      return;
    }

    let body: Buffer | undefined;
    const preread = alreadyRead(req);
    if (typeof preread === 'string') body = Buffer.from(preread, 'utf8');
    else if (Buffer.isBuffer(preread)) body = preread;
    else if (preread !== undefined) {
      // A parsed body cannot be verified: the signature covers the exact bytes.
      const error = new Error(
        'Inlet needs the raw request body to verify signatures, but a body parser (express.json()?) already ' +
          'consumed it: mount inlet.listener before it, or on a route without it.',
      );
      if (next) return next(error);
      logger.error({ err: error }, 'webhook body already parsed');
      send(res, {
        status: 500,
        outcome: 'rejected',
        code: 'bad_request',
        body: { error: { code: 'internal_error', message: error.message } },
      });
      return;
    } else {
      try {
        body = await readBody(req, receiver.options.maxBodyBytes);
      } catch {
        return; // the client is gone: nothing to answer
      }
    }
    if (body === undefined || body.length > receiver.options.maxBodyBytes) {
      send(res, receiver.tooLarge(request));
      req.resume();
      return;
    }
    send(res, await receiver.accept(request, body));
  };
  return (req, res, next) => {
    handle(req, res, next).catch((error: unknown) => {
      logger.error({ err: error }, 'webhook request failed');
      // Never a bare 500 on the webhook: a 503 makes Replicate retry, and nothing was stored.
      send(res, {
        status: 503,
        outcome: 'unavailable',
        code: 'storage_unavailable',
        headers: { 'retry-after': '2' },
        body: {
          error: { code: 'storage_unavailable', message: 'The request could not be handled; retry later.' },
        },
      });
    });
  };
}
