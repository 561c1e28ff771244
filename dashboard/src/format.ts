/** Times as people read them: local, to the second; durations short. */

export function parseTime(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
const timeOnly = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

export function formatTime(value: string | null | undefined): string {
  const ms = parseTime(value);
  return ms === undefined ? '—' : dateTime.format(ms);
}

/** Time of day with milliseconds, for a timeline where deliveries come close together. */
export function formatClock(value: string): string {
  const ms = parseTime(value);
  if (ms === undefined) return value;
  return `${timeOnly.format(ms)}.${String(ms % 1000).padStart(3, '0')}`;
}

export function formatDuration(ms: number): string {
  if (ms < 0) return `−${formatDuration(-ms)}`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** "3 min ago" for recent times, the date otherwise. */
export function formatAgo(value: string | null | undefined, nowMs = Date.now()): string {
  const ms = parseTime(value);
  if (ms === undefined) return '—';
  const ago = nowMs - ms;
  if (ago < 0 || ago > 7 * 24 * 3_600_000) return formatTime(value);
  if (ago < 5_000) return 'just now';
  if (ago < 60_000) return `${Math.floor(ago / 1000)} s ago`;
  return `${formatDuration(ago).replace(/ \d+ (s|min|h)$/, '')} ago`;
}

/** How long the model ran: Replicate's predict_time, else completed minus started. */
export function runTime(prediction: {
  metrics?: Record<string, unknown> | null;
  started_at?: string | null;
  completed_at?: string | null;
}): number | undefined {
  const predictTime = prediction.metrics?.predict_time;
  if (typeof predictTime === 'number') return predictTime * 1000;
  const started = parseTime(prediction.started_at);
  const completed = parseTime(prediction.completed_at);
  return started !== undefined && completed !== undefined ? completed - started : undefined;
}

export function json(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}
