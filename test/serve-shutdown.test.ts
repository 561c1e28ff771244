import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { startServe } from './process-helpers.js';

/**
 * SIGTERM under full load on many keep-alive connections: every request that reached the server gets an
 * HTTP answer (200 when committed, 503 while closing) and no connection is reset under a request.
 */

const CONNECTIONS = 48;
/** 200s to see before the signal: the server is under load on every connection by then. */
const ANSWERS_BEFORE_SIGNAL = 400;

type Outcome =
  | { kind: 'status'; status: number; connectionClose: boolean; retryAfter: string | undefined; id: string }
  /** The connection could not be opened: the listener is closed (fine, nothing reached the server). */
  | { kind: 'refused' }
  /** The request failed on a connection the server had announced closing (`Connection: close`). */
  | { kind: 'after-close'; code: string }
  /** The request failed on a connection with no `Connection: close` seen: the bug. */
  | { kind: 'reset'; code: string; reused: boolean };

function post(agent: Agent, port: number, closed: WeakSet<Socket>): Promise<Outcome> {
  const body = JSON.stringify(prediction({ model: 'acme/shutdown' }));
  const id = JSON.parse(body).id as string;
  return new Promise((resolve) => {
    let socket: Socket | undefined;
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/replicate-webhook',
        headers: { ...signedHeaders(body), 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const connectionClose = res.headers.connection === 'close';
        if (connectionClose && socket) closed.add(socket);
        res.resume();
        res.once('end', () =>
          resolve({
            kind: 'status',
            status: res.statusCode ?? 0,
            connectionClose,
            retryAfter: res.headers['retry-after'],
            id,
          }),
        );
        res.once('error', (error: NodeJS.ErrnoException) =>
          resolve({ kind: 'reset', code: error.code ?? error.message, reused: req.reusedSocket }),
        );
      },
    );
    req.once('socket', (s: Socket) => (socket = s));
    req.once('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? error.message;
      if (code === 'ECONNREFUSED') resolve({ kind: 'refused' });
      else if (socket && closed.has(socket)) resolve({ kind: 'after-close', code });
      else resolve({ kind: 'reset', code, reused: req.reusedSocket });
    });
    req.end(body);
  });
}

describe('serve stops under load', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('answers every request it received on SIGTERM (200 or 503), resets none, stores every 200, exits 0', async () => {
    const db = join(tmp.dir, 'shutdown.db');
    const server = await startServe(['--database', db], { REPLICATE_WEBHOOK_SECRET: SECRET });
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const closed = new WeakSet<Socket>();
    const outcomes: Outcome[] = [];
    let exited = false;
    void server.exited.then(() => (exited = true));

    let signalled!: () => void;
    const loaded = new Promise<void>((resolve) => (signalled = resolve));
    let ok = 0;
    const worker = async () => {
      // Each worker keeps one connection busy until the server stops taking connections.
      for (;;) {
        const outcome = await post(agent, server.port, closed);
        outcomes.push(outcome);
        if (outcome.kind === 'status' && outcome.status === 200 && ++ok === ANSWERS_BEFORE_SIGNAL)
          signalled();
        if (outcome.kind !== 'status' || exited) return;
      }
    };
    const workers = Array.from({ length: CONNECTIONS }, worker);
    await Promise.race([loaded, server.exited]);
    expect(exited, server.output().slice(-2000)).toBe(false);
    const signalledAt = performance.now();
    server.proc.kill('SIGTERM');
    await Promise.all(workers);
    const code = await server.exited;
    const stopMs = Math.round(performance.now() - signalledAt);
    agent.destroy();

    const count = (kind: Outcome['kind']) => outcomes.filter((o) => o.kind === kind).length;
    const statuses = outcomes.flatMap((o) => (o.kind === 'status' ? [o] : []));
    const acknowledged = statuses.filter((o) => o.status === 200).map((o) => o.id);
    const resets = outcomes.filter((o) => o.kind === 'reset');
    const summary = {
      ok: acknowledged.length,
      unavailable: statuses.filter((o) => o.status === 503).length,
      other: statuses.filter((o) => o.status !== 200 && o.status !== 503).map((o) => o.status),
      refused: count('refused'),
      afterClose: count('after-close'),
      // e.g. { 'ECONNRESET on a reused connection': 27 }
      resets: resets.reduce<Record<string, number>>((counts, o) => {
        const key = `${o.code} on a ${o.reused ? 'reused' : 'new'} connection`;
        counts[key] = (counts[key] ?? 0) + 1;
        return counts;
      }, {}),
      stopMs,
    };
    console.log('shutdown under load:', JSON.stringify(summary));

    expect(code, server.output().slice(-2000)).toBe(0);
    expect(summary.resets).toEqual({});
    expect(summary.afterClose).toBe(0);
    expect(summary.other).toEqual([]);
    // Every 503 given while closing says to retry and closes its connection.
    expect(
      statuses.filter((o) => o.status === 503 && (!o.connectionClose || o.retryAfter === undefined)),
    ).toEqual([]);

    const store = new Database(db, { readonly: true });
    try {
      const stored = new Set(
        store.prepare("SELECT object_id FROM events WHERE object_id LIKE 'pred%'").pluck().all() as string[],
      );
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    } finally {
      store.close();
    }
  }, 30_000);
});
