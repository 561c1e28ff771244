import { closeSync, fdatasync, openSync } from 'node:fs';

/** Overlapping WAL syncs; libuv's pool (4 threads) also serves logging and DNS. */
const MAX_SYNCS_IN_FLIGHT = 2;

export type SyncFunction = (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => void;

interface Waiter {
  /** The commit it waits for. */
  seq: number;
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Makes commits durable off the event loop. The connection runs with `synchronous = NORMAL`, so a
 * commit writes its WAL frames without syncing them; `durable()` then resolves once an fdatasync of
 * the WAL that started after that commit has returned — what `synchronous = FULL` does inside the
 * commit, but on libuv's thread pool, so the next batch's statements run meanwhile. One sync covers
 * every commit made before it started; syncs may overlap, so a commit made while one runs need not
 * wait for it to end before its own starts.
 */
export class WalSync {
  readonly #walPath: string;
  #fd: number | undefined;
  #committed = 0;
  /** The newest commit a started sync covers. */
  #startedUpTo = 0;
  #inFlight = 0;
  #waiters: Waiter[] = [];
  #idle: (() => void)[] = [];
  readonly #fdatasync: SyncFunction;

  /** `sync` replaces `fs.fdatasync` in tests. */
  constructor(databasePath: string, sync: SyncFunction = fdatasync) {
    this.#walPath = `${databasePath}-wal`;
    this.#fdatasync = sync;
  }

  /** Call right after each commit returns; resolves when that commit is on disk. */
  durable(): Promise<void> {
    const seq = ++this.#committed;
    return new Promise((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      this.#sync();
    });
  }

  /** Resolves when no commit waits for a sync. */
  settled(): Promise<void> {
    if (this.#waiters.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #sync(): void {
    if (this.#committed <= this.#startedUpTo) {
      if (this.#inFlight === 0 && this.#waiters.length === 0) this.#notifyIdle();
      return;
    }
    if (this.#inFlight >= MAX_SYNCS_IN_FLIGHT) return;
    const upTo = this.#committed;
    this.#startedUpTo = upTo;
    this.#inFlight++;
    const done = (error: NodeJS.ErrnoException | null) => {
      this.#inFlight--;
      let covered = 0;
      while (covered < this.#waiters.length && this.#waiters[covered]!.seq <= upTo) covered++;
      const answered = this.#waiters.splice(0, covered);
      for (const waiter of answered) {
        if (error === null) waiter.resolve();
        else waiter.reject(error);
      }
      this.#sync();
    };
    try {
      // The WAL exists once anything was committed; SQLite never deletes it while a connection is open.
      this.#fd ??= openSync(this.#walPath, 'r');
      this.#fdatasync(this.#fd, done);
    } catch (error) {
      done(error as NodeJS.ErrnoException);
    }
  }

  #notifyIdle(): void {
    const idle = this.#idle;
    this.#idle = [];
    idle.forEach((resolve) => resolve());
  }
}
