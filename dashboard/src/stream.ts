import { authHeaders, tokenRefused, type Transition } from './api.js';

/**
 * `GET /api/stream` read with fetch, not EventSource: EventSource cannot send the Authorization header.
 * One connection for the whole page; it reconnects with `Last-Event-ID` after a drop.
 */

type TransitionListener = (transition: Transition) => void;
type StateListener = (live: boolean) => void;

const transitionListeners = new Set<TransitionListener>();
const stateListeners = new Set<StateListener>();
let controller: AbortController | undefined;
let lastEventId: string | undefined;
let live = false;

export function onTransition(listener: TransitionListener): () => void {
  transitionListeners.add(listener);
  return () => transitionListeners.delete(listener);
}

export function onStreamState(listener: StateListener): () => void {
  stateListeners.add(listener);
  listener(live);
  return () => stateListeners.delete(listener);
}

function setLive(value: boolean): void {
  if (live === value) return;
  live = value;
  for (const listener of stateListeners) listener(value);
}

export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/** Feeds text to an SSE parser (the WHATWG event-stream format); calls `emit` per complete message. */
export function createSseParser(emit: (message: SseMessage) => void): (chunk: string) => void {
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  return (chunk) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (data.length > 0)
          emit({ ...(id === undefined ? {} : { id }), event: event || 'message', data: data.join('\n') });
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id') id = value;
    }
  };
}

const wait = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

async function connect(signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    let retryMs = 2000;
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', ...authHeaders() };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      const res = await fetch('/api/stream', { headers, signal, cache: 'no-store' });
      if (res.status === 401) {
        tokenRefused();
        return;
      }
      if (!res.ok || res.body === null) {
        // No stream here (an older server): pages still refresh on their timers.
        retryMs = 30_000;
        throw new Error(`stream answered ${res.status}`);
      }
      setLive(true);
      const parse = createSseParser((message) => {
        if (message.id !== undefined) lastEventId = message.id;
        let transition: Transition;
        try {
          transition = JSON.parse(message.data) as Transition;
        } catch {
          return;
        }
        if (typeof transition.object_id !== 'string') return;
        for (const listener of transitionListeners) listener(transition);
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parse(value);
      }
    } catch {
      // Dropped, refused or aborted: try again below unless stopped.
    }
    setLive(false);
    await wait(retryMs, signal);
  }
}

/** Starts the page's one stream (again after a sign-in); stops the previous one. */
export function startStream(): void {
  controller?.abort();
  controller = new AbortController();
  void connect(controller.signal);
}

export function stopStream(): void {
  controller?.abort();
  controller = undefined;
  setLive(false);
}
