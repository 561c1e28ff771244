/** Where and how Inlet calls Replicate's API (CONTRACT §11); read from the environment by `replicate-settings.ts`. */
export interface ReplicateApiConfig {
  /** `REPLICATE_API_TOKEN`; calls are off without one. */
  readonly token: string | undefined;
  /** The API base with `/v1`: `REPLICATE_BASE_URL` (an origin) plus `/v1`, unless it already ends so. */
  readonly baseUrl: string;
  /** Multiplies every wait (backoff, `Retry-After`, poll intervals): `INLET_TIME_SCALE`, default 1. */
  readonly timeScale: number;
}

export const DEFAULT_REPLICATE_ORIGIN = 'https://api.replicate.com';
