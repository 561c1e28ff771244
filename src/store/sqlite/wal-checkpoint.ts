import { closeSync, fsync, linkSync, openSync, readSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { endianness } from 'node:os';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../errors.js';
import { SCHEMA_MIGRATIONS_TABLE } from '../migrations.js';
import type { StoreLogger } from '../options.js';
import type { SyncFunction, WalSync } from './wal-sync.js';

/** SQLite's own default (`wal_autocheckpoint`): checkpoint once the WAL holds this many frames. */
export const CHECKPOINT_FRAMES = 1000;

/** `mxFrame`, the WAL's frame count, in the wal-index header at the start of `<db>-shm` (sqlite.org/walformat.html). */
const MX_FRAME_OFFSET = 16;

interface CheckpointResult {
  busy: number;
  /** Frames in the WAL. */
  log: number;
  /** Frames now copied into the database file. */
  checkpointed: number;
}

export interface WalCheckpointOptions {
  /** Frames in the WAL that start a checkpoint. */
  frames?: number;
  /** Replaces `fs.fsync` of the database file in tests. */
  syncDatabase?: SyncFunction;
  logger?: StoreLogger;
}

/**
 * Checkpoints the WAL without blocking the event loop on fsync.
 *
 * SQLite's automatic checkpoint runs inside a commit and, at `synchronous = NORMAL`, fsyncs the WAL
 * and then the database file there: ~10 ms on the event loop every ~1,000 frames, most of it waiting
 * for the disk. Inlet turns it off (`wal_autocheckpoint = 0`) and checkpoints itself, keeping SQLite's
 * order: (1) begin a read transaction on a second connection (the pin), (2) wait for a WAL sync that
 * started now (`WalSync`), so every frame the pin sees is on disk in the WAL, (3) copy those frames
 * into the database file with syncing off (on the loop, ~1–2 ms for 1,000 frames; a checkpoint never
 * copies frames newer than a reader's snapshot), (4) fsync the database file on libuv's pool, (5) end
 * the pin. Writes go on meanwhile, appending to the WAL: while the pin is open no writer, in this
 * process or another, may restart the WAL (a writer restarts it only when every frame is copied and no
 * reader uses it). Then the same again, but with new writes held from (1) to (5): it copies only what
 * was committed during the first pass, a few frames, so writes wait for a small copy and a small sync
 * (~1.3 ms), not for the whole checkpoint (~3 ms at 2,000 deliveries a second: docs/benchmarks.md). The
 * first write after that restarts the WAL from its beginning, overwriting frames only once their pages
 * are on disk in the database file: the guarantee SQLite's own checkpoint gives. Holding writes is what
 * lets the WAL restart under steady load; a checkpoint that never holds them never finds a moment
 * with every frame copied, and the WAL grows without bound.
 *
 * If the database file cannot be synced, its pages cannot be trusted, so the WAL must never restart:
 * the store stops writing (every write fails `StoreUnavailableError`) until Inlet is restarted, when
 * SQLite recovers from the WAL, which still holds every commit. The WAL must also survive the exit:
 * the copy already marked every frame as checkpointed, so whichever connection closes last (better-
 * sqlite3 closes them all when the process exits, even those `close()` leaves open) finds nothing to
 * copy, syncs nothing and deletes the WAL. So the checkpointer first gives the WAL a second name
 * (`<db>-wal.keep`, a hard link: no copy, and the frames stay on disk whatever deletes `-wal`), and
 * the next start puts it back (`restoreKeptWal`) before SQLite opens the file.
 */
export class WalCheckpointer {
  readonly #db: Database.Database;
  readonly #databasePath: string;
  readonly #wal: WalSync;
  readonly #frames: number;
  readonly #syncDatabase: SyncFunction;
  readonly #logger: StoreLogger | undefined;
  readonly #header = Buffer.alloc(4);
  #shmFd: number | undefined;
  #dbFd: number | undefined;
  /** The second connection whose read transaction pins the WAL during a checkpoint. */
  #pin: Database.Database | undefined;
  /** Frames in the WAL that start the next checkpoint. */
  #nextAt: number;
  /** Frames in the WAL at the last `committed()`. */
  #lastFrames = 0;
  /** Frames after a failed checkpoint before the next try (doubles per failure; half: the first try is after one). */
  #retryGap = 1 / 2;
  #hold: Promise<void> | undefined;
  #running: Promise<void> | undefined;
  #failure: StoreUnavailableError | undefined;
  /** Set when the WAL's size cannot be read: SQLite checkpoints by itself again. */
  #handedBack = false;

  constructor(db: Database.Database, databasePath: string, wal: WalSync, options: WalCheckpointOptions = {}) {
    this.#db = db;
    this.#databasePath = databasePath;
    this.#wal = wal;
    this.#frames = options.frames ?? CHECKPOINT_FRAMES;
    this.#nextAt = this.#frames;
    this.#syncDatabase = options.syncDatabase ?? fsync;
    this.#logger = options.logger;
    db.pragma('wal_autocheckpoint = 0');
  }

  /**
   * Undefined when a write may start now; otherwise a promise to wait for before asking again.
   * Throws once the database file could not be synced.
   */
  writeHold(): Promise<void> | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    return this.#hold;
  }

  /** Set once the database file could not be synced: the store must not write again. */
  get failure(): StoreUnavailableError | undefined {
    return this.#failure;
  }

  /** Call after each write transaction: starts a checkpoint once the WAL holds enough frames. */
  committed(): void {
    if (this.#running !== undefined || this.#failure !== undefined || this.#handedBack) return;
    let frames: number;
    try {
      frames = this.walFrames();
    } catch (error) {
      // Without the frame count Inlet cannot tell when to checkpoint: SQLite's own checkpoints, which
      // block the event loop but keep the WAL bounded, take over.
      this.#handedBack = true;
      this.#db.pragma(`wal_autocheckpoint = ${this.#frames}`);
      this.#logger?.warn(
        { err: (error as Error).message },
        'cannot read the WAL size; SQLite checkpoints automatically from now on',
      );
      return;
    }
    // A smaller WAL than last time: it restarted, so count from the threshold again.
    if (frames < this.#lastFrames) this.#nextAt = this.#frames;
    this.#lastFrames = frames;
    if (frames < this.#nextAt) return;
    this.#running = this.#checkpoint().finally(() => {
      this.#running = undefined;
    });
  }

  /** Frames in the WAL now; throws when the wal-index cannot be read. */
  walFrames(): number {
    this.#shmFd ??= openSync(`${this.#databasePath}-shm`, 'r');
    if (readSync(this.#shmFd, this.#header, 0, 4, MX_FRAME_OFFSET) !== 4) throw new Error('short wal-index');
    return endianness() === 'LE' ? this.#header.readUInt32LE(0) : this.#header.readUInt32BE(0);
  }

  /** True while a checkpoint runs (its writes may or may not be held yet). */
  get checkpointing(): boolean {
    return this.#running !== undefined;
  }

  /** Resolves once no checkpoint runs (before closing the connection). */
  async idle(): Promise<void> {
    await this.#running;
  }

  close(): void {
    this.#pin?.close();
    this.#pin = undefined;
    for (const fd of [this.#shmFd, this.#dbFd]) if (fd !== undefined) closeSync(fd);
    this.#shmFd = undefined;
    this.#dbFd = undefined;
  }

  async #checkpoint(): Promise<void> {
    // Most of the WAL is copied and synced while writes go on; writes are held only for what was
    // committed meanwhile, a few frames, so the hold is a short copy and one small sync.
    if (await this.#pass(false)) await this.#pass(true);
  }

  /**
   * One copy of the WAL into the database file and its sync. With `holdWrites`, no write starts until
   * the sync is done, so every frame is copied and the next write can restart the WAL. Without, the
   * copy ends at the frames committed when the pass began (the pin's snapshot: a checkpoint never
   * copies past a reader's), all durable in the WAL before they are copied; writes meanwhile add frames
   * after them, and the pin keeps anything from restarting the WAL until the sync is done. True when
   * the pass succeeded.
   */
  async #pass(holdWrites: boolean): Promise<boolean> {
    let release: (() => void) | undefined;
    if (holdWrites) this.#hold = new Promise((resolve) => (release = resolve));
    let copied = false;
    try {
      this.#pinWal();
      await this.#wal.durable();
      const result = this.#copy();
      copied = result.checkpointed > 0;
      if (copied) await this.#fsyncDatabase();
      if (holdWrites) {
        // Frames an open reader (a CLI command) still needs stay in the WAL: try again once as many
        // frames again have been added, not after every commit.
        this.#nextAt = result.checkpointed < result.log ? result.log + this.#frames : this.#frames;
        this.#retryGap = 1 / 2;
      }
      return true;
    } catch (error) {
      if (copied) {
        const kept = keepWal(this.#databasePath);
        this.#failure = new StoreUnavailableError(
          `SQLite database ${this.#databasePath} could not be synced after a checkpoint ` +
            `(${(error as Error).message}); restart Inlet: the WAL still holds every commit` +
            (kept === undefined ? '' : ` (kept as ${kept} until the restart)`),
          { cause: error },
        );
        this.#logger?.warn({ err: this.#failure.message }, 'SQLite checkpoint failed; no more writes');
      } else {
        // Nothing reached the database file unsynced: the WAL keeps everything. Try again after the
        // next write that succeeds (a full disk that freed up), then less and less often while it
        // keeps failing, at most every `frames` frames.
        this.#retryGap = Math.min(this.#frames, this.#retryGap * 2);
        this.#nextAt = this.#lastFrames + this.#retryGap;
        this.#logger?.warn({ err: (error as Error).message }, 'SQLite checkpoint failed; will try again');
      }
      return false;
    } finally {
      // After a failed sync the pin stays: no other process may restart the WAL either.
      if (this.#failure === undefined && this.#pin?.inTransaction === true) this.#pin.exec('COMMIT');
      this.#hold = undefined;
      release?.();
    }
  }

  /** Begins a read transaction on the WAL as it is now; no writer can restart the WAL until it ends. */
  #pinWal(): void {
    if (this.#pin === undefined) {
      this.#pin = new Database(this.#databasePath, { fileMustExist: true });
      this.#pin.pragma('cache_size = 16');
    }
    this.#pin.exec('BEGIN');
    try {
      // A read transaction takes its snapshot at its first read.
      this.#pin.prepare(`SELECT count(*) FROM ${SCHEMA_MIGRATIONS_TABLE}`).get();
    } catch (error) {
      this.#pin.exec('COMMIT');
      throw error;
    }
  }

  /** Copies every frame no reader still needs into the database file, syncing neither file. */
  #copy(): CheckpointResult {
    const synchronous = this.#db.pragma('synchronous', { simple: true }) as number;
    this.#db.pragma('synchronous = OFF');
    try {
      return (this.#db.pragma('wal_checkpoint(PASSIVE)') as CheckpointResult[])[0]!;
    } finally {
      this.#db.pragma(`synchronous = ${synchronous}`);
    }
  }

  #fsyncDatabase(): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        this.#dbFd ??= openSync(this.#databasePath, 'r');
        this.#syncDatabase(this.#dbFd, (error) => (error === null ? resolve() : reject(error)));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }
}

/** The WAL's second name while the database file cannot be trusted (see `WalCheckpointer`). */
export function keptWalPath(databasePath: string): string {
  return `${databasePath}-wal.keep`;
}

/** Links the WAL to its second name; the name, or undefined when the link could not be made. */
function keepWal(databasePath: string): string | undefined {
  const kept = keptWalPath(databasePath);
  try {
    linkSync(`${databasePath}-wal`, kept);
    return kept;
  } catch (error) {
    // Already linked by an earlier failure of this same WAL: keep that one.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return kept;
    return undefined;
  }
}

/**
 * Before SQLite opens a database whose last checkpoint could not sync the file: puts the WAL kept
 * then back under its own name, so SQLite recovers every commit from it. A `-wal` that is still the
 * same file (the process was killed and deleted nothing) just loses its second name. A different,
 * non-empty `-wal` means something wrote to the database since: Inlet cannot tell which copy is
 * newer, so it refuses to open rather than lose either.
 */
export function restoreKeptWal(databasePath: string, logger?: StoreLogger): void {
  const kept = keptWalPath(databasePath);
  const keptStat = statSync(kept, { throwIfNoEntry: false });
  if (keptStat === undefined) return;
  const walPath = `${databasePath}-wal`;
  const wal = statSync(walPath, { throwIfNoEntry: false });
  if (wal !== undefined && wal.ino === keptStat.ino && wal.dev === keptStat.dev) {
    unlinkSync(kept);
    return;
  }
  // An empty WAL, or one with only its 32-byte header, holds no commit.
  if (wal !== undefined && wal.size > 32) {
    throw new StoreUnavailableError(
      `SQLite database ${databasePath} has both a WAL kept after a failed sync (${kept}) and a newer ` +
        `one (${walPath}); move one of them away to choose which Inlet recovers from`,
    );
  }
  renameSync(kept, walPath);
  logger?.warn({ wal: walPath }, 'restored the SQLite WAL kept after a failed sync; recovering from it');
}
