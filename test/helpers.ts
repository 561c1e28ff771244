import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseServeConfig, type ServeConfig } from '../src/config.js';
import { createInlet, type Inlet } from '../src/inlet.js';
import { openStore } from '../src/store/index.js';
import { StoreUnavailableError } from '../src/store/errors.js';
import type { IngestStore, Store } from '../src/store/types.js';
import { signWebhook } from '../src/verify/index.js';

export const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
export const OTHER_SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';

export const quietLogger = pino({ level: 'silent' });

export function tempDir(prefix = 'inlet-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function testConfig(
  env: Record<string, string> = {},
  flags: Record<string, string | boolean> = {},
): ServeConfig {
  return parseServeConfig(flags, { REPLICATE_WEBHOOK_SECRET: SECRET, ...env }, { isTty: false });
}

/** An Inlet whose `close()` also removes the scratch folder it made for its store. */
export type TestInlet = Inlet;

/** An Inlet on a fresh SQLite file (or the given store), built without listening. */
export async function createTestInlet(
  env: Record<string, string> = {},
  flags: Record<string, string | boolean> = {},
  store?: Store,
): Promise<TestInlet> {
  const config = testConfig(env, flags);
  // A scratch folder only for a store of its own: a caller's store lives elsewhere.
  let tmp: ReturnType<typeof tempDir> | undefined;
  let s = store;
  if (s === undefined) {
    tmp = tempDir();
    s = await openStore(`sqlite:${join(tmp.dir, 'inlet.db')}`, { mode: 'serve' });
  }
  const inlet = createInlet(config, s, quietLogger);
  return {
    ...inlet,
    close: async () => {
      await inlet.close();
      tmp?.cleanup();
    },
  };
}

export const WEBHOOK_PATH = '/replicate-webhook';

/** An unlabelled metric's value in a Prometheus text exposition (NaN when it is absent). */
export function metricIn(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** An unlabelled metric's value in an in-process Inlet's `/metrics`. */
export async function metricOf(inlet: Inlet, name: string): Promise<number> {
  return metricIn(await inlet.metrics.text(), name);
}

/** POSTs through `inject()` and answers status, headers and the parsed JSON body. */
export async function postWebhook(
  inlet: Inlet,
  body: string | Buffer,
  headers: Record<string, string>,
  path = WEBHOOK_PATH,
) {
  const res = await inlet.app.inject({ method: 'POST', url: path, payload: body, headers });
  return { status: res.statusCode, headers: res.headers, json: res.json() };
}

let counter = 0;

export function prediction(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter++;
  return {
    id: `pred${process.pid}x${counter}`,
    model: 'inlet/echo',
    version: 'hidden',
    input: { text: 'hello' },
    logs: '',
    output: null,
    error: null,
    status: 'starting',
    created_at: '2026-11-27T13:38:07.123Z',
    urls: {
      get: 'https://api.replicate.com/v1/predictions/x',
      cancel: 'https://api.replicate.com/v1/predictions/x/cancel',
    },
    metrics: {},
    ...overrides,
  };
}

export function signedHeaders(
  body: string | Buffer,
  options: { secret?: string; id?: string; timestampSec?: number } = {},
): Record<string, string> {
  counter++;
  return {
    'content-type': 'application/json',
    ...signWebhook(body, {
      secret: options.secret ?? SECRET,
      id: options.id ?? `msg_test${process.pid}x${counter}`,
      timestampSec: options.timestampSec ?? Math.floor(Date.now() / 1000),
    }),
  };
}

/** A store whose commits (and readiness probes) fail with `StoreUnavailableError` while `isFailing()` says so. */
export function flakyStore(store: Store, isFailing: () => boolean): Store {
  const failing: ReadonlySet<PropertyKey> = new Set<keyof IngestStore>(['commitEvents', 'probeWrite']);
  return new Proxy(store, {
    get: (target, name) => {
      const value: unknown = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (!failing.has(name)) return method.bind(target);
      return async (...args: unknown[]) => {
        if (isFailing()) throw new StoreUnavailableError('disk on fire');
        return method.apply(target, args);
      };
    },
  });
}
