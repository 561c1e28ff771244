import { useEffect, useState } from 'preact/hooks';
import {
  api,
  query,
  type Destination,
  type EventDetail,
  type EventSummary,
  type Message,
  type MessageDetail,
  type Page,
  type Prediction,
  type TransitionSummary,
} from '../api.js';
import { formatClock, formatDuration, formatTime, json, parseTime, runTime } from '../format.js';
import { Output } from '../output.js';
import { Link } from '../router.js';
import { onTransition } from '../stream.js';
import { ActionButton, Badge, ErrorNote, Section, useAsync, useInterval, useLive } from '../ui.js';

/** Every page of a list (a prediction has a handful of events; a long run may have a few hundred). */
async function all<T>(path: string, max = 2000): Promise<T[]> {
  const rows: T[] = [];
  let cursor: string | null = null;
  do {
    const separator = path.includes('?') ? '&' : '?';
    const page: Page<T> = await api<Page<T>>(
      `${path}${separator}limit=200${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
    );
    rows.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor !== null && rows.length < max);
  return rows;
}

interface Loaded {
  prediction: Prediction;
  events: EventSummary[];
  transitions: TransitionSummary[];
  messages: Message[];
}

async function loadPrediction(id: string): Promise<Loaded> {
  const path = `/predictions/${encodeURIComponent(id)}`;
  const [prediction, events, transitions, messages] = await Promise.all([
    api<Prediction>(path),
    all<EventSummary>(`${path}/events`),
    all<TransitionSummary>(`${path}/transitions`).catch(() => []),
    all<Message>(`/messages${query({ prediction_id: id })}`, 400),
  ]);
  return { prediction, events, transitions, messages };
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'aborted']);

const WHAT_CHANGED: Record<string, string> = {
  started: 'started',
  output: 'new output',
  logs: 'new logs',
  completed: 'completed',
};

function Facts({ prediction }: { prediction: Prediction }) {
  const ran = runTime(prediction);
  const facts: [string, string][] = [
    ['Model', prediction.model ?? '—'],
    ['Version', prediction.version ?? '—'],
    ['Kind', prediction.kind],
    ['Created', formatTime(prediction.created_at)],
    ['Started', formatTime(prediction.started_at)],
    ['Completed', formatTime(prediction.completed_at)],
    ['Run time', ran === undefined ? '—' : formatDuration(ran)],
    ['First delivery', formatTime(prediction.first_received_at)],
    ['Last delivery', formatTime(prediction.last_received_at)],
    ['Deliveries stored', String(prediction.event_count)],
  ];
  return (
    <dl class="facts">
      {facts.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

function Timeline({
  events,
  transitions,
  selected,
  onSelect,
}: {
  events: EventSummary[];
  transitions: TransitionSummary[];
  selected: string | undefined;
  onSelect: (id: string) => void;
}) {
  const changes = new Map(transitions.map((t) => [t.event_id, t]));
  let previous: number | undefined;
  return (
    <ol class="timeline">
      {events.map((event) => {
        const at = parseTime(event.received_at);
        const gap = at !== undefined && previous !== undefined ? at - previous : undefined;
        previous = at ?? previous;
        const change = changes.get(event.id);
        const what = change === undefined ? undefined : WHAT_CHANGED[change.type.split('.')[1] ?? ''];
        return (
          <li key={event.id} class={event.id === selected ? 'selected' : undefined} data-event={event.id}>
            <div class="timeline-when">
              <time dateTime={event.received_at}>{formatClock(event.received_at)}</time>
              {gap !== undefined && <span class="gap">+{formatDuration(gap)}</span>}
            </div>
            <div class="timeline-what">
              <Badge value={event.status} />
              <span class="change">
                {what ?? (event.conflict ? 'conflicting terminal status (kept, not applied)' : 'no change')}
              </span>
              {event.scheme === 'poll' && <span class="tag">poll</span>}
              {event.scheme === 'unsigned' && <span class="tag tag-warn">unsigned</span>}
              {event.duplicates > 0 && (
                <span
                  class="tag"
                  title="The same delivery arrived again and was answered 200 without storing it twice"
                >
                  {event.duplicates} duplicate{event.duplicates === 1 ? '' : 's'}
                </span>
              )}
              {event.conflict && <span class="tag tag-bad">conflict</span>}
            </div>
            <button
              type="button"
              class="link-button"
              aria-pressed={event.id === selected}
              onClick={() => onSelect(event.id)}
            >
              Raw delivery
            </button>
          </li>
        );
      })}
    </ol>
  );
}

function RawDelivery({ id }: { id: string }) {
  const event = useAsync(() => api<EventDetail>(`/events/${encodeURIComponent(id)}`), [id]);
  if (event.error !== undefined) return <ErrorNote error={event.error} />;
  if (event.data === undefined) return <p class="hint">Loading…</p>;
  const body = event.data.body ?? event.data.body_base64 ?? '';
  let pretty = body;
  try {
    pretty = json(JSON.parse(body));
  } catch {
    // Not JSON (or base64): shown as it is.
  }
  return (
    <div class="raw" data-raw-event={id}>
      <h3>
        Delivery <span class="mono">{id}</span>
      </h3>
      <p class="hint">
        Received {formatTime(event.data.received_at)} · scheme {event.data.scheme} · signature headers are
        redacted
      </p>
      <table class="kv">
        <caption>Headers</caption>
        <tbody>
          {Object.entries(event.data.headers).map(([name, value]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              <td class="mono">{value}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h4>{event.data.body_base64 === undefined ? 'Body' : 'Body (base64: not UTF-8)'}</h4>
      <pre class="json scroll" tabIndex={0} aria-label="Raw body">
        {pretty}
      </pre>
    </div>
  );
}

function Attempts({ id }: { id: string }) {
  const detail = useAsync(() => api<MessageDetail>(`/messages/${encodeURIComponent(id)}`), [id]);
  if (detail.error !== undefined) return <ErrorNote error={detail.error} />;
  if (detail.data === undefined) return <p class="hint">Loading…</p>;
  if (detail.data.attempt_log.length === 0) return <p class="hint">Not attempted yet.</p>;
  return (
    <ol class="attempts">
      {detail.data.attempt_log.map((a, i) => (
        <li key={i}>
          {formatTime(a.at)} · {a.status === null ? 'no answer' : `HTTP ${a.status}`} ·{' '}
          {formatDuration(a.duration_ms)}
          {a.error !== null && <span class="error-text"> · {a.error}</span>}
        </li>
      ))}
    </ol>
  );
}

export function MessageRow({ message, onChange }: { message: Message; onChange: () => void }) {
  const [open, setOpen] = useState(false);
  return (
    <li class="message" data-message={message.id}>
      <div class="message-head">
        <Badge value={message.state} />
        <span class="mono">{message.type}</span>
        <span>
          to <Link href="/destinations">{message.destination}</Link>
        </span>
        <span class="hint">
          {message.attempts} attempt{message.attempts === 1 ? '' : 's'}
          {message.last_status !== null && ` · last HTTP ${message.last_status}`}
          {message.next_attempt_at !== null && ` · next ${formatTime(message.next_attempt_at)}`}
        </span>
        <button type="button" class="link-button" aria-expanded={open} onClick={() => setOpen(!open)}>
          {open ? 'Hide attempts' : 'Attempts'}
        </button>
        {message.state === 'dead' && (
          <ActionButton
            label="Retry"
            action={() => api(`/messages/${encodeURIComponent(message.id)}/retry`, { method: 'POST' })}
            onDone={onChange}
          />
        )}
      </div>
      {message.last_error !== null && <p class="error-text">{message.last_error}</p>}
      {open && <Attempts id={message.id} />}
    </li>
  );
}

function Replay({ id, onDone }: { id: string; onDone: () => void }) {
  const destinations = useAsync(() => api<{ data: Destination[] }>('/destinations'), []);
  const [name, setName] = useState('');
  const [result, setResult] = useState<string | undefined>(undefined);
  const list = destinations.data?.data ?? [];
  if (list.length === 0) return null;
  const chosen = name || list[0]!.name;
  return (
    <form class="replay" onSubmit={(e) => e.preventDefault()}>
      <label>
        Send again to
        <select value={chosen} onChange={(e) => setName(e.currentTarget.value)}>
          {list.map((d) => (
            <option key={d.name} value={d.name}>
              {d.name}
            </option>
          ))}
        </select>
      </label>
      <ActionButton
        label="Replay"
        action={async () => {
          const answer = await api<{ count: number }>('/replays', {
            method: 'POST',
            body: { destination: chosen, prediction_ids: [id] },
          });
          setResult(`${answer.count} message${answer.count === 1 ? '' : 's'} queued for ${chosen}.`);
        }}
        onDone={onDone}
      />
      {result !== undefined && (
        <span class="hint" role="status">
          {result}
        </span>
      )}
    </form>
  );
}

export function PredictionPage({ id }: { id: string }) {
  const loaded = useAsync(() => loadPrediction(id), [id]);
  const [selected, setSelected] = useState<string | undefined>(undefined);

  // Deliveries while the page is open show at once.
  useEffect(
    () =>
      onTransition((transition) => {
        if (transition.object_id === id) loaded.reload();
      }),
    [id, loaded.reload],
  );

  // Without the stream, an unfinished prediction is read again every 10 s.
  const live = useLive();
  useInterval(() => {
    const status = loaded.data?.prediction.status;
    if (!live && !loaded.loading && status !== undefined && !TERMINAL.has(status)) loaded.reload();
  }, 10_000);

  if (loaded.data === undefined) {
    return (
      <>
        <h1 class="mono">{id}</h1>
        {loaded.error !== undefined ? <ErrorNote error={loaded.error} /> : <p class="hint">Loading…</p>}
      </>
    );
  }
  const { prediction, events, transitions, messages } = loaded.data;
  const shown = selected ?? events.at(-1)?.id;
  const output = prediction.archived_output !== undefined ? prediction.archived_output : prediction.output;
  const metrics = Object.entries(prediction.metrics ?? {});

  return (
    <>
      <p class="crumbs">
        <Link href="/">Predictions</Link> /
      </p>
      <div class="title-row">
        <h1 class="mono">{prediction.id}</h1>
        <Badge value={prediction.status} />
      </div>
      {loaded.error !== undefined && <ErrorNote error={loaded.error} />}
      <Facts prediction={prediction} />
      {prediction.error !== undefined && prediction.error !== null && (
        <Section title="Error" id="error-title">
          <pre class="error-box">
            {typeof prediction.error === 'string' ? prediction.error : json(prediction.error)}
          </pre>
        </Section>
      )}
      <div class="columns">
        <Section title="Timeline" id="timeline-title">
          <p class="hint">
            Every delivery stored for this {prediction.kind}, in the order received, with the time since the
            one before.
          </p>
          <Timeline events={events} transitions={transitions} selected={shown} onSelect={setSelected} />
        </Section>
        <Section title="Output" id="output-title">
          <Output value={output} />
        </Section>
      </div>
      <Section title="Input" id="input-title">
        <pre class="json scroll" tabIndex={0} aria-label="Input">
          {json(prediction.input ?? null)}
        </pre>
      </Section>
      <Section title="Logs" id="logs-title">
        {typeof prediction.logs === 'string' && prediction.logs !== '' ? (
          <pre class="logs" tabIndex={0} aria-label="Logs">
            {prediction.logs}
          </pre>
        ) : (
          <p class="empty">No logs.</p>
        )}
      </Section>
      {metrics.length > 0 && (
        <Section title="Metrics" id="metrics-title">
          <dl class="facts">
            {metrics.map(([name, value]) => (
              <div key={name}>
                <dt>{name}</dt>
                <dd>
                  {name.endsWith('_time') && typeof value === 'number'
                    ? formatDuration(value * 1000)
                    : json(value)}
                </dd>
              </div>
            ))}
          </dl>
        </Section>
      )}
      <Section title="Raw delivery" id="raw-title">
        {shown === undefined ? <p class="empty">No delivery.</p> : <RawDelivery id={shown} />}
      </Section>
      <Section title="Transitions and messages" id="messages-title">
        {transitions.length === 0 ? (
          <p class="empty">No transitions.</p>
        ) : (
          <ol class="transitions">
            {transitions.map((t) => {
              const sent = messages.filter((m) => m.transition_id === t.id);
              return (
                <li key={t.id}>
                  <div class="transition-head">
                    <span class="mono">{t.type}</span>
                    <Badge value={t.status} />
                    <time dateTime={t.recorded_at}>{formatClock(t.recorded_at)}</time>
                    <span class="hint">
                      {sent.length === 0
                        ? 'no message'
                        : `${sent.length} message${sent.length === 1 ? '' : 's'}`}
                    </span>
                  </div>
                  {sent.length > 0 && (
                    <ul class="messages">
                      {sent.map((m) => (
                        <MessageRow key={m.id} message={m} onChange={loaded.reload} />
                      ))}
                    </ul>
                  )}
                </li>
              );
            })}
          </ol>
        )}
        <Replay id={prediction.id} onDone={loaded.reload} />
      </Section>
    </>
  );
}
