import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, query, type Page, type PredictionSummary, type Transition } from '../api.js';
import { DeliveriesChart } from '../chart.js';
import { formatAgo, formatDuration, formatTime, runTime } from '../format.js';
import { Link, navigate } from '../router.js';
import { onTransition } from '../stream.js';
import { Badge, ErrorNote, useAuthGeneration, useInterval, useLive } from '../ui.js';

const STATUSES = ['starting', 'processing', 'succeeded', 'failed', 'canceled', 'aborted'] as const;
const WINDOWS: Record<string, { label: string; ms: number }> = {
  '15m': { label: 'Last 15 minutes', ms: 15 * 60_000 },
  '1h': { label: 'Last hour', ms: 3_600_000 },
  '24h': { label: 'Last 24 hours', ms: 24 * 3_600_000 },
  '7d': { label: 'Last 7 days', ms: 7 * 24 * 3_600_000 },
};

interface Filters {
  q: string;
  status: string;
  model: string;
  window: string;
}

function filtersFrom(search: URLSearchParams): Filters {
  return {
    q: search.get('q') ?? '',
    status: search.get('status') ?? '',
    model: search.get('model') ?? '',
    window: search.get('window') ?? '',
  };
}

function sinceOf(filters: Filters): string | undefined {
  const window = WINDOWS[filters.window];
  return window === undefined ? undefined : new Date(Date.now() - window.ms).toISOString();
}

/** The API's own filter, for rows the stream brings (CONTRACT §5: q is a substring of id or model). */
function matches(row: PredictionSummary, filters: Filters): boolean {
  if (filters.status !== '' && !filters.status.split(',').includes(row.status)) return false;
  if (filters.model !== '' && row.model !== filters.model) return false;
  const q = filters.q.toLowerCase();
  if (q !== '' && !row.id.toLowerCase().includes(q) && !(row.model ?? '').toLowerCase().includes(q))
    return false;
  const since = sinceOf(filters);
  return since === undefined || row.last_received_at >= since;
}

function summaryOf(transition: Transition): PredictionSummary {
  const {
    input: _input,
    output: _output,
    logs: _logs,
    archived_output: _archived,
    ...summary
  } = transition.data;
  return { ...summary, id: transition.object_id, status: transition.data.status ?? transition.status };
}

