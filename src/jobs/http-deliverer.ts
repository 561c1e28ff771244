import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { jsonText } from '../json-text.js';
import { newMessageId, secretProblem, signWebhook } from '../verify/index.js';
import { classifyAddress, PrivateNetworkError } from './address-guard.js';
import type { AttemptResult, Deliverer, OutboundMessage } from './deliverer.js';
import type { DestinationConfig } from './destination-config.js';

/** A destination as the deliverer needs it: parsed by `DestinationSchema`, its secret resolved. */
export type HttpDestination = Pick<
  DestinationConfig,
  'name' | 'url' | 'headers' | 'timeoutMs' | 'maxInFlight' | 'allowPrivateNetwork'
> & { readonly secret: string };

export interface HttpDelivererOptions {
  /** Defaults to `Inlet/<version>`. */
  readonly userAgent?: string;
  /** The attempt's time (`webhook-timestamp`, `Retry-After` dates). */
  readonly nowMs?: () => number;
  /** Name resolution; defaults to `dns.lookup`. Its answers still pass the private-network guard. */
  readonly lookup?: LookupFunction;
}

/** The bytes of an answer kept for `last_error` and a 410's reason; the rest is read and dropped. */
const KEPT_ANSWER_BYTES = 1024;
/** An answer larger than this is cut off (the socket is not reused) rather than read to its end. */
const DRAINED_ANSWER_BYTES = 1024 * 1024;

let cachedVersion: string | undefined;

/** Inlet's version from its package.json (found upwards from this file: src/, dist/ and bench builds). */
export function inletVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'inlet' && typeof pkg.version === 'string') return (cachedVersion = pkg.version);
    } catch {
      // no package.json here: keep going up
    }
    const parent = dirname(dir);
    if (parent === dir) return (cachedVersion = '0.0.0');
    dir = parent;
  }
}

/** The message body (CONTRACT §9): `{type, timestamp, data}`. */
export function messageBody(message: Pick<OutboundMessage, 'type' | 'recordedAtMs' | 'data'>): string {
  // jsonText: `data` may be nested deeper than JSON.stringify can write.
  return jsonText({
    type: message.type,
    timestamp: new Date(message.recordedAtMs).toISOString(),
    data: message.data,
  });
}

/** The one `inlet.test` message `inlet destinations test NAME` sends (a fresh id each time). */
export function createTestMessage(destination: string, nowMs = Date.now()): OutboundMessage {
  return {
    id: newMessageId(),
    consumer: destination,
    type: 'inlet.test',
    objectId: '',
    transitionId: '',
    attempt: 1,
    recordedAtMs: nowMs,
    data: {
      message: `A test message from Inlet to the destination "${destination}".`,
      destination,
    },
  };
}

/**
 * `Retry-After` as milliseconds from now: delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in
 * the past is 0; anything else unreadable is `undefined`.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  const text = value?.trim();
  if (text === undefined || text === '') return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  const at = Date.parse(text);
  if (Number.isNaN(at) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, at - nowMs);
}

function defaultLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, callback as (err: Error | null, a: LookupAddress[]) => void);
}

type LookupCallback = Parameters<LookupFunction>[2];

/**
 * A lookup for the agents: resolves, drops restricted addresses, and fails with the guard's error
 * when none is left. Sockets connect only to what it answers, so DNS cannot re-point a destination
 * at a private address between checks.
 */
