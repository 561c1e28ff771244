import { isIPv6 } from 'node:net';

/**
 * Which hosts the archive may fetch from (`INLET_ARCHIVE_HOSTS`). An output is text anyone who can
 * run a model controls, so this list is the whole guard: a listed host is fetched whatever address it
 * resolves to, and nothing else ever is, redirects included.
 */
export const DEFAULT_ARCHIVE_HOSTS = Object.freeze(['replicate.delivery', '*.replicate.delivery']);

const HOST_NAME = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** Lower case, without IPv6 brackets or a trailing dot: how names are compared. */
function normaliseHost(host: string): string {
  const lower = host.trim().toLowerCase();
  const bare = lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
  return bare.endsWith('.') ? bare.slice(0, -1) : bare;
}

/**
 * Splits and checks a comma list of host names (`*.` wildcards allowed). Throws a plain error naming
 * the bad entry; ports are refused because they are not part of the match.
 */
export function parseHostList(text: string): string[] {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new Error('the list is empty');
  return entries.map((entry) => {
    const host = normaliseHost(entry);
    if (isIPv6(host)) return host;
    if (/:\d+$/.test(host)) {
      throw new Error(`"${entry}" has a port; list host names only (ports are not part of the match)`);
    }
    if (!HOST_NAME.test(host)) {
      throw new Error(
        `"${entry}" is not a host name (letters, digits, dots, hyphens; "*." in front for subdomains)`,
      );
    }
    return host;
  });
}

export class HostAllowList {
  readonly #exact = new Set<string>();
  /** Suffixes of `*.` entries, with their leading dot. */
  readonly #suffixes: string[] = [];

  constructor(readonly entries: readonly string[]) {
    for (const entry of entries) {
      const host = normaliseHost(entry);
      if (host.startsWith('*.')) this.#suffixes.push(host.slice(1));
      else this.#exact.add(host);
    }
  }

  /** Whether a URL may be fetched: http(s), no credentials in it, and a listed host (any port). */
  allows(url: string | URL): boolean {
    let parsed: URL;
    try {
      parsed = typeof url === 'string' ? new URL(url) : url;
    } catch {
      return false;
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false;
    if (parsed.username !== '' || parsed.password !== '') return false;
    const host = normaliseHost(parsed.hostname);
    if (host === '') return false;
    if (this.#exact.has(host)) return true;
    return this.#suffixes.some((suffix) => host.endsWith(suffix) && host.length > suffix.length);
  }
}
