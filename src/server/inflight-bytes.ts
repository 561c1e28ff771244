import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';

/** Request body bytes held in memory at once across all connections (`--max-inflight-bytes`). */
export class InflightBytes {
  readonly limit: number;
  #held = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get held(): number {
    return this.#held;
  }

  /** Takes `bytes` from the budget; false (and nothing taken) when that would pass the limit. */
  tryReserve(bytes: number): boolean {
    if (bytes > 0 && this.#held + bytes > this.limit) return false;
    this.#held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }

  /**
   * One request's share: reserved up front from its `Content-Length`, or chunk by chunk as a body of
   * unknown length arrives; `releaseAll` gives everything back once, when the request is over.
   */
  forRequest(): RequestReservation {
    return new RequestReservation(this);
  }

  /**
   * A request's reservation, given back once its response is over however the request ends (answered,
   * aborted, timed out: the response closes in every case), with the declared `Content-Length` taken
   * up front: `undefined` when that would pass the limit (the caller answers 503, the body unread). A
   * length over `maxBodyBytes` takes nothing, being refused as 413 before any of it is kept; a body of
   * unknown length reserves chunk by chunk as it arrives (`meterBody`).
   */
  openRequest(
    headers: IncomingHttpHeaders,
    response: ServerResponse,
    maxBodyBytes: number,
  ): RequestReservation | undefined {
    const reservation = new RequestReservation(this);
    const release = () => reservation.releaseAll();
    response.once('close', release).once('finish', release);
    const declared = headers['content-length'];
    if (declared === undefined) return reservation;
    const length = Number(declared);
    if (!Number.isSafeInteger(length) || length > maxBodyBytes) return reservation;
    return reservation.reserve(length) ? reservation : undefined;
  }
}

/** Raised while reading a body that would pass the budget: answered 503, the rest never read. */
export class InflightLimitError extends Error {
  override readonly name = 'InflightLimitError';
  readonly statusCode = 503;
}

/** A body that cannot be read as declared (413 over the limit, 400 short or aborted): Fastify's own codes. */
class BodyReadError extends Error {
  override readonly name = 'BodyReadError';
  constructor(
    readonly statusCode: 400 | 413,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class RequestReservation {
  readonly #budget: InflightBytes;
  #reserved = 0;
  #released = false;

  constructor(budget: InflightBytes) {
    this.#budget = budget;
  }

  get reserved(): number {
    return this.#reserved;
  }

  reserve(bytes: number): boolean {
    if (this.#released || !this.#budget.tryReserve(bytes)) return false;
    this.#reserved += bytes;
    return true;
  }

  releaseAll(): void {
    if (this.#released) return;
    this.#released = true;
    this.#budget.release(this.#reserved);
    this.#reserved = 0;
  }
}

/**
 * A body of unknown length (chunked) passes through here: each chunk is reserved before it is passed on,
 * and when the budget runs out the stream fails with `InflightLimitError` and the request is paused: the
 * rest of the body is never held (after the 503 the webhook handler reads and drops it, for a bounded
 * time: close-gently.ts). (Not `pipeline`: it would destroy the request, and with it the socket the
 * 503 must go out on.)
 */
export function meterBody(payload: Readable, reservation: RequestReservation): Readable {
  const meter = new PassThrough();
  const onData = (chunk: Buffer | string) => {
    const bytes = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (!reservation.reserve(bytes)) {
      payload.off('data', onData).off('end', onEnd).off('error', onError);
      payload.pause();
      meter.destroy(new InflightLimitError('request bodies in memory are at the limit'));
      return;
    }
    if (!meter.write(chunk)) payload.pause();
  };
  const onEnd = () => meter.end();
  const onError = (error: Error) => meter.destroy(error);
  meter.on('drain', () => payload.resume());
  payload.on('data', onData).once('end', onEnd).once('error', onError);
  return meter;
}

/**
 * Reads a whole request body within `maxBytes`. With a `Content-Length` (reserved by the caller before
 * any of it was read) the bytes go straight into one buffer of that size, so a body costs its length
 * once, not its chunks plus their join. Without one, the chunks were reserved as they arrived
 * (`meterBody`) and their join at the end is reserved too. Failing, the stream is paused and left.
 */
export function readBodyWithin(
  payload: Readable,
  reservation: RequestReservation,
  limits: { contentLength: number | undefined; maxBytes: number },
): Promise<Buffer> {
  const declared = limits.contentLength;
  if (declared !== undefined && declared > limits.maxBytes) {
    return Promise.reject(tooLarge());
  }
  return new Promise<Buffer>((resolve, reject) => {
    let whole: Buffer | undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    const stop = (error: Error) => {
      payload.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      payload.pause();
      whole = undefined;
      chunks.length = 0;
      reject(error);
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (received + bytes.length > (declared ?? limits.maxBytes)) {
        stop(declared === undefined ? tooLarge() : lengthMismatch());
        return;
      }
      if (declared !== undefined) {
        // Allocated at the first byte, not at the headers: a sender that stalls before its body costs nothing.
        whole ??= Buffer.allocUnsafeSlow(declared);
        bytes.copy(whole, received);
      } else {
        // Each chunk was reserved as it arrived (meterBody).
        chunks.push(bytes);
      }
      received += bytes.length;
    };
    const onEnd = () => {
      payload.off('data', onData).off('error', onError).off('close', onClose);
      if (declared !== undefined) {
        if (received !== declared) return reject(lengthMismatch());
        return resolve(whole ?? Buffer.alloc(0));
      }
      // The join is a second copy while the chunks await the collector: it is counted too. Always a copy,
      // so the body is never a view over a socket read buffer.
      if (!reservation.reserve(received)) {
        chunks.length = 0;
        return reject(new InflightLimitError('request bodies in memory are at the limit'));
      }
      const body = Buffer.concat(chunks, received);
      chunks.length = 0;
      resolve(body);
    };
    const onError = (error: Error) =>
      stop(error instanceof InflightLimitError ? error : new BodyReadError(400, 'ECONNRESET', error.message));
    const onClose = () =>
      stop(new BodyReadError(400, 'ECONNRESET', 'The connection closed before the body ended.'));
    payload.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
    payload.resume();
  });
}

function tooLarge(): BodyReadError {
  return new BodyReadError(413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'Request body is too large');
}

function lengthMismatch(): BodyReadError {
  return new BodyReadError(
    400,
    'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
    'Request body size did not match Content-Length',
  );
}
