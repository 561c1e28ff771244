import { parseBrokerUrl } from './broker-url.js';
import type { Deliverer } from './deliverer.js';
import { HttpDeliverer, type HttpDelivererOptions, type HttpDestination } from './http-deliverer.js';
import { NatsDeliverer } from './nats-deliverer.js';
import { RedisDeliverer } from './redis-deliverer.js';

/**
 * The deliverer for a destination, chosen by its URL's scheme (CONTRACT §9, §13): `http(s)://` POSTs,
 * `nats://HOST:PORT/SUBJECT` publishes to JetStream, `redis://HOST:PORT/STREAM` appends to a stream.
 * Brokers ignore `secret`, `headers` and `allowPrivateNetwork` (they are reached on the operator's
 * network by design; the body carries no signature).
 */
export function createDeliverer(destination: HttpDestination, options: HttpDelivererOptions = {}): Deliverer {
  const scheme = /^([a-z]+):/i.exec(destination.url)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') return new HttpDeliverer(destination, options);
  const parsed = parseBrokerUrl(destination.url);
  if (!parsed.ok) throw new RangeError(`destination ${destination.name}: the url ${parsed.problem}.`);
  const { target } = parsed;
  const common = { name: destination.name, timeoutMs: destination.timeoutMs };
  return target.scheme === 'nats'
    ? new NatsDeliverer({ ...common, target })
    : new RedisDeliverer({ ...common, target });
}
