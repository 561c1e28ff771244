import { randomBytes } from 'node:crypto';
import type { ConsumerRecord } from '../store/job-types.js';
import type { ConsumerDefinition } from './consumer.js';
import type { Deliverer } from './deliverer.js';
import { DestinationSchema, type DestinationConfig } from './destination-config.js';
import { createDeliverer } from './create-deliverer.js';
import type { HttpDelivererOptions, HttpDestination } from './http-deliverer.js';

/** A fresh Standard Webhooks secret for a destination configured without one (stored once). */
export function generateDestinationSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/**
 * What is stored of a destination's configuration (never its secret): the API shows url, events and
 * models; `inlet destinations test` rebuilds the deliverer from it.
 */
export function destinationSnapshot(config: DestinationConfig): Record<string, unknown> {
  return {
    url: config.url,
    events: config.events,
    models: config.models ?? null,
    headers: config.headers,
    timeoutMs: config.timeoutMs,
    ordered: config.ordered,
    maxInFlight: config.maxInFlight,
    retryDelaysMs: config.retryDelaysMs,
    allowPrivateNetwork: config.allowPrivateNetwork,
  };
}

/** The HTTP deliverer of a stored destination (its snapshot and secret). */
export function httpDestinationOf(consumer: ConsumerRecord): HttpDestination {
  const c = consumer.config;
  if (typeof c.url !== 'string' || consumer.secret === null) {
    throw new Error(`Destination "${consumer.name}" has no stored URL or secret.`);
  }
  return {
    name: consumer.name,
    url: c.url,
    headers: (c.headers as Record<string, string> | undefined) ?? {},
    timeoutMs: typeof c.timeoutMs === 'number' ? c.timeoutMs : 10_000,
    maxInFlight: typeof c.maxInFlight === 'number' ? c.maxInFlight : 10,
    allowPrivateNetwork: c.allowPrivateNetwork === true,
    secret: consumer.secret,
  };
}

export interface DestinationConsumerOptions {
  /** Builds the deliverer (tests pass their own); by default the one its URL's scheme names. */
  createDeliverer?: (destination: HttpDestination) => Deliverer;
  delivererOptions?: HttpDelivererOptions;
}

/** An HTTP destination of the config file as a consumer of the runner. */
export function destinationConsumer(
  config: DestinationConfig,
  options: DestinationConsumerOptions = {},
): ConsumerDefinition {
  const create =
    options.createDeliverer ??
    ((destination: HttpDestination) => createDeliverer(destination, options.delivererOptions));
  return {
    name: config.name,
    kind: 'destination',
    events: config.events,
    ...(config.models === undefined ? {} : { models: config.models }),
    ordered: config.ordered,
    maxInFlight: config.maxInFlight,
    retryDelaysMs: config.retryDelaysMs,
    // The deliverer enforces the timeout itself; the runner's abort is the backstop.
    attemptTimeoutMs: config.timeoutMs + 1000,
    ...(config.secret === undefined ? {} : { secret: config.secret }),
    generateSecret: generateDestinationSecret,
    config: destinationSnapshot(config),
    deliverer: (record) => create(httpDestinationOf(record)),
  };
}

/**
 * Destinations as `serve` stored them at its last start (their snapshots), for `inlet worker`: the
 * secrets stay in the store. Rows that no longer parse are left out.
 */
export function storedDestinations(
  consumers: readonly Pick<ConsumerRecord, 'name' | 'config'>[],
): DestinationConfig[] {
  const out: DestinationConfig[] = [];
  for (const c of consumers) {
    const config = Object.fromEntries(Object.entries(c.config).filter(([, v]) => v !== null));
    const parsed = DestinationSchema.safeParse({ ...config, name: c.name });
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}