export function PredictionsPage({ search }: { search: URLSearchParams }) {
  const filters = filtersFrom(search);
  const [q, setQ] = useState(filters.q);
  const [rows, setRows] = useState<PredictionSummary[]>([]);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(undefined);
  const generation = useAuthGeneration();
  // Rows per page: 50, or `?limit=` (1–200) in the address.
  const pageSize = Math.min(200, Math.max(1, Number(search.get('limit')) || 50));
  const key = `${filters.q}|${filters.status}|${filters.model}|${filters.window}|${pageSize}`;

  const setFilter = (name: keyof Filters, value: string) => {
    const next = { ...filters, [name]: value };
    const limit = search.get('limit') ?? undefined;
    navigate(`/${query({ q: next.q, status: next.status, model: next.model, window: next.window, limit })}`, {
      replace: true,
    });
  };

  // Typing searches after a pause, not at each key.
  useEffect(() => {
    if (q === filters.q) return;
    const timer = setTimeout(() => setFilter('q', q), 250);
    return () => clearTimeout(timer);
  }, [q]);

  const load = async (after: string | null) => {
    setLoading(true);
    try {
      const page = await api<Page<PredictionSummary>>(
        `/predictions${query({
          q: filters.q,
          status: filters.status,
          model: filters.model,
          since: sinceOf(filters),
          limit: pageSize,
          cursor: after,
        })}`,
      );
      setRows((current) => (after === null ? page.data : [...current, ...page.data]));
      setCursor(page.next_cursor);
      setError(undefined);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    void load(null);
  }, [key, generation]);

  // New deliveries move their prediction to the top, as the list is ordered by the last delivery.
  useEffect(
    () =>
      onTransition((transition) => {
        const row = summaryOf(transition);
        setRows((current) => {
          const rest = current.filter((r) => r.id !== row.id);
          return matches(row, filters) ? [row, ...rest] : rest;
        });
        setFresh((current) => new Set(current).add(row.id));
      }),
    [key],
  );

  // Without the stream (a proxy that buffers it, say), the first page is read again every 10 s.
  const live = useLive();
  useInterval(() => {
    if (!live && !loading && cursor === null) void load(null);
  }, 10_000);

  const models = useMemo(
    () => [...new Set(rows.map((r) => r.model).filter((m): m is string => typeof m === 'string'))].sort(),
    [rows],
  );

  return (
    <>
      <h1>Predictions</h1>
      <DeliveriesChart />
      <form
        class="filters card"
        role="search"
        aria-label="Filter predictions"
        onSubmit={(e) => e.preventDefault()}
      >
        <label>
          Search
          <input
            type="search"
            name="q"
            placeholder="id or model"
            value={q}
            onInput={(e) => setQ(e.currentTarget.value)}
            onKeyDown={(e) => e.key === 'Enter' && setFilter('q', q)}
          />
        </label>
        <label>
          Status
          <select
            name="status"
            value={filters.status}
            onChange={(e) => setFilter('status', e.currentTarget.value)}
          >
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
            <option value="failed,canceled,aborted">not succeeded</option>
          </select>
        </label>
        <label>
          Model
          <input
            name="model"
            list="models"
            placeholder="owner/name"
            value={filters.model}
            onChange={(e) => setFilter('model', e.currentTarget.value.trim())}
          />
          <datalist id="models">
            {models.map((m) => (
              <option key={m} value={m} />
            ))}
          </datalist>
        </label>
        <label>
          Updated
          <select
            name="window"
            value={filters.window}
            onChange={(e) => setFilter('window', e.currentTarget.value)}
          >
            <option value="">Any time</option>
            {Object.entries(WINDOWS).map(([value, w]) => (
              <option key={value} value={value}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
      </form>
      {error !== undefined && <ErrorNote error={error} />}
      <div class="table-wrap">
        <table class="list predictions" aria-busy={loading}>
          <caption class="visually-hidden">Predictions, most recently updated first</caption>
          <thead>
            <tr>
              <th scope="col">Prediction</th>
              <th scope="col">Model</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Updated</th>
              <th scope="col">Run time</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => {
              const ran = runTime(row);
              return (
                <tr key={row.id} class={fresh.has(row.id) ? 'fresh' : undefined} data-id={row.id}>
                  <td data-label="Prediction">
                    <Link class="mono" href={`/predictions/${encodeURIComponent(row.id)}`}>
                      {row.id}
                    </Link>
                    {row.kind === 'training' && <span class="tag">training</span>}
                  </td>
                  <td data-label="Model">{row.model ?? '—'}</td>
                  <td data-label="Status">
                    <Badge value={row.status} />
                  </td>
                  <td data-label="Created">
                    <time dateTime={row.created_at ?? undefined}>{formatTime(row.created_at)}</time>
                  </td>
                  <td data-label="Updated">
                    <time dateTime={row.last_received_at} title={formatTime(row.last_received_at)}>
                      {formatAgo(row.last_received_at)}
                    </time>
                  </td>
                  <td data-label="Run time">{ran === undefined ? '—' : formatDuration(ran)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {!loading && rows.length === 0 && error === undefined && (
        <p class="empty">
          {filters.q + filters.status + filters.model + filters.window === ''
            ? 'No predictions yet: they appear here as Replicate delivers them.'
            : 'No prediction matches these filters.'}
        </p>
      )}
      {cursor !== null && (
        <button type="button" class="button more" disabled={loading} onClick={() => void load(cursor)}>
          {loading ? 'Loading…' : 'Show older'}
        </button>
      )}
      {rows.length > 0 && <p class="hint">{rows.length} shown</p>}
    </>
  );
}
