import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, auth } from './api.js';
import { onStreamState } from './stream.js';

const STATUS_CLASSES: Record<string, string> = {
  starting: 'neutral',
  processing: 'info',
  succeeded: 'ok',
  failed: 'bad',
  canceled: 'warn',
  aborted: 'warn',
  pending: 'info',
  delivered: 'ok',
  dead: 'bad',
};

export function Badge({ value, tone }: { value: string; tone?: string }) {
  return <span class={`badge badge-${tone ?? STATUS_CLASSES[value] ?? 'neutral'}`}>{value}</span>;
}

export function ErrorNote({ error }: { error: unknown }) {
  if (error instanceof ApiError && error.status === 401) return null;
  const message =
    error instanceof ApiError
      ? error.status === 403
        ? `${error.message} (The dashboard reads the admin API; see docs/api.md#access.)`
        : error.message
      : error instanceof Error
        ? error.message
        : String(error);
  return (
    <p class="note note-error" role="alert">
      {message}
    </p>
  );
}

export function Section({
  title,
  children,
  id,
}: {
  title: string;
  children: ComponentChildren;
  id?: string;
}) {
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change (and again after a sign-in); keeps the last data while reloading. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const generation = useAuthGeneration();
  const run = useRef(0);
  useEffect(() => {
    const mine = ++run.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === run.current && setState({ data, error: undefined, loading: false }),
      (error: unknown) => mine === run.current && setState((s) => ({ ...s, error, loading: false })),
    );
  }, [...deps, tick, generation]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export function useAuthGeneration(): number {
  const [generation, setGeneration] = useState(auth.generation);
  useEffect(() => auth.subscribe(() => setGeneration(auth.generation)), []);
  return generation;
}

/** Calls `fn` every `ms` while the page is visible. */
export function useInterval(fn: () => void, ms: number): void {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') saved.current();
    }, ms);
    return () => clearInterval(timer);
  }, [ms]);
}

/** Whether the live stream is connected now. */
export function useLive(): boolean {
  const [live, setLive] = useState(false);
  useEffect(() => onStreamState(setLive), []);
  return live;
}

/** A button that runs an action once at a time and says how it went. */
export function ActionButton({
  label,
  busyLabel,
  action,
  onDone,
  class: className,
}: {
  label: string;
  busyLabel?: string;
  action: () => Promise<unknown>;
  onDone?: () => void;
  class?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const click = () => {
    setBusy(true);
    setError(undefined);
    action().then(
      () => {
        setBusy(false);
        onDone?.();
      },
      (e: unknown) => {
        setBusy(false);
        setError(e instanceof Error ? e.message : String(e));
      },
    );
  };
  return (
    <span class="action">
      <button type="button" class={className ?? 'button'} disabled={busy} onClick={click}>
        {busy ? (busyLabel ?? `${label}…`) : label}
      </button>
      {error !== undefined && (
        <span class="action-error" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}
