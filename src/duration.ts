/** Durations as people write them in settings: `7d`, `12h`, `90m`, `30s`, `1d12h`, `500ms`. */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Milliseconds, or `undefined` when the text is not a positive duration with units. */
export function parseDurationMs(text: string): number | undefined {
  const value = text.trim().toLowerCase();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(value)) return undefined;
  let total = 0;
  for (const match of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? Number.NaN);
  }
  return Number.isFinite(total) && total >= 1 ? Math.round(total) : undefined;
}

export const DURATION_HINT = 'a number with a unit: 30d, 12h, 90m, 30s (or combined, like 1d12h)';
