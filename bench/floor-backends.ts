/**
 * The floor's storage (docs/benchmarks.md): one deduplicated row a delivery, committed a batch at a
 * time. `bench/floor-server.ts` serves it over HTTP; `bench/store-commit.ts` (`BENCH_FLOOR=1`) commits
 * through it alone, beside Inlet's store.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { WalCheckpointer } from '../src/store/sqlite/wal-checkpoint.js';
import { WalSync } from '../src/store/sqlite/wal-sync.js';

/** One delivery to store, and whom to tell once it is durable (with whether it was a duplicate). */
export interface Row {
  id: string;
  prediction: string;
  status: string;
  body: Buffer;
  done(duplicate: boolean | undefined): void;
}

export interface Backend {
  /** Batches that may be committing at once. */
  overlap: number;
  /** A wait before the next batch may start (a SQLite checkpoint holding writes), or undefined. */
  hold(): Promise<void> | undefined;
  /** Commits the rows; resolves once that is durable, with whether each was a duplicate. */
  commit(rows: Row[]): Promise<boolean[]>;
  close(): Promise<void>;
}

export function sqliteBackend(file: string): Backend {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY);
  CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    prediction TEXT NOT NULL, status TEXT NOT NULL, received_at INTEGER NOT NULL, body BLOB NOT NULL)`);
  const insert = db.prepare(
    'INSERT OR IGNORE INTO deliveries (id, prediction, status, received_at, body) VALUES (?, ?, ?, ?, ?)',
  );
  const wal = new WalSync(file);
  const checkpoints = new WalCheckpointer(db, file, wal);
  const transaction = db.transaction((rows: Row[]) => {
    const now = Date.now();
    return rows.map((r) => insert.run(r.id, r.prediction, r.status, now, r.body).changes === 0);
  });
  return {
    // The commit itself is synchronous; only the WAL sync after it overlaps the next batches.
    overlap: Infinity,
    hold: () => checkpoints.writeHold(),
    async commit(rows) {
      const duplicates = transaction(rows);
      checkpoints.committed();
      await wal.durable();
      return duplicates;
    },
    async close() {
      await checkpoints.idle();
      await wal.settled();
      checkpoints.close();
      wal.close();
      db.close();
    },
  };
}

/** Connections, hence batches in flight: while one batch waits for its commit, the next is sent. */
const POSTGRES_POOL = 4;

export async function postgresBackend(connectionString: string): Promise<Backend> {
  const pool = new pg.Pool({ connectionString, max: POSTGRES_POOL });
  await pool.query(`CREATE TABLE IF NOT EXISTS deliveries (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    prediction TEXT NOT NULL, status TEXT NOT NULL, received_at BIGINT NOT NULL, body BYTEA NOT NULL)`);
  return {
    overlap: POSTGRES_POOL,
    hold: () => undefined,
    async commit(rows) {
      const now = Date.now();
      const values = rows.map(
        (_, i) => `($${5 * i + 1}, $${5 * i + 2}, $${5 * i + 3}, $${5 * i + 4}, $${5 * i + 5})`,
      );
      const inserted = await pool.query<{ id: string }>(
        `INSERT INTO deliveries (id, prediction, status, received_at, body) VALUES ${values.join(', ')}
         ON CONFLICT (id) DO NOTHING RETURNING id`,
        rows.flatMap((r) => [r.id, r.prediction, r.status, now, r.body]),
      );
      // Returned once per id: a second row of the same id in this batch is a duplicate too.
      const fresh = new Set(inserted.rows.map((r) => r.id));
      return rows.map((r) => !fresh.delete(r.id));
    },
    close: () => pool.end(),
  };
}
