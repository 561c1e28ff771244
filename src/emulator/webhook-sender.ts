import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { newMessageId, signWebhook } from '../verify/index.js';
import { postOnce, type PostResult } from './http-post.js';
import type { WebhookEvent } from './prediction.js';
import { createPrng } from './random.js';

export const FAULT_KINDS = ['drop', 'duplicate', 'reorder', 'delay'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Each fraction (0–1) applies to that share of webhook messages, decided by a seeded PRNG. */
export interface FaultOptions {
  readonly drop?: number;
  readonly duplicate?: number;
  readonly reorder?: number;
  readonly delay?: number;
  /** How long a delayed message waits (before the time scale). */
  readonly delayMs?: number;
}

export const DEFAULT_FAULT_DELAY_MS = 2000;

/** First retry of a terminal webhook after this long (before the time scale), doubling after. */
export const RETRY_BASE_MS = 1000;

/** pino's `logger.info(fields, message)` shape, so a pino logger fits as is. */
export interface EmulatorLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface OutgoingWebhook {
  readonly predictionId: string;
  readonly url: string;
  readonly event: WebhookEvent;
  /** The prediction's status in `body`. */
  readonly status: string;
  readonly body: string;
  /** Epoch ms of the change it reports; now when absent. */
  readonly queuedAtMs?: number;
}

export const DELIVERY_OUTCOMES = ['delivered', 'failed', 'dropped'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** One attempt to deliver a webhook (or a message dropped by the drop fault, never sent). */
export interface DeliveryAttempt {
  readonly webhookId: string;
  readonly predictionId: string;
  readonly event: WebhookEvent;
  readonly status: string;
  readonly url: string;
  /** 1 for the first try, then retries; a duplicate continues the count. 0 for a dropped message. */
  readonly attempt: number;
  readonly duplicate: boolean;
  readonly timestampSec: number | null;
  /** Epoch ms when the message was queued (the change that caused it). */
  readonly queuedAtMs: number;
  /** Epoch ms when the attempt started. */
  readonly sentAtMs: number;
  readonly durationMs: number;
  readonly outcome: DeliveryOutcome;
  readonly responseStatus: number | null;
  readonly responseBody: string | null;
  readonly error: string | null;
  readonly willRetry: boolean;
  /** Faults applied to the message this attempt belongs to. */
  readonly faults: readonly FaultKind[];
  readonly body: string;
}

export interface WebhookSenderOptions {
  readonly secret: string;
  readonly timeScale: number;
  readonly retryWindowMs: number;
  readonly attemptTimeoutMs: number;
  readonly faults: FaultOptions;
  readonly seed: number;
  readonly nowMs: () => number;
  readonly maxLogEntries: number;
  readonly logger?: EmulatorLogger;
  readonly onDelivery?: (attempt: DeliveryAttempt) => void;
}

interface Queued {
  readonly id: string;
  readonly message: OutgoingWebhook;
  readonly terminal: boolean;
  readonly enqueuedAt: number;
  readonly queuedAtMs: number;
  readonly faults: FaultKind[];
}

interface Channel {
  readonly queue: Queued[];
  held: Queued | undefined;
  running: boolean;
}

type AttemptResult = 'delivered' | 'retry' | 'give_up' | 'stopped';

/**
 * Sends webhooks the way Replicate does: per prediction in order and one at a time, only the
 * terminal one retried (exponential backoff until the retry window after completion closes),
 * redirects never followed. Optional faults (drop, duplicate, reorder, delay) come from a seeded PRNG.
 */
export class WebhookSender {
  readonly #options: WebhookSenderOptions;
  readonly #random: () => number;
  readonly #channels = new Map<string, Channel>();
  readonly #log: DeliveryAttempt[] = [];
  readonly #closing = new AbortController();
  readonly #idleWaiters: (() => void)[] = [];

  constructor(options: WebhookSenderOptions) {
    this.#options = options;
    this.#random = createPrng(options.seed);
  }

  deliveries(): readonly DeliveryAttempt[] {
    return [...this.#log];
  }

  /** Whether no message is queued, held back or being sent. */
  get idle(): boolean {
    return this.#channels.size === 0;
  }

  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  enqueue(message: OutgoingWebhook): void {
    if (this.#closing.signal.aborted) return;
    const { drop = 0, duplicate = 0, reorder = 0, delay = 0 } = this.#options.faults;
    // Always four draws per message, so one seed gives one sequence whatever the fractions.
    const draws = [this.#random(), this.#random(), this.#random(), this.#random()];
    const id = newMessageId();
    const terminal = message.event === 'completed';
    if ((draws[0] ?? 1) < drop) {
      this.#record(
        { id, message, faults: ['drop'], queuedAtMs: this.#options.nowMs() },
        0,
        false,
        performance.now(),
        null,
        {
          outcome: 'dropped',
          responseStatus: null,
          responseBody: null,
          error: 'dropped by the drop fault',
          willRetry: false,
        },
      );
      return;
    }
    const faults: FaultKind[] = [];
    if ((draws[1] ?? 1) < duplicate) faults.push('duplicate');
    if ((draws[3] ?? 1) < delay) faults.push('delay');
    const item: Queued = {
      id,
      message,
      terminal,
      enqueuedAt: performance.now(),
      queuedAtMs: message.queuedAtMs ?? this.#options.nowMs(),
      faults,
    };
    const channel = this.#channel(message.predictionId);
    // The terminal webhook is never held back: it has no later message to swap with.
    if (!terminal && channel.held === undefined && (draws[2] ?? 1) < reorder) {
      faults.push('reorder');
      channel.held = item;
      return;
    }
    channel.queue.push(item);
    if (channel.held !== undefined) {
      channel.queue.push(channel.held);
      channel.held = undefined;
    }
    this.#pump(message.predictionId, channel);
  }

  /** No more messages will come for this prediction: send any message still held back. */
  finish(predictionId: string): void {
    const channel = this.#channels.get(predictionId);
    if (channel === undefined) return;
    if (channel.held !== undefined) {
      channel.queue.push(channel.held);
      channel.held = undefined;
    }
    this.#pump(predictionId, channel);
  }

  close(): void {
    this.#closing.abort();
    for (const channel of this.#channels.values()) {
      channel.queue.length = 0;
      channel.held = undefined;
    }
  }

  #channel(predictionId: string): Channel {
    let channel = this.#channels.get(predictionId);
    if (channel === undefined) {
      channel = { queue: [], held: undefined, running: false };
      this.#channels.set(predictionId, channel);
    }
    return channel;
  }

  #pump(predictionId: string, channel: Channel): void {
    if (channel.running) return;
    channel.running = true;
    void (async () => {
      try {
        for (let item = channel.queue.shift(); item !== undefined; item = channel.queue.shift()) {
          if (this.#closing.signal.aborted) break;
          await this.#deliver(item);
        }
      } catch (error) {
        this.#options.logger?.warn({ predictionId, error: String(error) }, 'webhook sender failed');
      } finally {
        channel.running = false;
        if ((channel.queue.length === 0 && channel.held === undefined) || this.#closing.signal.aborted) {
          this.#channels.delete(predictionId);
        } else if (channel.queue.length > 0) {
          this.#pump(predictionId, channel);
        }
        if (this.idle) this.#idleWaiters.splice(0).forEach((resolve) => resolve());
      }
    })();
  }

  async #deliver(item: Queued): Promise<void> {
    const { timeScale, retryWindowMs } = this.#options;
    if (item.faults.includes('delay')) {
      await this.#sleepUntil(
        performance.now() + (this.#options.faults.delayMs ?? DEFAULT_FAULT_DELAY_MS) * timeScale,
      );
    }
    // Replicate: backoff doubling from the base, the last retry at the end of the window after completion.
    const windowEnd = item.enqueuedAt + (item.terminal ? retryWindowMs * timeScale : 0);
    let gap = RETRY_BASE_MS * timeScale;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const lastChance = started >= windowEnd;
      const result = await this.#attempt(item, attempt, false, !lastChance);
      if (result === 'delivered' && item.faults.includes('duplicate')) {
        await this.#attempt(item, attempt + 1, true, false);
      }
      if (result !== 'retry') return;
      await this.#sleepUntil(Math.min(started + gap, windowEnd));
      gap *= 2;
      if (this.#closing.signal.aborted) return;
    }
  }

  async #attempt(
    item: Queued,
    attempt: number,
    duplicate: boolean,
    mayRetry: boolean,
  ): Promise<AttemptResult> {
    const timestampSec = Math.floor(this.#options.nowMs() / 1000);
    const headers = signWebhook(item.message.body, {
      secret: this.#options.secret,
      id: item.id,
      timestampSec,
    });
    const started = performance.now();
    const result = await postOnce(
      item.message.url,
      item.message.body,
      { 'content-type': 'application/json', 'user-agent': 'inlet-emulator', ...headers },
      { timeoutMs: this.#options.attemptTimeoutMs, signal: this.#closing.signal },
    );
    if (!result.ok && result.reason === 'aborted') return 'stopped';
    const verdict = classify(result);
    const retryable = verdict === 'retry' && item.terminal && !duplicate;
    const willRetry = retryable && mayRetry;
    this.#record(item, attempt, duplicate, started, timestampSec, {
      outcome: verdict === 'delivered' ? 'delivered' : 'failed',
      responseStatus: result.ok ? result.status : null,
      responseBody: result.ok ? result.body : null,
      error: result.ok ? null : result.error,
      willRetry,
    });
    if (verdict === 'delivered') return 'delivered';
    if (willRetry) return 'retry';
    if (!duplicate) this.#logGiveUp(item, attempt, giveUpReason(result, item.terminal, verdict));
    return 'give_up';
  }

  // The line that says a message is lost for good: no attempt will follow.
  #logGiveUp(item: Queued, attempts: number, reason: string): void {
    this.#options.logger?.warn(
      {
        webhookId: item.id,
        predictionId: item.message.predictionId,
        event: item.message.event,
        status: item.message.status,
        attempts,
        reason,
      },
      'webhook given up',
    );
  }

  #record(
    item: Pick<Queued, 'id' | 'message' | 'faults' | 'queuedAtMs'>,
    attempt: number,
    duplicate: boolean,
    started: number,
    timestampSec: number | null,
    result: Pick<DeliveryAttempt, 'outcome' | 'responseStatus' | 'responseBody' | 'error' | 'willRetry'>,
  ): void {
    const { message } = item;
    const entry: DeliveryAttempt = {
      webhookId: item.id,
      predictionId: message.predictionId,
      event: message.event,
      status: message.status,
      url: message.url,
      attempt,
      duplicate,
      timestampSec,
      queuedAtMs: item.queuedAtMs,
      sentAtMs: this.#options.nowMs() - (performance.now() - started),
      durationMs: Math.round(performance.now() - started),
      ...result,
      faults: [...item.faults],
      body: message.body,
    };
    this.#log.push(entry);
    if (this.#log.length > this.#options.maxLogEntries)
      this.#log.splice(0, this.#log.length - this.#options.maxLogEntries);
    const fields = {
      webhookId: entry.webhookId,
      predictionId: entry.predictionId,
      event: entry.event,
      status: entry.status,
      attempt: entry.attempt,
      responseStatus: entry.responseStatus,
      ...(entry.error === null ? {} : { error: entry.error }),
      ...(entry.faults.length === 0 ? {} : { faults: entry.faults }),
      ...(entry.duplicate ? { duplicate: true } : {}),
      willRetry: entry.willRetry,
    };
    if (entry.outcome === 'delivered') this.#options.logger?.info(fields, 'webhook delivered');
    else
      this.#options.logger?.warn(
        fields,
        entry.outcome === 'dropped' ? 'webhook dropped (fault)' : 'webhook failed',
      );
    this.#options.onDelivery?.(entry);
  }

  // Timers count from the event loop's cached time and can fire early when the loop was busy.
  async #sleepUntil(target: number): Promise<void> {
    for (let left = target - performance.now(); left > 0; left = target - performance.now()) {
      try {
        await sleep(Math.ceil(left), undefined, { signal: this.#closing.signal });
      } catch {
        return; // closed while waiting
      }
    }
  }
}

function giveUpReason(result: PostResult, terminal: boolean, verdict: 'retry' | 'give_up'): string {
  if (result.ok && result.status >= 300 && result.status < 400) return 'redirects are not followed';
  if (!result.ok && result.reason === 'invalid_url') return 'invalid URL';
  if (!terminal) return 'only the terminal webhook is retried';
  return verdict === 'retry' ? 'retry window closed' : 'not retryable';
}

/** 2xx delivered; 3xx is never followed and never retried (Replicate loses it); 4xx/5xx and network errors retry. */
function classify(result: PostResult): 'delivered' | 'retry' | 'give_up' {
  if (!result.ok) return result.reason === 'invalid_url' ? 'give_up' : 'retry';
  if (result.status >= 200 && result.status < 300) return 'delivered';
  if (result.status >= 300 && result.status < 400) return 'give_up';
  return 'retry';
}
