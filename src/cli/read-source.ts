import { ConfigError, type ServeFlags } from '../config.js';
import { createDeliverer } from '../jobs/create-deliverer.js';
import { httpDestinationOf } from '../jobs/destinations.js';
import {
  destinationDetailView,
  destinationView,
  messageDetailView,
  messagePageView,
} from '../jobs/job-views.js';
import { replay, type ReplayProgress, type ReplayRequest } from '../jobs/replay.js';
import { sendTestMessage } from '../server/jobs-routes.js';
import type { ConsumerRecord, MessageQuery } from '../store/job-types.js';
import type { PredictionQuery, Store } from '../store/types.js';
import { eventDetailView, eventView, isoTime, predictionPageView, predictionView } from '../views.js';
import { type CliContext, CommandFailedError, UsageError } from './context.js';
import { openCliStore } from './open-store.js';

type View = Record<string, unknown>;

/** The raw list flags, passed on as the API's query parameters by a remote source. */
export interface ListParams {
  status?: string | undefined;
  model?: string | undefined;
  q?: string | undefined;
  limit?: string | undefined;
  cursor?: string | undefined;
}

/** The raw flags of `inlet messages`, passed on as the API's query parameters by a remote source. */
export interface MessageParams {
  state?: string | undefined;
  destination?: string | undefined;
  prediction_id?: string | undefined;
  limit?: string | undefined;
  cursor?: string | undefined;
}

type Page = { data: View[]; next_cursor: string | null };

/**
 * What the read and operations verbs work on: the admin API's JSON (CONTRACT §5, §9), from a local
 * database or from a running Inlet (`--url`), so both print the same. `undefined` answers "no such
 * object" (the API's 404).
 */
export interface ReadSource {
  /** Where it reads, for messages: the database or the API's URL. */
  readonly location: string;
  listPredictions(
    query: PredictionQuery,
    params: ListParams,
  ): Promise<{ data: View[]; next_cursor: string | null }>;
  countPredictions(): Promise<number>;
  getPrediction(id: string): Promise<View | undefined>;
  /** The first `limit` events of a prediction, in the order received. */
  listEvents(id: string, limit: number): Promise<View[]>;
  getEvent(id: string): Promise<View | undefined>;
  listDestinations(): Promise<View[]>;
  /** One destination with its secret and stored configuration. */
  getDestination(name: string): Promise<View | undefined>;
  enableDestination(name: string, fromNow: boolean): Promise<View | undefined>;
  disableDestination(name: string): Promise<View | undefined>;
  /** Sends one `inlet.test` message (from here, or from the remote Inlet) and answers its outcome. */
  testDestination(name: string): Promise<View | undefined>;
  listMessages(query: MessageQuery, params: MessageParams): Promise<Page>;
  getMessage(id: string): Promise<View | undefined>;
  retryMessage(id: string): Promise<'retried' | 'not_found' | 'not_dead'>;
  retryDead(destination: string | undefined): Promise<number>;
  /** How many messages the replay sends (or would, with `dryRun`); `undefined`: no such destination. */
  replay(
    request: ReplayRequest,
    options: { dryRun: boolean; onProgress?: (p: ReplayProgress) => void },
  ): Promise<number | undefined>;
  close(): Promise<void>;
}

export const URL_FLAG = [
  '--url <url>',
  'work on a running Inlet through its API instead of a database [env: INLET_URL]',
] as const;
export const TOKEN_FLAG = ['--token <token>', 'the admin token of --url [env: INLET_ADMIN_TOKEN]'] as const;

export type SourceFlags = ServeFlags & { url?: string; token?: string };

/**
 * Opens the source the flags name: `--url`/`INLET_URL`, else the database (never created; `write`
 * opens it to change it once it is known to exist).
 */
export async function openReadSource(
  flags: SourceFlags,
  ctx: CliContext,
  access: 'read' | 'write' = 'read',
): Promise<ReadSource> {
  const url = (flags.url ?? ctx.env.INLET_URL ?? '').trim();
  if (url !== '') {
    const token = (flags.token ?? ctx.env.INLET_ADMIN_TOKEN ?? '').trim();
    return new ApiSource(url, token === '' ? undefined : token);
  }
  return new StoreSource(await openCliStore(flags, ctx, access));
}

class StoreSource implements ReadSource {
  readonly #store: Store;
  readonly location: string;

  constructor(store: Store) {
    this.#store = store;
    this.location = store.location;
  }

