import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReplicateApiConfig } from '../src/replicate-settings.js';
import { ReplicateClient } from '../src/replicate/client.js';
import { openStore } from '../src/store/index.js';
import type { Store } from '../src/store/types.js';
import { tempDir } from './helpers.js';
import { BIN, ROOT, runCli, startServe, stop, type RunningServer } from './process-helpers.js';

/**
 * Never lose a result, end to end with real processes: `inlet emulate` drops, duplicates and reorders
 * webhooks (terminal ones included); `inlet serve` with a token reconciles by polling the emulator's API.
 */

const TOKEN = 'test-token';
const MODELS: [string, Record<string, unknown>][] = [
  ['inlet/echo', { text: 'hello inlet' }],
  ['inlet/image', { prompt: 'a red fox', n: 2 }],
  ['inlet/stream', { prompt: 'stream me', max_tokens: 6 }],
  ['inlet/fail', { message: 'boom' }],
  ['inlet/slow', { seconds: 2 }],
];
const COMPARED = ['status', 'output', 'logs', 'error', 'metrics', 'started_at', 'completed_at'] as const;

interface Emulator {
  proc: ChildProcess;
  api: string;
  origin: string;
  output(): string;
}

async function startEmulator(args: string[]): Promise<Emulator> {
  const proc = spawn(process.execPath, [BIN, 'emulate', '--port', '0', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const api = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`emulate did not start:\n${out}`)), 15_000);
    proc.stdout.on('data', () => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return { proc, api, origin: api.replace(/\/v1$/, ''), output: () => out };
}

async function stopEmulator(emulator: Emulator | undefined): Promise<void> {
  if (emulator === undefined || emulator.proc.exitCode !== null) return;
  const exited = new Promise((resolve) => emulator.proc.once('exit', resolve));
  emulator.proc.kill('SIGTERM');
  await exited;
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const res = await fetch(url, { headers });
  return { httpStatus: res.status, ...((await res.json()) as Record<string, unknown>) };
}

