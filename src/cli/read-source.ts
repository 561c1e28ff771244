import { ConfigError, type ServeFlags } from '../config.js';
import type { PredictionQuery, Store } from '../store/types.js';
import { eventDetailView, eventView, predictionPageView, predictionView } from '../views.js';
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

/**
 * What the read verbs print from: the admin API's JSON (CONTRACT §5), read from a local database or
 * from a running Inlet (`--url`), so both print the same.
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
  close(): Promise<void>;
}

export const URL_FLAG = [
  '--url <url>',
  'read from a running Inlet through its API instead of a database [env: INLET_URL]',
] as const;
export const TOKEN_FLAG = ['--token <token>', 'the admin token of --url [env: INLET_ADMIN_TOKEN]'] as const;

export type SourceFlags = ServeFlags & { url?: string; token?: string };

/** Opens the source the flags name: `--url`/`INLET_URL`, else the database (never created). */
export async function openReadSource(flags: SourceFlags, ctx: CliContext): Promise<ReadSource> {
  const url = (flags.url ?? ctx.env.INLET_URL ?? '').trim();
  if (url !== '') {
    const token = (flags.token ?? ctx.env.INLET_ADMIN_TOKEN ?? '').trim();
    return new ApiSource(url, token === '' ? undefined : token);
  }
  return new StoreSource(await openCliStore(flags, ctx, 'read'));
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
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params) as [string, string | undefined][]) {
      if (value !== undefined && value !== '') search.set(name, value);
    }
    return (await this.#get(`api/predictions?${search.toString()}`)) as {
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

  async close() {}

  async #get(path: string, missingIsUndefined = false): Promise<View | undefined> {
    const url = new URL(path, this.#base);
    let response: Response;
    try {
      response = await fetch(url, {
        headers: {
          accept: 'application/json',
          ...(this.#token === undefined ? {} : { authorization: `Bearer ${this.#token}` }),
        },
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CommandFailedError(
        `Cannot reach Inlet at ${this.location} (${cause?.code ?? cause?.message ?? (error as Error).message}).`,
      );
    }
    const body = (await response.json().catch(() => undefined)) as
      (View & { error?: { code?: string; message?: string } }) | undefined;
    if (response.ok && body !== undefined) return body;
    if (response.status === 404 && missingIsUndefined) return undefined;
    const message = body?.error?.message ?? `HTTP ${response.status}`;
    if (response.status === 401 || response.status === 403) {
      throw new UsageError(
        `${this.location} refused the request (${message}) — pass --token or set INLET_ADMIN_TOKEN.`,
      );
    }
    if (response.status === 400) throw new UsageError(message);
    throw new CommandFailedError(`Inlet at ${this.location} answered ${response.status}: ${message}`);
  }
}
