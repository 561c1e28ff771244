import type { HeaderBag } from './types.js';

export const WEBHOOK_ID = 'webhook-id';
export const WEBHOOK_TIMESTAMP = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE = 'webhook-signature';
export const HEX_SIGNATURE = 'x-replicate-signature';

/**
 * The value of a header, trimmed; `undefined` when absent or blank (present but empty counts as absent).
 * For repeated headers the first non-blank value wins.
 */
export function headerValue(headers: HeaderBag, name: string): string | undefined {
  const raw = headers[name];
  if (typeof raw === 'string') {
    const value = raw.trim();
    return value === '' ? undefined : value;
  }
  if (Array.isArray(raw)) {
    for (const item of raw) {
      if (typeof item !== 'string') continue;
      const value = item.trim();
      if (value !== '') return value;
    }
  }
  return undefined;
}

/** Whether a request carries any signature header at all (an unsigned request may still carry `webhook-id`). */
export function hasSignatureHeaders(headers: HeaderBag): boolean {
  return (
    headerValue(headers, WEBHOOK_SIGNATURE) !== undefined ||
    headerValue(headers, WEBHOOK_TIMESTAMP) !== undefined ||
    headerValue(headers, HEX_SIGNATURE) !== undefined
  );
}
