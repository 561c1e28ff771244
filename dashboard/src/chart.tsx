import { useEffect } from 'preact/hooks';
import { api, type DeliveryMinute } from './api.js';
import { onTransition } from './stream.js';
import { ErrorNote, useAsync, useInterval } from './ui.js';

const SERIES = [
  { key: 'accepted', label: 'accepted' },
  { key: 'duplicate', label: 'duplicate' },
  { key: 'rejected', label: 'rejected' },
] as const;

const WIDTH = 600;
const HEIGHT = 110;

/**
 * Deliveries per minute over the last hour, stacked by outcome (`GET /api/stats/deliveries`). New
 * deliveries wake it through the stream; rejections and duplicates make no transitions, so it also
 * refreshes every 10 s.
 */
export function DeliveriesChart() {
  const stats = useAsync(
    () => api<{ since: string; until: string; data: DeliveryMinute[] }>('/stats/deliveries?minutes=60'),
    [],
  );
  useInterval(stats.reload, 10_000);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = onTransition(() => {
      timer ??= setTimeout(() => {
        timer = undefined;
        stats.reload();
      }, 500);
    });
    return () => {
      off();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [stats.reload]);

  const minutes = stats.data?.data ?? [];
  const totals = { accepted: 0, duplicate: 0, rejected: 0 };
  let peak = 1;
  for (const minute of minutes) {
    totals.accepted += minute.accepted;
    totals.duplicate += minute.duplicate;
    totals.rejected += minute.rejected;
    peak = Math.max(peak, minute.accepted + minute.duplicate + minute.rejected);
  }
  const slot = WIDTH / Math.max(60, minutes.length);
  const summary = `Deliveries per minute over the last hour: ${totals.accepted} accepted, ${totals.duplicate} duplicate, ${totals.rejected} rejected.`;

  return (
    <section class="card chart" aria-labelledby="chart-title">
      <div class="chart-head">
        <h2 id="chart-title">Deliveries, last hour</h2>
        <ul class="legend" aria-label="Totals">
          {SERIES.map((s) => (
            <li key={s.key}>
              <span class={`swatch swatch-${s.key}`} aria-hidden="true" />
              {s.label} <strong data-total={s.key}>{totals[s.key]}</strong>
            </li>
          ))}
        </ul>
      </div>
      {stats.error !== undefined && <ErrorNote error={stats.error} />}
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT + 16}`}
        role="img"
        aria-label={summary}
        preserveAspectRatio="none"
        class="chart-svg"
      >
        <line x1="0" y1={HEIGHT + 0.5} x2={WIDTH} y2={HEIGHT + 0.5} class="axis" />
        {minutes.map((minute, i) => {
          let y = HEIGHT;
          const label = `${new Date(minute.minute).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}: ${minute.accepted} accepted, ${minute.duplicate} duplicate, ${minute.rejected} rejected`;
          return (
            <g key={minute.minute}>
              <title>{label}</title>
              {SERIES.map((s) => {
                const value = minute[s.key];
                if (value === 0) return null;
                const height = Math.max(2, (value / peak) * (HEIGHT - 6));
                y -= height;
                return (
                  <rect
                    key={s.key}
                    class={`bar bar-${s.key}`}
                    x={i * slot + 1}
                    y={y}
                    width={Math.max(1, slot - 2)}
                    height={height}
                  />
                );
              })}
            </g>
          );
        })}
      </svg>
      <div class="chart-axis" aria-hidden="true">
        <span>60 min ago</span>
        <span>peak {peak}/min</span>
        <span>now</span>
      </div>
    </section>
  );
}
