import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import type { AttemptResult, Deliverer, OutboundMessage } from './deliverer.js';
import { describeTarget, type RedisTarget } from './broker-url.js';
import { messageBody } from './http-deliverer.js';

export interface RedisDelivererOptions {
  /** A destination's `name` (for errors). */
  readonly name: string;
  readonly target: RedisTarget;
  /** One attempt's limit: connecting and Redis's answer to `XADD`. */
  readonly timeoutMs: number;
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message === '' ? error.name : error.message;
  return String(error);
}

/**
 * Appends messages to a Redis stream (CONTRACT §13): `XADD STREAM * id <message id> type <type> body
 * <the HTTP body>`, delivered when Redis answers with the entry's id. Redis streams do not dedupe, so a
 * message repeated after a crash (at least once) appears twice with the same `id` field: readers skip
 * ids they have seen. A broker that is down, or an answer that does not come in time, is a `retry`.
 */
export class RedisDeliverer implements Deliverer {
  readonly #options: RedisDelivererOptions;
  #redis: Promise<Redis> | undefined;
  #connecting: Promise<void> | undefined;
  #closed = false;

  constructor(options: RedisDelivererOptions) {
    this.#options = options;
  }

  /** One client for all attempts, made at the first (every CLI start would load ioredis otherwise). */
  #client(): Promise<Redis> {
    if (this.#closed) return Promise.reject(new Error('the deliverer is closed'));
    this.#redis ??= import('ioredis').then(({ Redis }) => {
      const { target, timeoutMs, name } = this.#options;
      const redis = new Redis({
        host: target.host,
        port: target.port,
        db: target.db,
        ...(target.username !== undefined && { username: target.username }),
        ...(target.password !== undefined && { password: target.password }),
        ...(target.scheme === 'rediss' && { tls: { servername: target.host } }),
        connectionName: `inlet:${name}`,
        lazyConnect: true,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        // While disconnected an attempt fails at once and the runner retries it on its schedule. A
        // queued or re-sent XADD would reach Redis after its attempt had failed, and the retry would
        // append the message a second time.
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => Math.min(times * 200, 2000),
      });
      // Connection errors surface as failed attempts; without a listener ioredis logs them itself.
      redis.on('error', () => {});
      return redis;
    });
    return this.#redis;
  }

  /** Connects a client that is not connected yet (or was closed); one attempt waits for the others'. */
  async #ready(redis: Redis): Promise<void> {
    if (redis.status === 'wait' || redis.status === 'end') {
      this.#connecting ??= redis.connect().finally(() => {
        this.#connecting = undefined;
      });
    }
    if (this.#connecting !== undefined) await this.#connecting;
  }

  async deliver(message: OutboundMessage, signal: AbortSignal): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    if (signal.aborted) return { outcome: 'retry', error: 'aborted', durationMs: 0 };
    let aborted: () => void = () => {};
    const abortedPromise = new Promise<never>((_, reject) => {
      aborted = () => reject(new Error('aborted'));
      signal.addEventListener('abort', aborted, { once: true });
    });
    abortedPromise.catch(() => {});
    try {
      const body = messageBody(message);
      const redis = await Promise.race([this.#client(), abortedPromise]);
      await Promise.race([this.#ready(redis), abortedPromise]);
      await Promise.race([
        redis.xadd(this.#options.target.stream, '*', 'id', message.id, 'type', message.type, 'body', body),
        abortedPromise,
      ]);
      return { outcome: 'delivered', durationMs: elapsed() };
    } catch (error) {
      const target = describeTarget(this.#options.target);
      return { outcome: 'retry', error: `${target}: ${errorText(error)}`, durationMs: elapsed() };
    } finally {
      signal.removeEventListener('abort', aborted);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const connecting = this.#redis;
    this.#redis = undefined;
    if (connecting === undefined) return;
    const redis = await connecting;
    try {
      await redis.quit();
    } catch {
      redis.disconnect();
    }
  }
}
