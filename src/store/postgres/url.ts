/**
 * PostgreSQL URLs as the pg driver reads them, without loading the driver (the store index uses this
 * to check a URL before choosing a dialect).
 */

// libpq's way to name a Unix socket leaves the host empty (`postgresql://user@/db?host=/run/postgresql`);
// WHATWG URLs refuse that, so it is parsed with a stand-in host, as the pg driver itself does.
const NO_HOST = '@/';
const STAND_IN_HOST = 'inlet-no-host.invalid';

/** The URL parsed, or undefined when the pg driver could not read it either. */
export function parsePostgresUrl(text: string): URL | undefined {
  const trimmed = text.trim();
  if (URL.canParse(trimmed)) return new URL(trimmed);
  const withHost = trimmed.replace(NO_HOST, `@${STAND_IN_HOST}/`);
  return withHost !== trimmed && URL.canParse(withHost) ? new URL(withHost) : undefined;
}

/** The URL with its password masked, for messages and `location`; undefined when it does not parse. */
export function maskPostgresUrl(text: string): string | undefined {
  const url = parsePostgresUrl(text);
  if (url === undefined) return undefined;
  if (url.password !== '') url.password = '***';
  return url.toString().replace(`@${STAND_IN_HOST}/`, NO_HOST);
}
