/** The admin API as the dashboard reads it: same origin, `Authorization: Bearer` when a token was given. */

const TOKEN_KEY = 'inlet.token';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Listener = () => void;
const listeners = new Set<Listener>();
let needsToken = false;
/** Bumped on sign-in, so pages load again with the token. */
let generation = 0;

export const auth = {
  get needsToken(): boolean {
    return needsToken;
  },
  get generation(): number {
    return generation;
  },
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

function notify(): void {
  for (const listener of listeners) listener();
}

export function token(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Keeps the token for this browser session only (closing the tab forgets it). */
export function signIn(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value);
  needsToken = false;
  generation++;
  notify();
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  needsToken = true;
  notify();
}

/** Called when the API answered 401: the sign-in form takes over the page. */
export function tokenRefused(): void {
  if (needsToken) return;
  sessionStorage.removeItem(TOKEN_KEY);
  needsToken = true;
  notify();
}

export function authHeaders(): Record<string, string> {
  const value = token();
  return value === undefined ? {} : { authorization: `Bearer ${value}` };
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

export async function api<T>(
  path: string,
  options: { method?: 'GET' | 'POST'; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders() };
  const init: RequestInit = { method: options.method ?? 'GET', headers };
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  const res = await fetch(`/api${path}`, init);
  const body = (await res.json().catch(() => undefined)) as unknown;
  if (res.status === 401) tokenRefused();
  if (!res.ok) {
    const error = (body as ErrorBody | undefined)?.error;
    throw new ApiError(
      res.status,
      error?.code ?? 'error',
      error?.message ?? `${res.status} ${res.statusText}`,
    );
  }
  return body as T;
}

/** A query string from the parameters that have a value. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

// ---- the shapes the pages read (docs/api.md) ----

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface PredictionSummary {
  id: string;
  kind: string;
  model?: string | null;
  version?: string | null;
  status: string;
  created_at?: string | null;
  started_at?: string | null;
  completed_at?: string | null;
  metrics?: Record<string, unknown> | null;
  event_count: number;
  first_received_at: string;
  last_received_at: string;
}

export interface Prediction extends PredictionSummary {
  input?: unknown;
  output?: unknown;
  archived_output?: unknown;
  logs?: string | null;
  error?: unknown;
  urls?: Record<string, string>;
}

export interface EventSummary {
  id: string;
  received_at: string;
  status: string;
  scheme: string;
  duplicates: number;
  conflict: boolean;
}

export interface EventDetail extends EventSummary {
  prediction_id: string;
  headers: Record<string, string>;
  body?: string;
  body_base64?: string;
}

export interface TransitionSummary {
  id: string;
  type: string;
  status: string;
  recorded_at: string;
  event_id: string;
}

export interface Rejection {
  id: string;
  received_at: string;
  code: string;
  message: string;
  remote_address: string;
  headers: Record<string, string>;
  body: string;
  body_base64?: string;
  body_truncated?: boolean;
  body_bytes?: number;
}

export interface Destination {
  name: string;
  url: string | null;
  events: string[] | null;
  models: string[] | null;
  enabled: boolean;
  disabled_reason: string | null;
  pending: number;
  dead: number;
  last_delivered_at: string | null;
  last_error: string | null;
}

export interface Message {
  id: string;
  destination: string;
  type: string;
  prediction_id: string;
  transition_id: string;
  state: 'pending' | 'delivered' | 'dead';
  attempts: number;
  next_attempt_at: string | null;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
}

export interface MessageDetail extends Message {
  attempt_log: { at: string; status: number | null; duration_ms: number; error: string | null }[];
}

export interface DeliveryMinute {
  minute: string;
  accepted: number;
  duplicate: number;
  rejected: number;
}

/** One `data:` of `GET /api/stream`. */
export interface Transition {
  id: string;
  type: string;
  object_id: string;
  model: string | null;
  status: string;
  recorded_at?: string;
  timestamp?: string;
  data: Prediction;
}
