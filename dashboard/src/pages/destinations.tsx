import { api, query, type Destination, type Message, type Page } from '../api.js';
import { formatAgo, formatDuration, formatTime, parseTime } from '../format.js';
import { ActionButton, Badge, ErrorNote, useAsync, useInterval } from '../ui.js';
import { MessageRow } from './prediction.js';

interface DestinationState {
  destination: Destination;
  dead: Message[];
  /** Age of the oldest pending message among the newest 200. */
  lagMs: number | undefined;
}

async function loadDestinations(): Promise<DestinationState[]> {
  const { data } = await api<{ data: Destination[] }>('/destinations');
  return Promise.all(
    data.map(async (destination) => {
      const [dead, pending] = await Promise.all([
        destination.dead === 0
          ? Promise.resolve({ data: [], next_cursor: null })
          : api<Page<Message>>(
              `/messages${query({ destination: destination.name, state: 'dead', limit: 50 })}`,
            ),
        destination.pending === 0
          ? Promise.resolve({ data: [], next_cursor: null })
          : api<Page<Message>>(
              `/messages${query({ destination: destination.name, state: 'pending', limit: 200 })}`,
            ),
      ]);
      const oldest = parseTime(pending.data.at(-1)?.created_at);
      return { destination, dead: dead.data, lagMs: oldest === undefined ? undefined : Date.now() - oldest };
    }),
  );
}

function DestinationCard({ state, onChange }: { state: DestinationState; onChange: () => void }) {
  const { destination: d, dead, lagMs } = state;
  const path = `/destinations/${encodeURIComponent(d.name)}`;
  const headingId = `destination-${d.name}`;
  return (
    <section class="card destination" aria-labelledby={headingId} data-destination={d.name}>
      <div class="title-row">
        <h2 id={headingId}>{d.name}</h2>
        <Badge value={d.enabled ? 'enabled' : 'disabled'} tone={d.enabled ? 'ok' : 'warn'} />
        {d.enabled ? (
          <ActionButton
            label="Disable"
            action={() => api(`${path}/disable`, { method: 'POST' })}
            onDone={onChange}
          />
        ) : (
          <ActionButton
            label="Enable"
            action={() => api(`${path}/enable`, { method: 'POST' })}
            onDone={onChange}
          />
        )}
      </div>
      <p class="mono url">{d.url ?? '—'}</p>
      {!d.enabled && d.disabled_reason !== null && <p class="note">Disabled: {d.disabled_reason}</p>}
      <dl class="facts">
        <div>
          <dt>Pending</dt>
          <dd data-pending>{d.pending}</dd>
        </div>
        <div>
          <dt>Dead</dt>
          <dd data-dead>{d.dead}</dd>
        </div>
        <div>
          <dt>Lag</dt>
          <dd title="Age of the oldest message still waiting">
            {lagMs === undefined ? 'none' : formatDuration(lagMs)}
          </dd>
        </div>
        <div>
          <dt>Last delivered</dt>
          <dd title={formatTime(d.last_delivered_at)}>
            {d.last_delivered_at === null ? 'never' : formatAgo(d.last_delivered_at)}
          </dd>
        </div>
        <div>
          <dt>Events</dt>
          <dd>{(d.events ?? []).join(', ') || 'default'}</dd>
        </div>
        <div>
          <dt>Models</dt>
          <dd>{(d.models ?? []).join(', ') || 'all'}</dd>
        </div>
      </dl>
      {d.last_error !== null && (
        <p class="error-text">
          <strong>Last error:</strong> {d.last_error}
        </p>
      )}
      {dead.length > 0 && (
        <>
          <div class="title-row">
            <h3>Dead letters</h3>
            <ActionButton
              label="Retry all shown"
              action={() =>
                Promise.all(
                  dead.map((m) => api(`/messages/${encodeURIComponent(m.id)}/retry`, { method: 'POST' })),
                )
              }
              onDone={onChange}
            />
          </div>
          <ul class="messages">
            {dead.map((m) => (
              <MessageRow key={m.id} message={m} onChange={onChange} />
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

export function DestinationsPage() {
  const states = useAsync(loadDestinations, []);
  useInterval(states.reload, 5_000);
  return (
    <>
      <h1>Destinations</h1>
      <p class="lead">
        Where Inlet forwards each change of a prediction (configured in the config file;
        docs/destinations.md).
      </p>
      {states.error !== undefined && <ErrorNote error={states.error} />}
      {states.data !== undefined && states.data.length === 0 && (
        <p class="empty">No destinations configured.</p>
      )}
      {(states.data ?? []).map((state) => (
        <DestinationCard key={state.destination.name} state={state} onChange={states.reload} />
      ))}
    </>
  );
}