/** Resolves once `check` answers true (looked at every 100 ms), else fails with `describe()` after `ms`. */
async function until(
  check: () => Promise<boolean>,
  ms: number,
  describe: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${await describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function serveEnv(emulator: Emulator, database: string, extra: Record<string, string> = {}) {
  return {
    REPLICATE_API_TOKEN: TOKEN,
    REPLICATE_BASE_URL: emulator.origin,
    DATABASE_URL: database,
    INLET_TIME_SCALE: '0.01',
    INLET_RECONCILE_AFTER_MS: '1000',
    ...extra,
  };
}

describe('reconcile: webhooks dropped, duplicated and reordered', () => {
  let emulator: Emulator | undefined;
  let serve: RunningServer | undefined;
  let store: Store | undefined;
  const tmp = tempDir('inlet-reconcile-e2e-');

  beforeAll(async () => {
    emulator = await startEmulator([
      '--time-scale',
      '0.05',
      '--fault-drop',
      '0.3',
      '--fault-duplicate',
      '0.3',
      '--fault-reorder',
      '0.3',
      '--seed',
      '11',
      '--retry-window-ms',
      '2000',
    ]);
  }, 20_000);
  afterAll(async () => {
    await store?.close();
    if (serve !== undefined) await stop(serve);
    await stopEmulator(emulator);
    tmp.cleanup();
  });

  it('ends every prediction in the emulator’s final state, each with one completed transition', async () => {
    const emu = emulator!;
    const database = `sqlite:${join(tmp.dir, 'inlet.db')}`;
    // No secret given: serve fetches the emulator's with the token.
    serve = await startServe([], serveEnv(emu, database));
    expect(serve.output()).toContain('webhook secret fetched from Replicate');
    const webhook = `${serve.base}/replicate-webhook`;

    // Most through the client (fast), recorded as `inlet predict` records them; a few through the CLI.
    store = await openStore(database, { mode: 'serve' });
    const client = new ReplicateClient(
      parseReplicateApiConfig({ REPLICATE_API_TOKEN: TOKEN, REPLICATE_BASE_URL: emu.origin }),
    );
    const ids: string[] = [];
    for (let round = 0; round < 10; round++) {
      for (const [model, input] of MODELS) {
        const filter = round % 2 === 0 ? ['completed'] : ['start', 'output', 'logs', 'completed'];
        const created = await client.createPrediction({ model, input, webhook, webhookEventsFilter: filter });
        const now = Date.now();
        await store.recover.track({
          id: created.id,
          kind: 'prediction',
          source: 'predict',
          createdAtMs: now,
          nextPollAtMs: now + 50,
        });
        ids.push(created.id);
      }
    }
    const cli = await Promise.all(
      [
        ['inlet/echo', 'text=from the cli'],
        ['inlet/fail', 'message=cli boom'],
        ['inlet/stream', 'prompt=cli'],
      ].map(([model, input]) =>
        runCli(['predict', model!, '-i', input!, '--events', 'start,logs'], {
          REPLICATE_API_TOKEN: TOKEN,
          REPLICATE_BASE_URL: emu.origin,
          DATABASE_URL: database,
          INLET_PUBLIC_URL: serve!.base,
        }),
      ),
    );
    for (const result of cli) {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      ids.push(result.stdout.trim());
    }
    expect(ids).toHaveLength(53);
    // `inlet predict` always asks for `completed`, and points the webhook at INLET_PUBLIC_URL's path.
    for (const id of ids.slice(-3)) {
      const created = await getJson(`${emu.api}/predictions/${id}`, { authorization: `Bearer ${TOKEN}` });
      expect(created.webhook_events_filter).toEqual(['start', 'logs', 'completed']);
      expect(created.webhook).toBe(webhook);
    }

    const auth = { authorization: `Bearer ${TOKEN}` };
    const finals = new Map<string, Record<string, unknown>>();
    const mismatches = async () => {
      const wrong: string[] = [];
      for (const id of ids) {
        const final = finals.get(id) ?? (await getJson(`${emu.api}/predictions/${id}`, auth));
        if (!['succeeded', 'failed'].includes(String(final.status))) {
          wrong.push(`${id}: emulator still ${String(final.status)}`);
          continue;
        }
        finals.set(id, final);
        const folded = await getJson(`${serve!.base}/api/predictions/${id}`);
        for (const field of COMPARED) {
          if (JSON.stringify(folded[field]) !== JSON.stringify(final[field])) {
            wrong.push(
              `${id}: ${field} ${JSON.stringify(folded[field])?.slice(0, 60)} != ${JSON.stringify(final[field])?.slice(0, 60)}`,
            );
            break;
          }
        }
      }
      return wrong;
    };
    await until(
      async () => (await mismatches()).length === 0,
      25_000,
      async () => (await mismatches()).join('\n'),
    );

    // Exactly one completed transition per prediction.
    const transitions = await store.transitions.listTransitions({
      afterSeq: 0,
      objectIds: ids,
      limit: 10_000,
    });
    for (const id of ids) {
      const completed = transitions.filter((t) => t.objectId === id && t.type === 'prediction.completed');
      expect(completed, id).toHaveLength(1);
    }

    // The predictions whose terminal webhook was dropped (and never delivered) ended through a poll.
    const log = emu.output();
    const deliveredTerminal = new Set(
      [...log.matchAll(/webhook delivered .*predictionId=(\S+) event=completed/g)].map((m) => m[1]),
    );
    const droppedTerminal = [
      ...new Set(
        [...log.matchAll(/webhook dropped \(fault\) .*predictionId=(\S+) event=completed/g)].map(
          (m) => m[1]!,
        ),
      ),
    ].filter((id) => !deliveredTerminal.has(id));
    expect(droppedTerminal.length, 'the seed drops some terminal webhooks').toBeGreaterThan(0);
    for (const id of droppedTerminal) {
      const events = (await getJson(`${serve.base}/api/predictions/${id}/events`)).data as {
        scheme: string;
        status: string;
      }[];
      expect(
        events.some((e) => e.scheme === 'poll' && ['succeeded', 'failed'].includes(e.status)),
        `${id} ended through a poll: ${JSON.stringify(events)}\n${log
          .split('\n')
          .filter((l) => l.includes(id))
          .join('\n')}`,
      ).toBe(true);
      const completed = transitions.find((t) => t.objectId === id && t.type === 'prediction.completed');
      expect(completed?.eventKey.startsWith(`poll:${id}:`), id).toBe(true);
    }
  }, 60_000);
});

describe('reconcile: every webhook dropped, API throttled', () => {
  let emulator: Emulator | undefined;
  let serve: RunningServer | undefined;
  const tmp = tempDir('inlet-reconcile-e2e-');

  afterAll(async () => {
    if (serve !== undefined) await stop(serve);
    await stopEmulator(emulator);
    tmp.cleanup();
  });

  it('inlet predict --wait still ends with exit 0, and 429s wait their Retry-After', async () => {
    emulator = await startEmulator([
      '--time-scale',
      '0.05',
      '--fault-drop',
      '1',
      '--fault-rate-limit',
      '0.3',
      '--fault-retry-after',
      '2',
      '--seed',
      '3',
    ]);
    const database = `sqlite:${join(tmp.dir, 'inlet.db')}`;
    const env = serveEnv(emulator, database, { INLET_TIME_SCALE: '0.02' });
    serve = await startServe([], env);
    const result = await runCli(
      ['predict', 'inlet/echo', '-i', 'text=hi', '--wait'],
      { ...env, INLET_PUBLIC_URL: serve.base },
      { timeoutMs: 20_000 },
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const id = lines[0]!;
    expect(lines).toContain('output: "hi"');
    expect(lines.at(-1)).toBe('status: succeeded');
    const events = (await getJson(`${serve.base}/api/predictions/${id}/events`)).data as { scheme: string }[];
    expect(events.map((e) => e.scheme)).toEqual(events.map(() => 'poll'));

    // More polls, so some of serve's own calls are throttled (3 of every 10 calls are); all still end.
    const store = await openStore(database, { mode: 'serve' });
    try {
      const client = new ReplicateClient(parseReplicateApiConfig(env));
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const { id: created } = await client.createPrediction({
          model: 'inlet/echo',
          input: { text: `n${i}` },
          webhook: `${serve.base}/replicate-webhook`,
          webhookEventsFilter: ['completed'],
        });
        await store.recover.track({
          id: created,
          kind: 'prediction',
          source: 'predict',
          createdAtMs: Date.now(),
          nextPollAtMs: Date.now(),
        });
        ids.push(created);
      }
      const ended = async () => {
        for (const one of ids) if ((await store.getPrediction(one))?.status !== 'succeeded') return false;
        return true;
      };
      await until(ended, 15_000, () => Promise.resolve(serve!.output()));
    } finally {
      await store.close();
    }
    // A throttled answer asked for 2 s: waited 2000 ms × the time scale, never the client's own guess.
    const waits = [...serve.output().matchAll(/"waitMs":(\d+),"msg":"Replicate answered 429/g)].map((m) =>
      Number(m[1]),
    );
    expect(waits.length).toBeGreaterThan(0);
    expect(new Set(waits)).toEqual(new Set([40]));
  }, 40_000);
});
