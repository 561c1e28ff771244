/**
 * Broker destinations chosen by URL scheme (`nats://HOST:PORT/SUBJECT`, `redis://HOST:PORT/STREAM`):
 * parsing and the checks the config schema runs on them.
 */

const BROKER_SCHEMES = ['nats', 'redis', 'rediss'] as const;

const DEFAULT_NATS_PORT = 4222;
const DEFAULT_REDIS_PORT = 6379;

/** A NATS subject a message can be published to: dot-separated tokens, no wildcards or spaces. */
const NATS_SUBJECT = /^[^\s.*>]+(\.[^\s.*>]+)*$/;

export interface NatsTarget {
  readonly scheme: 'nats';
  readonly host: string;
  readonly port: number;
  readonly user?: string;
  readonly pass?: string;
  readonly subject: string;
}

export interface RedisTarget {
  readonly scheme: 'redis' | 'rediss';
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  /** `?db=N`: the path names the stream, so the database number moves to the query. */
  readonly db: number;
  readonly stream: string;
}

export type BrokerTarget = NatsTarget | RedisTarget;

export function isBrokerUrl(url: string): boolean {
  const scheme = /^([a-z]+):/i.exec(url)?.[1]?.toLowerCase();
  return scheme !== undefined && (BROKER_SCHEMES as readonly string[]).includes(scheme);
}

/** The target of a broker URL, or a sentence saying what is wrong with it. */
export function parseBrokerUrl(
  text: string,
): { ok: true; target: BrokerTarget } | { ok: false; problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, problem: 'is not a URL' };
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') return { ok: false, problem: 'needs a host' };
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const user = url.username === '' ? undefined : decodeURIComponent(url.username);
  const pass = url.password === '' ? undefined : decodeURIComponent(url.password);
  if (scheme === 'nats') {
    if (!NATS_SUBJECT.test(name)) {
      return { ok: false, problem: 'must name a subject without wildcards: nats://HOST:PORT/SUBJECT' };
    }
    const port = url.port === '' ? DEFAULT_NATS_PORT : Number(url.port);
    return {
      ok: true,
      target: { scheme, host, port, subject: name, ...(user && { user }), ...(pass && { pass }) },
    };
  }
  if (scheme === 'redis' || scheme === 'rediss') {
    if (name === '') return { ok: false, problem: 'must name a stream: redis://HOST:PORT/STREAM' };
    const dbText = url.searchParams.get('db') ?? '0';
    if (!/^\d{1,5}$/.test(dbText)) return { ok: false, problem: 'db must be a database number' };
    const port = url.port === '' ? DEFAULT_REDIS_PORT : Number(url.port);
    return {
      ok: true,
      target: {
        scheme,
        host,
        port,
        db: Number(dbText),
        stream: name,
        ...(user && { username: user }),
        ...(pass && { password: pass }),
      },
    };
  }
  return { ok: false, problem: `has an unknown scheme ${scheme}:` };
}

/** `nats://host:4222/subject` without credentials, for logs and errors. */
export function describeTarget(target: BrokerTarget): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const name = target.scheme === 'nats' ? target.subject : target.stream;
  return `${target.scheme}://${host}:${target.port}/${name}`;
}
