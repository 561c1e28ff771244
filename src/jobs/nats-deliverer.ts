import { performance } from 'node:perf_hooks';
import type { JetStreamClient, JetStreamManager, NatsConnection, ConnectionOptions } from 'nats';
import type { AttemptResult, Deliverer, OutboundMessage } from './deliverer.js';
import { describeTarget, type NatsTarget } from './broker-url.js';
import { messageBody } from './http-deliverer.js';

export interface NatsDelivererOptions {
  /** A destination's `name` (for errors). */
  readonly name: string;
  readonly target: NatsTarget;
  /** One attempt's limit: connecting and waiting for the stream's acknowledgement. */
  readonly timeoutMs: number;
}

/**
 * The duplicate window of a stream Inlet creates. JetStream drops a publish whose `Nats-Msg-Id` it saw
 * within the window, so a message repeated after a crash (same id) is stored once; a day covers the
 * lease expiry and the first retries.
 */
const CREATED_STREAM_DUPLICATE_WINDOW_MS = 24 * 60 * 60 * 1000;

/** The stream Inlet creates for a subject no stream captures: `inlet.jobs` → `INLET_JOBS`. */
export function streamNameFor(subject: string): string {
  return subject.toUpperCase().replace(/[^A-Z0-9_-]/g, '_');
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message === '' ? error.name : error.message;
  return String(error);
}

/**
 * Publishes messages to a JetStream stream (CONTRACT §13): the body is the HTTP body, `Nats-Msg-Id` is
 * the message id, and a message counts as delivered once the stream acknowledges it (a duplicate
 * acknowledgement too: the stream already holds it). When no stream captures the subject, one is
 * created for it (file storage, a one-day duplicate window); an existing stream is used as it is.
 * A broker that is down, or a stream that does not answer in time, is a `retry`.
 */
export class NatsDeliverer implements Deliverer {
  readonly #options: NatsDelivererOptions;
  #connecting: Promise<{ nc: NatsConnection; js: JetStreamClient }> | undefined;
  #closed = false;

  constructor(options: NatsDelivererOptions) {
    this.#options = options;
  }

  async deliver(message: OutboundMessage, signal: AbortSignal): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const target = describeTarget(this.#options.target);
    if (signal.aborted) return { outcome: 'retry', error: 'aborted', durationMs: 0 };
    let aborted: () => void = () => {};
    const abortedPromise = new Promise<never>((_, reject) => {
      aborted = () => reject(new Error('aborted'));
      signal.addEventListener('abort', aborted, { once: true });
    });
    abortedPromise.catch(() => {});
    try {
      const { js } = await Promise.race([this.#connection(), abortedPromise]);
      const ack = await Promise.race([
        js.publish(this.#options.target.subject, Buffer.from(messageBody(message), 'utf8'), {
          msgID: message.id,
          timeout: this.#options.timeoutMs,
        }),
        abortedPromise,
      ]);
      void ack;
      return { outcome: 'delivered', durationMs: elapsed() };
    } catch (error) {
      return { outcome: 'retry', error: `${target}: ${errorText(error)}`, durationMs: elapsed() };
    } finally {
      signal.removeEventListener('abort', aborted);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const connecting = this.#connecting;
    this.#connecting = undefined;
    if (connecting === undefined) return;
    try {
      const { nc } = await connecting;
      await nc.drain();
    } catch {
      // never connected, or already closed
    }
  }

  /** One connection for all attempts; a closed or failed one is replaced at the next attempt. */
  #connection(): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
    if (this.#closed) return Promise.reject(new Error('the deliverer is closed'));
    const current = this.#connecting;
    if (current !== undefined) return current;
    const connecting = this.#open();
    this.#connecting = connecting;
    connecting.then(
      ({ nc }) => {
        void nc.closed().then(() => {
          if (this.#connecting === connecting) this.#connecting = undefined;
        });
      },
      () => {
        if (this.#connecting === connecting) this.#connecting = undefined;
      },
    );
    return connecting;
  }

  async #open(): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
    const { target, timeoutMs, name } = this.#options;
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    const options: ConnectionOptions = {
      servers: `${host}:${target.port}`,
      name: `inlet:${name}`,
      timeout: timeoutMs,
      // Keep reconnecting while the broker is down: publishes in between time out and retry.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      ...(target.user !== undefined && { user: target.user }),
      ...(target.pass !== undefined && { pass: target.pass }),
    };
    // Loaded at the first attempt: every CLI start would pay for the client otherwise.
    const { connect } = await import('nats');
    const nc = await connect(options);
    try {
      const jsm = await nc.jetstreamManager({ timeout: timeoutMs });
      await ensureStream(jsm, target.subject);
      return { nc, js: nc.jetstream({ timeout: timeoutMs }) };
    } catch (error) {
      await nc.close().catch(() => {});
      throw error;
    }
  }
}

async function ensureStream(jsm: JetStreamManager, subject: string): Promise<void> {
  try {
    await jsm.streams.find(subject);
    return;
  } catch (error) {
    if (!/no stream matches subject/i.test(errorText(error))) throw error;
  }
  const { nanos } = await import('nats');
  try {
    await jsm.streams.add({
      name: streamNameFor(subject),
      subjects: [subject],
      duplicate_window: nanos(CREATED_STREAM_DUPLICATE_WINDOW_MS),
    });
  } catch (error) {
    // Another instance created it meanwhile.
    await jsm.streams.find(subject).catch(() => {
      throw error;
    });
  }
}