function guardedLookup(destination: string, base: LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    base(hostname, { ...options, all: true }, (error, answer) => {
      if (error) return callback(error, '', 0);
      const addresses: LookupAddress[] =
        typeof answer === 'string' ? [{ address: answer, family: isIP(answer) }] : answer;
      const allowed = addresses.filter((a) => classifyAddress(a.address) === undefined);
      const first = allowed[0];
      if (first === undefined) {
        const refused = addresses[0];
        if (refused === undefined) return callback(new Error(`${hostname} has no address`), '', 0);
        const what = classifyAddress(refused.address)!;
        const refusal = new PrivateNetworkError(destination, refused.address, what, hostname);
        return callback(refusal, '', 0);
      }
      if (options.all === true) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  kept: string;
}

/**
 * Carries messages to one HTTP destination (CONTRACT §9): one signed POST per attempt on keep-alive
 * connections, the outcome as a value. Redirects are never followed; every connection's address is
 * checked by the private-network guard unless the destination allows private networks.
 */
export class HttpDeliverer implements Deliverer {
  readonly #destination: HttpDestination;
  readonly #url: URL;
  readonly #userAgent: string;
  readonly #nowMs: () => number;
  readonly #agent: HttpAgent;
  /** The guard's verdict on a URL whose host is an IP literal (no lookup happens for those). */
  readonly #literalRefusal: PrivateNetworkError | undefined;

  constructor(destination: HttpDestination, options: HttpDelivererOptions = {}) {
    const secretFault = secretProblem(destination.secret);
    if (secretFault !== undefined) {
      throw new RangeError(
        `destination ${destination.name}: the secret must be "whsec_" followed by base64; ${secretFault}.`,
      );
    }
    this.#destination = destination;
    this.#url = new URL(destination.url);
    this.#userAgent = options.userAgent ?? `Inlet/${inletVersion()}`;
    this.#nowMs = options.nowMs ?? Date.now;
    const base = options.lookup ?? defaultLookup;
    const lookup = destination.allowPrivateNetwork ? base : guardedLookup(destination.name, base);
    const agentOptions = {
      keepAlive: true,
      maxSockets: destination.maxInFlight,
      scheduling: 'lifo' as const,
      lookup,
    };
    this.#agent =
      this.#url.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    const host = this.#url.hostname.replace(/^\[(.*)\]$/, '$1');
    const what = isIP(host) !== 0 && !destination.allowPrivateNetwork ? classifyAddress(host) : undefined;
    this.#literalRefusal = what && new PrivateNetworkError(destination.name, host, what);
  }

  get destination(): HttpDestination {
    return this.#destination;
  }

  async deliver(message: OutboundMessage, signal: AbortSignal): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    if (this.#literalRefusal !== undefined) {
      return { outcome: 'retry', error: this.#literalRefusal.message, durationMs: 0 };
    }
    const body = Buffer.from(messageBody(message), 'utf8');
    const attemptAtMs = this.#nowMs();
    const signed = signWebhook(body, {
      secret: this.#destination.secret,
      id: message.id,
      timestampSec: Math.floor(attemptAtMs / 1000),
    });
    const headers = {
      ...this.#destination.headers,
      'content-type': 'application/json',
      'content-length': String(body.length),
      'user-agent': this.#userAgent,
      ...signed,
    };

    let answer: Answer;
    try {
      answer = await this.#post(body, headers, signal);
    } catch (error) {
      return { outcome: 'retry', error: this.#describeError(error, signal), durationMs: elapsed() };
    }
    const { status } = answer;
    const durationMs = elapsed();
    if (status >= 200 && status < 300) return { outcome: 'delivered', status, durationMs };
    const detail = answer.kept === '' ? '' : `: ${oneLine(answer.kept, 200)}`;
    // A destination that answers 410 Gone asked to stop: no more attempts until it is enabled again.
    if (status === 410) return { outcome: 'disable', status, reason: `HTTP 410 Gone${detail}`, durationMs };
    const retryAfterMs = parseRetryAfter(answer.headers['retry-after'], this.#nowMs());
    const location = answer.headers.location;
    const error =
      status >= 300 && status < 400
        ? `HTTP ${status} redirect${location ? ` to ${location}` : ''} (redirects are not followed)`
        : `HTTP ${status}${detail}`;
    return {
      outcome: 'retry',
      status,
      error,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      durationMs,
    };
  }

  #describeError(error: unknown, signal: AbortSignal): string {
    if (error instanceof AttemptTimeout) return `timed out after ${this.#destination.timeoutMs} ms`;
    if (signal.aborted) return 'attempt aborted (shutting down or lease lost)';
    if (error instanceof PrivateNetworkError) return error.message;
    const err = error as NodeJS.ErrnoException;
    // Node wraps the errors of each address tried (autoSelectFamily) in an AggregateError.
    if (error instanceof AggregateError && error.errors.length > 0) {
      const guard = error.errors.find((e) => e instanceof PrivateNetworkError) as Error | undefined;
      if (guard) return guard.message;
      return (error.errors as Error[]).map((e) => e.message).join('; ');
    }
    return err.message || String(err.code ?? error);
  }

  #post(body: Buffer, headers: Record<string, string>, signal: AbortSignal): Promise<Answer> {
    const request = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | undefined, answer?: Answer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(answer!);
      };
      const req = request(this.#url, { method: 'POST', agent: this.#agent, headers });
      const timer = setTimeout(() => {
        const timeout = new AttemptTimeout();
        req.destroy(timeout);
        finish(timeout);
      }, this.#destination.timeoutMs);
      const onAbort = () => {
        const reason = signal.reason instanceof Error ? signal.reason : new Error('aborted');
        req.destroy(reason);
        finish(reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      req.once('error', (error) => finish(error));
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        let keptBytes = 0;
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          if (keptBytes < KEPT_ANSWER_BYTES) {
            const part = chunk.subarray(0, KEPT_ANSWER_BYTES - keptBytes);
            chunks.push(part);
            keptBytes += part.length;
          }
          seen += chunk.length;
          if (seen > DRAINED_ANSWER_BYTES) res.destroy();
        });
        const done = () =>
          finish(undefined, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            kept: Buffer.concat(chunks).toString('utf8'),
          });
        res.once('end', done);
        // An answer cut off (too long, or the peer closed) still has its status.
        res.once('close', done);
        res.once('error', done);
      });
      req.end(body);
    });
  }

  async close(): Promise<void> {
    this.#agent.destroy();
  }
}

class AttemptTimeout extends Error {
  override readonly name = 'AttemptTimeout';
}
