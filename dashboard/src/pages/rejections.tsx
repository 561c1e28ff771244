import { useEffect, useState } from 'preact/hooks';
import { api, query, type Page, type Rejection } from '../api.js';
import { explain } from '../explain.js';
import { formatTime, json } from '../format.js';
import { Badge, ErrorNote, useAuthGeneration, useInterval } from '../ui.js';

/** The explanations mark commands and names with backticks: shown as code. */
function Prose({ text }: { text: string }) {
  return <>{text.split('`').map((part, i) => (i % 2 === 1 ? <code key={i}>{part}</code> : part))}</>;
}

function RejectionItem({ rejection }: { rejection: Rejection }) {
  const why = explain(rejection.code);
  let body = rejection.body;
  try {
    body = json(JSON.parse(rejection.body));
  } catch {
    // Not JSON: shown as received.
  }
  return (
    <li class="card rejection" data-rejection={rejection.id} data-code={rejection.code}>
      <div class="rejection-head">
        <Badge value={rejection.code} tone="bad" />
        <h2 class="rejection-title">{why.title}</h2>
        <time dateTime={rejection.received_at}>{formatTime(rejection.received_at)}</time>
        <span class="hint">from {rejection.remote_address || 'unknown'}</span>
      </div>
      <p class="message">{rejection.message}</p>
      <div class="explain">
        <p>
          <strong>Likely cause.</strong> <Prose text={why.cause} />
        </p>
        <p>
          <strong>Fix.</strong> <Prose text={why.fix} />
        </p>
      </div>
      <details>
        <summary>Headers and body</summary>
        <table class="kv">
          <caption>Headers (signatures redacted)</caption>
          <tbody>
            {Object.entries(rejection.headers).map(([name, value]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td class="mono">{value}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h3>
          Body
          {rejection.body_truncated === true && ` (first 64 KiB of ${rejection.body_bytes ?? '?'} bytes)`}
        </h3>
        {body === '' ? (
          <p class="empty">Empty.</p>
        ) : (
          <pre class="json scroll" tabIndex={0} aria-label="Rejected body">
            {body}
          </pre>
        )}
      </details>
    </li>
  );
}

export function RejectionsPage() {
  const [rows, setRows] = useState<Rejection[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(undefined);
  const generation = useAuthGeneration();

  const load = async (after: string | null) => {
    setLoading(true);
    try {
      const page = await api<Page<Rejection>>(`/rejections${query({ limit: 50, cursor: after })}`);
      setRows((current) => {
        if (after !== null) {
          const shown = new Set(current.map((r) => r.id));
          return [...current, ...page.data.filter((r) => !shown.has(r.id))];
        }
        // A refresh keeps the older pages already shown.
        const fresh = new Set(page.data.map((r) => r.id));
        return [
          ...page.data,
          ...current.filter((r) => !fresh.has(r.id) && r.received_at < (page.data.at(-1)?.received_at ?? '')),
        ];
      });
      if (after !== null || cursor === null) setCursor(page.next_cursor);
      setError(undefined);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    void load(null);
  }, [generation]);
  // Rejections make no transitions: look again every 10 s.
  useInterval(() => void load(null), 10_000);

  return (
    <>
      <h1>Rejections</h1>
      <p class="lead">
        Requests Inlet refused, newest first, each with what most likely caused it and how to fix it. Nothing
        here was stored as a delivery; Replicate retries what it can.
      </p>
      {error !== undefined && <ErrorNote error={error} />}
      {!loading && rows.length === 0 && error === undefined && <p class="empty">No rejected requests.</p>}
      <ul class="rejections" aria-busy={loading}>
        {rows.map((r) => (
          <RejectionItem key={r.id} rejection={r} />
        ))}
      </ul>
      {cursor !== null && (
        <button type="button" class="button more" disabled={loading} onClick={() => void load(cursor)}>
          {loading ? 'Loading…' : 'Show older'}
        </button>
      )}
    </>
  );
}