  async listPredictions(query: PredictionQuery) {
    return predictionPageView(await this.#store.listPredictions(query));
  }

  countPredictions() {
    return this.#store.countPredictions();
  }

  async getPrediction(id: string) {
    const record = await this.#store.getPrediction(id);
    return record === undefined ? undefined : predictionView(record);
  }

  async listEvents(id: string, limit: number) {
    return (await this.#store.listEvents(id, { limit })).items.map(eventView);
  }

  async getEvent(id: string) {
    const record = await this.#store.getEvent(id);
    return record === undefined ? undefined : eventDetailView(record);
  }

  async listDestinations() {
    const data = [];
    for (const c of await this.#store.jobs.listConsumers('destination')) {
      data.push(destinationView(c, await this.#store.jobs.consumerCounts(c.name)));
    }
    return data;
  }

  async #destination(name: string): Promise<ConsumerRecord | undefined> {
    const consumer = await this.#store.jobs.getConsumer(name);
    return consumer?.kind === 'destination' ? consumer : undefined;
  }

  async getDestination(name: string) {
    const consumer = await this.#destination(name);
    if (consumer === undefined) return undefined;
    return destinationDetailView(consumer, await this.#store.jobs.consumerCounts(name));
  }

  async enableDestination(name: string, fromNow: boolean) {
    if ((await this.#destination(name)) === undefined) return undefined;
    const position = fromNow ? await this.#store.transitions.lastTransitionSeq() : undefined;
    await this.#store.jobs.setConsumerEnabled(name, {
      enabled: true,
      nowMs: Date.now(),
      ...(position === undefined ? {} : { position }),
    });
    return this.#view(name);
  }

  async disableDestination(name: string) {
    if ((await this.#destination(name)) === undefined) return undefined;
    await this.#store.jobs.setConsumerEnabled(name, {
      enabled: false,
      reason: 'disabled by an operator',
      nowMs: Date.now(),
    });
    return this.#view(name);
  }

  async #view(name: string) {
    const consumer = await this.#destination(name);
    return consumer && destinationView(consumer, await this.#store.jobs.consumerCounts(name));
  }

  async testDestination(name: string) {
    const consumer = await this.#destination(name);
    if (consumer === undefined) return undefined;
    return sendTestMessage(createDeliverer(httpDestinationOf(consumer)), name, Date.now());
  }

  async listMessages(query: MessageQuery) {
    return messagePageView(await this.#store.jobs.listMessages(query));
  }

  async getMessage(id: string) {
    const message = await this.#store.jobs.getMessage(id);
    return message === undefined ? undefined : messageDetailView(message);
  }

  async retryMessage(id: string) {
    const result = await this.#store.jobs.retryMessage(id, Date.now());
    return result === 'not_found' || result === 'not_dead' ? result : 'retried';
  }

  retryDead(destination: string | undefined) {
    return this.#store.jobs.retryDead(destination, Date.now());
  }

  async replay(
    request: ReplayRequest,
    options: { dryRun: boolean; onProgress?: (p: ReplayProgress) => void },
  ) {
    const consumer = await this.#destination(request.destination);
    if (consumer === undefined) return undefined;
    return replay(this.#store.transitions, this.#store.jobs, consumer, request, {
      nowMs: Date.now(),
      ...options,
    });
  }

  close() {
    return this.#store.close();
  }
}

/** The same reads over HTTP, from `GET /api/…` of a running Inlet. */
class ApiSource implements ReadSource {
  readonly #base: URL;
  readonly #token: string | undefined;
  readonly location: string;

  constructor(url: string, token: string | undefined) {
    let base: URL;
    try {
      base = new URL(url.endsWith('/') ? url : `${url}/`);
    } catch {
      throw new ConfigError('--url', `--url: "${url}" is not a URL (such as http://127.0.0.1:5000).`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new ConfigError('--url', `--url must be an http:// or https:// URL; got "${url}".`);
    }
    this.#base = base;
    this.#token = token;
    this.location = base.origin;
  }

  async listPredictions(_query: PredictionQuery, params: ListParams) {
    return (await this.#get(`api/predictions?${searchOf(params)}`)) as {
      data: View[];
      next_cursor: string | null;
    };
  }

  async countPredictions() {
    const stats = (await this.#get('api/stats')) as { predictions: number };
    return stats.predictions;
  }

  async getPrediction(id: string) {
    return this.#get(`api/predictions/${encodeURIComponent(id)}`, true);
  }

  async listEvents(id: string, limit: number) {
    const page = (await this.#get(
      `api/predictions/${encodeURIComponent(id)}/events?limit=${limit}`,
      true,
    )) as { data: View[] } | undefined;
    return page?.data ?? [];
  }

  async getEvent(id: string) {
    return this.#get(`api/events/${encodeURIComponent(id)}`, true);
  }

  async listDestinations() {
    return ((await this.#get('api/destinations')) as { data: View[] }).data;
  }

  async getDestination(name: string) {
    return this.#get(`api/destinations/${encodeURIComponent(name)}`, true);
  }

  async enableDestination(name: string, fromNow: boolean) {
    const from = fromNow ? '?from=now' : '';
    return this.#post(`api/destinations/${encodeURIComponent(name)}/enable${from}`);
  }

  async disableDestination(name: string) {
    return this.#post(`api/destinations/${encodeURIComponent(name)}/disable`);
  }

  async testDestination(name: string) {
    return this.#post(`api/destinations/${encodeURIComponent(name)}/test`);
  }

  async listMessages(_query: MessageQuery, params: MessageParams) {
    return (await this.#get(`api/messages?${searchOf(params)}`)) as Page;
  }

  async getMessage(id: string) {
    return this.#get(`api/messages/${encodeURIComponent(id)}`, true);
  }

  async retryMessage(id: string) {
    const { status, body } = await this.#request('POST', `api/messages/${encodeURIComponent(id)}/retry`, {});
    if (status === 404) return 'not_found';
    if (status === 409) return 'not_dead';
    this.#check(status, body);
    return 'retried';
  }

  async retryDead(destination: string | undefined) {
    const result = await this.#post('api/messages/retry-dead', {
      ...(destination === undefined ? {} : { destination }),
    });
    return (result as { count: number }).count;
  }

  async replay(request: ReplayRequest, options: { dryRun: boolean }) {
    const body = {
      destination: request.destination,
      ...(request.predictionIds && { prediction_ids: request.predictionIds }),
      ...(request.sinceMs !== undefined && { since: isoTime(request.sinceMs) }),
      ...(request.untilMs !== undefined && { until: isoTime(request.untilMs) }),
      ...(request.statuses && { status: request.statuses }),
      ...(request.model !== undefined && { model: request.model }),
      ...(request.types && { types: request.types }),
      ...(options.dryRun && { dry_run: true }),
    };
    const result = await this.#post('api/replays', body);
    return result === undefined ? undefined : (result as { count: number }).count;
  }

  async close() {}

  async #get(path: string, missingIsUndefined = false): Promise<View | undefined> {
    const { status, body } = await this.#request('GET', path);
    if (status === 404 && missingIsUndefined) return undefined;
    return this.#check(status, body);
  }

  /** A POST whose 404 means "no such object" (every operation names one, or none). */
  async #post(path: string, body: unknown = {}): Promise<View | undefined> {
    const answer = await this.#request('POST', path, body);
    if (answer.status === 404) return undefined;
    return this.#check(answer.status, answer.body);
  }

  async #request(
    method: 'GET' | 'POST',
    path: string,
    payload?: unknown,
  ): Promise<{ status: number; body: ApiBody | undefined }> {
    const url = new URL(path, this.#base);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` }),
        },
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CommandFailedError(
        `Cannot reach Inlet at ${this.location} (${cause?.code ?? cause?.message ?? (error as Error).message}).`,
      );
    }
    const body = (await response.json().catch(() => undefined)) as ApiBody | undefined;
    return { status: response.status, body };
  }

  /** The body of a successful answer; an error in the CLI's terms otherwise. */
  #check(status: number, body: ApiBody | undefined): View {
    if (status >= 200 && status < 300 && body !== undefined) return body;
    const message = body?.error?.message ?? `HTTP ${status}`;
    if (status === 401 || status === 403) {
      throw new UsageError(
        `${this.location} refused the request (${message}) — pass --token or set INLET_ADMIN_TOKEN.`,
      );
    }
    if (status === 400) throw new UsageError(message);
    throw new CommandFailedError(`Inlet at ${this.location} answered ${status}: ${message}`);
  }
}

type ApiBody = View & { error?: { code?: string; message?: string } };

function searchOf(params: object): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params) as [string, string | undefined][]) {
    if (value !== undefined && value !== '') search.set(name, value);
  }
  return search.toString();
}
