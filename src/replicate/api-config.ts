import type { Env } from '../config.js';
import { ConfigError } from '../config.js';

/** Where and how Inlet calls Replicate's API (CONTRACT §11). */
export interface ReplicateApiConfig {
  /** `REPLICATE_API_TOKEN`; calls are off without one. */
  readonly token: string | undefined;
  /** The API base with `/v1`: `REPLICATE_BASE_URL` (an origin) plus `/v1`, unless it already ends so. */
  readonly baseUrl: string;
  /** Multiplies every wait (backoff, `Retry-After`, poll intervals): `INLET_TIME_SCALE`, default 1. */
  readonly timeScale: number;
}

export const DEFAULT_REPLICATE_ORIGIN = 'https://api.replicate.com';

/** `REPLICATE_BASE_URL` means what it means to Replicate's Python client: the origin; `/v1` is added. */
export function normaliseBaseUrl(value: string | undefined): string {
  const text = (value ?? '').trim();
  if (text === '') return `${DEFAULT_REPLICATE_ORIGIN}/v1`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError('REPLICATE_BASE_URL', `REPLICATE_BASE_URL must be an http(s) URL; got "${text}".`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('REPLICATE_BASE_URL', `REPLICATE_BASE_URL must be an http(s) URL; got "${text}".`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${path.endsWith('/v1') ? path : `${path}/v1`}`;
}

export function parseTimeScale(env: Env): number {
  const text = env.INLET_TIME_SCALE?.trim();
  if (text === undefined || text === '') return 1;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > 1000) {
    throw new ConfigError(
      'INLET_TIME_SCALE',
      `INLET_TIME_SCALE must be a number greater than 0 and at most 1000; got "${text}".`,
    );
  }
  return value;
}

export function parseReplicateApiConfig(env: Env): ReplicateApiConfig {
  const token = env.REPLICATE_API_TOKEN?.trim();
  return Object.freeze({
    token: token === undefined || token === '' ? undefined : token,
    baseUrl: normaliseBaseUrl(env.REPLICATE_BASE_URL),
    timeScale: parseTimeScale(env),
  });
}
