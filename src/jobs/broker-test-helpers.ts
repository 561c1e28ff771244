/**
 * The real brokers for the deliverer tests: the machine's NATS (JetStream) and Redis, and private
 * throwaway servers on free ports for outage tests (stopped and started again at will).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboundMessage } from './deliverer.js';

export const NATS_URL_BASE = process.env.INLET_TEST_NATS ?? 'nats://127.0.0.1:4222';
export const REDIS_URL_BASE = process.env.INLET_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** Whether something accepts TCP connections at host:port. */
export function answers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const BINARIES = { nats: '/usr/sbin/nats-server', redis: '/usr/bin/redis-server' } as const;

/** Whether this machine has the server binary to start a private broker. */
export function canStartBroker(kind: 'nats' | 'redis'): boolean {
  return existsSync(BINARIES[kind]);
}

/** A broker server of our own on a fixed port, to stop and start again (its data survives restarts). */
export class PrivateBroker {
  readonly port: number;
  readonly #kind: 'nats' | 'redis';
  readonly #dir: string;
  #proc: ChildProcess | undefined;

  private constructor(kind: 'nats' | 'redis', port: number) {
    this.#kind = kind;
    this.port = port;
    this.#dir = mkdtempSync(join(tmpdir(), `inlet-${kind}-`));
  }

  static async create(kind: 'nats' | 'redis'): Promise<PrivateBroker> {
    return new PrivateBroker(kind, await freePort());
  }

  async start(): Promise<void> {
    const args =
      this.#kind === 'nats'
        ? ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.#dir]
        : [
            '--bind',
            '127.0.0.1',
            '--port',
            String(this.port),
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            this.#dir,
          ];
    const bin = BINARIES[this.#kind];
    this.#proc = spawn(bin, args, { stdio: 'ignore' });
    await waitUntil(() => answers('127.0.0.1', this.port), `${this.#kind} on ${this.port}`);
  }

  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A message as the runner would hand it over. */
export function testMessage(n: number, prefix: string): OutboundMessage {
  return {
    id: `msg_${prefix}_${n}`,
    consumer: 'broker',
    type: 'prediction.completed',
    objectId: `p${n}`,
    transitionId: `tr_${prefix}_${n}`,
    attempt: 1,
    recordedAtMs: Date.UTC(2026, 11, 3, 12, 0, 0, n),
    data: { id: `p${n}`, status: 'succeeded', output: [`https://replicate.delivery/${n}.png`] },
  };
}

/** Runs `fn` over `items`, at most `width` at a time. */
export async function inParallel<T, R>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}
