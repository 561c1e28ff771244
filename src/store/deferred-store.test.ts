import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeferredStore } from './deferred-store.js';
import { StoreOpenError, StoreUnavailableError } from './errors.js';
import type { Store, StoreCapabilities } from './types.js';

const logger = pino({ level: 'silent' });
const FALLBACK: StoreCapabilities = {
  maxConcurrentCommits: 1,
  multiInstance: false,
  skipLocked: false,
  crossProcessNotify: false,
};

/** The methods a store forwards, by role (`''`: the store itself), with how many arguments each takes. */
const METHODS: Record<string, Record<string, number>> = {
  '': {
    commitEvents: 1,
    recordRejections: 2,
    listPredictions: 1,
    countPredictions: 0,
    getPrediction: 1,
    listEvents: 2,
    getEvent: 1,
    listRejections: 1,
    getRejection: 1,
    deliveriesPerMinute: 2,
    ping: 0,
    probeWrite: 0,
  },
  transitions: { listTransitions: 1, lastTransitionSeq: 0, getTransition: 1 },
  jobs: { upsertConsumer: 1, claim: 1, complete: 2, listMessages: 1, requeue: 3, deleteConsumer: 1 },
  recover: { track: 1, listDuePolls: 2, addArchiveFiles: 3, findArchivedFile: 1 },
  retention: { pruneWindow: 1, seqRange: 1, laggingConsumer: 1, referencedFiles: 1 },
};

const PATHS = Object.entries(METHODS).flatMap(([role, methods]) =>
  Object.entries(methods).map(([name, arity]) => ({ path: role === '' ? name : `${role}.${name}`, arity })),
);

/** A store whose every method records its call and answers with its own name. */
function recordingStore() {
  const calls: [string, unknown[]][] = [];
  let closed = 0;
  const method =
    (path: string) =>
    async (...args: unknown[]) => {
      calls.push([path, args]);
      return `${path} answered`;
    };
  const role = (name: string) =>
    Object.fromEntries(Object.keys(METHODS[name]!).map((m) => [m, method(name === '' ? m : `${name}.${m}`)]));
  const store = {
    dialect: 'fake',
    location: 'fake://inner',
    capabilities: { maxConcurrentCommits: 8, multiInstance: true },
    ...role(''),
    transitions: role('transitions'),
    jobs: role('jobs'),
    recover: role('recover'),
    retention: role('retention'),
    close: async () => {
      closed++;
    },
  } as unknown as Store;
  return { store, calls, closed: () => closed };
}

/** Calls `path` ("jobs.claim") on `store`, as a method of its role. */
function call(store: Store, path: string, args: unknown[]): Promise<unknown> {
  const [first, second] = path.split('.') as [string, string | undefined];
  type Methods = Record<string, (this: unknown, ...a: unknown[]) => Promise<unknown>>;
  const roles = store as unknown as Record<string, Methods>;
  const target = second === undefined ? (store as unknown as Methods) : roles[first]!;
  return target[second ?? first]!.apply(target, args);
}

/** An opener that answers from `outcomes` in turn (an error is thrown), counting its calls. */
function opener(...outcomes: (Store | Error | Promise<Store>)[]) {
  const attempts: number[] = [];
  const open = async () => {
    attempts.push(Date.now());
    const next = outcomes.length > 1 ? outcomes.shift()! : outcomes[0]!;
    if (next instanceof Error) throw next;
    return next;
  };
  return { open, attempts };
}

const deferred = (open: () => Promise<Store>) =>
  new DeferredStore('fake', 'fake://location', open, logger, FALLBACK);

afterEach(() => {
  vi.useRealTimers();
});

describe('DeferredStore', () => {
  it('answers unavailable while the database is unreachable, retrying with a growing pause until it opens', async () => {
    vi.useFakeTimers();
    const { store: inner } = recordingStore();
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const { open, attempts } = opener(refused, refused, refused, inner);
    const store = deferred(open);
    expect(attempts).toHaveLength(0);
    await store.connect();
    expect(attempts).toHaveLength(1);
    expect(store.connected).toBe(false);
    expect(store.capabilities).toEqual(FALLBACK);
    for (const { path } of PATHS) {
      await expect(call(store, path, []), path).rejects.toBeInstanceOf(StoreUnavailableError);
    }
    await expect(store.commitEvents([])).rejects.toThrow(/fake:\/\/location is not connected yet/);

    await vi.advanceTimersByTimeAsync(249);
    expect(attempts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2000);
    expect(attempts).toHaveLength(4);
    expect(attempts.slice(1).map((at, i) => at - attempts[i]!)).toEqual([250, 500, 1000]);
    expect(store.connected).toBe(true);
    expect(store.capabilities).toEqual({ maxConcurrentCommits: 8, multiInstance: true });
    expect(await store.countPredictions()).toBe('countPredictions answered');
    expect(store.failure).toBeUndefined();
  });

  it('stops retrying on a failure no retry can mend, and answers unavailable with its reason', async () => {
    vi.useFakeTimers();
    const why = new StoreOpenError('database "inlet" does not exist: create it first', 'configuration');
    const { open, attempts } = opener(why);
    const store = deferred(open);
    await store.connect();
    expect(store.failure).toBe(why);
    expect(await store.failed).toBe(why);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(attempts).toHaveLength(1);
    expect(store.connected).toBe(false);
    const error = await store.ping().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toBe(why.message);
    expect((error as Error).cause).toBe(why);
    await expect(store.jobs.claim({} as never)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('stops retrying when closed during the pause', async () => {
    vi.useFakeTimers();
    const { open, attempts } = opener(new Error('connect ECONNREFUSED'));
    const store = deferred(open);
    await store.connect();
    await store.close();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(attempts).toHaveLength(1);
    expect(store.connected).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('closes a store that opens only after it was closed, and never uses it', async () => {
    const { store: inner, calls, closed } = recordingStore();
    let finishOpening!: (store: Store) => void;
    const store = deferred(() => new Promise<Store>((resolve) => (finishOpening = resolve)));
    const firstAttempt = store.connect();
    await store.close();
    finishOpening(inner);
    await firstAttempt;
    await expect.poll(closed).toBe(1);
    expect(store.connected).toBe(false);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(calls).toEqual([]);
  });

  it('once open, forwards every method of every role with its arguments and answer, and closes the store', async () => {
    const { store: inner, calls, closed } = recordingStore();
    const store = deferred(async () => inner);
    await store.connect();
    expect(store.connected).toBe(true);
    for (const [i, { path, arity }] of PATHS.entries()) {
      const args = [`arg${i}`, { n: i }, [i]].slice(0, arity);
      expect(await call(store, path, args), path).toBe(`${path} answered`);
      expect(calls.at(-1), path).toEqual([path, args]);
    }
    expect(calls).toHaveLength(PATHS.length);
    await store.close();
    expect(closed()).toBe(1);
    expect(store.connected).toBe(false);
  });
});
