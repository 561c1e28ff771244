import { ConfigError, parseTimeScale, type Env } from './config.js';
import { DEFAULT_REPLICATE_ORIGIN, type ReplicateApiConfig } from './replicate/api-config.js';

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

/** `REPLICATE_API_TOKEN`, `REPLICATE_BASE_URL` and `INLET_TIME_SCALE`, read once. */
export function parseReplicateApiConfig(env: Env): ReplicateApiConfig {
  const token = env.REPLICATE_API_TOKEN?.trim();
  return Object.freeze({
    token: token === undefined || token === '' ? undefined : token,
    baseUrl: normaliseBaseUrl(env.REPLICATE_BASE_URL),
    timeScale: parseTimeScale(env),
  });
}
