import type { IncomingHttpHeaders } from 'node:http';

/**
 * Header values that never leave Inlet: not in the API, not in logs. Signatures, and credentials a
 * client or a proxy in front of Inlet may add (docs/api.md lists them).
 */
export const REDACTED_HEADERS = [
  'webhook-signature',
  'x-replicate-signature',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
] as const;
const REDACTED = '[redacted]';

/** Lower-case names, one string per header, secrets replaced by "[redacted]". */
export function redactHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    out[lower] = (REDACTED_HEADERS as readonly string[]).includes(lower)
      ? REDACTED
      : Array.isArray(value)
        ? value.join(', ')
        : value;
  }
  return out;
}

/** JSON = `application/json` with any parameters, or any `type/subtype+json`; a missing header is accepted. */
export function isJsonContentType(contentType: string | undefined): boolean {
  // What Replicate sends, answered without the parsing below.
  if (contentType === undefined || contentType === 'application/json') return true;
  if (contentType.trim() === '') return true;
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return mediaType === 'application/json' || /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json$/.test(mediaType);
}
