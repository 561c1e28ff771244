/** Parsing of the request headers Replicate's create endpoints honour. */

export type HeaderResult<T> = { ok: true; value: T } | { ok: false; detail: string };

/** Replicate: "The minimum allowed duration is 5 seconds." */
export const MIN_CANCEL_AFTER_MS = 5000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * `Cancel-After`: a Go-style duration (`30s`, `1m30s`, `1h`, `1.5h`, `500ms`) or bare seconds (`90`).
 * Returns milliseconds.
 */
export function parseDuration(text: string): HeaderResult<number> {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return positive(Number(value) * 1000, text);
  if (!/^(\d+(\.\d+)?(ms|h|m|s))+$/.test(value)) {
    return {
      ok: false,
      detail: `Invalid duration "${text}": use a number with a unit, like 30s, 1m30s or 1h.`,
    };
  }
  let total = 0;
  for (const match of value.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1000);
  }
  return positive(total, text);
}

function positive(ms: number, text: string): HeaderResult<number> {
  if (!Number.isFinite(ms) || ms <= 0)
    return { ok: false, detail: `Invalid duration "${text}": it must be longer than 0.` };
  return { ok: true, value: Math.round(ms) };
}

const MAX_WAIT_SEC = 60;

/**
 * `Prefer: wait` (60 s) or `Prefer: wait=N` with N from 1 to 60. Other preferences are ignored.
 * Returns seconds, or `undefined` when the client does not ask to wait.
 */
export function parsePreferWait(header: string | undefined): HeaderResult<number | undefined> {
  if (header === undefined) return { ok: true, value: undefined };
  for (const part of header.split(',')) {
    const [name, raw] = part.split('=', 2).map((s) => s.trim());
    if (name?.toLowerCase() !== 'wait') continue;
    if (raw === undefined || raw === '') return { ok: true, value: MAX_WAIT_SEC };
    const seconds = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!(seconds >= 1 && seconds <= MAX_WAIT_SEC)) {
      return {
        ok: false,
        detail: `Invalid Prefer header "${header}": wait must be a whole number of seconds from 1 to 60.`,
      };
    }
    return { ok: true, value: seconds };
  }
  return { ok: true, value: undefined };
}
