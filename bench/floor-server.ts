import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import pg from 'pg';
import { WalCheckpointer } from '../src/store/sqlite/wal-checkpoint.js';
import { WalSync } from '../src/store/sqlite/wal-sync.js';
import { createVerifier } from '../src/verify/index.js';

/**
 * The floor under Inlet (docs/benchmarks.md): the "plain prototype that only verifies and inserts"
 * of the issue. A bare node:http server that verifies the Standard Webhooks signature, parses the
 * JSON, inserts one row per delivery (deduplicated by its id) in a group commit, and answers 200 once
 * the commit is on disk, so that the gap between this line and Inlet's is what Inlet does beyond
 * verify + insert (Fastify, the fold and its list indexes, headers, logs, metrics). Not a server
 * anyone should run.
 *
 * FLOOR_DATABASE=<file>: SQLite, with Inlet's own WAL sync and checkpoints. FLOOR_DATABASE_URL=
 * postgres://…: PostgreSQL, each batch one multi-row INSERT autocommitted (durable at its return with
 * PostgreSQL's default synchronous_commit), a few batches at once on a small pool.
 */
const path = process.env.FLOOR_DATABASE;
const url = process.env.FLOOR_DATABASE_URL;
const secret = process.env.REPLICATE_WEBHOOK_SECRET;
if ((path === undefined) === (url === undefined) || secret === undefined)
  throw new Error('FLOOR_DATABASE or FLOOR_DATABASE_URL, and REPLICATE_WEBHOOK_SECRET');

interface Row {
  id: string;
  prediction: string;
  status: string;
  body: Buffer;
  done(duplicate: boolean | undefined): void;
}

interface Backend {
  /** Batches that may be committing at once. */
  overlap: number;
  /** A wait before the next batch may start (a SQLite checkpoint holding writes), or undefined. */
  hold(): Promise<void> | undefined;
  /** Commits the rows; resolves once that is durable, with whether each was a duplicate. */
  commit(rows: Row[]): Promise<boolean[]>;
  close(): Promise<void>;
}

function sqliteBackend(file: string): Backend {
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

async function postgresBackend(connectionString: string): Promise<Backend> {
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

const backend = url !== undefined ? await postgresBackend(url) : sqliteBackend(path!);
const verify = createVerifier({ secrets: [secret], toleranceSec: 300, acceptHex: false });

/** Rows in one statement: far under PostgreSQL's 65,535 parameters (5 a row). */
const MAX_BATCH = 1000;
let queue: Row[] = [];
let scheduled = false;
let committing = 0;

async function flush(): Promise<void> {
  scheduled = false;
  if (committing >= backend.overlap || queue.length === 0) return;
  const hold = backend.hold();
  if (hold !== undefined) {
    await hold;
    schedule();
    return;
  }
  const rows = queue.length <= MAX_BATCH ? queue : queue.slice(0, MAX_BATCH);
  queue = rows === queue ? [] : queue.slice(MAX_BATCH);
  committing++;
  // Rows past MAX_BATCH go out at once if a connection is free (later rows schedule themselves).
  schedule();
  try {
    const duplicates = await backend.commit(rows);
    rows.forEach((r, i) => r.done(duplicates[i]));
  } catch {
    rows.forEach((r) => r.done(undefined));
  } finally {
    committing--;
    schedule();
  }
}

function schedule(): void {
  if (scheduled || queue.length === 0) return;
  scheduled = true;
  setImmediate(() => void flush());
}

const answer = (duplicate: boolean) => Buffer.from(`{"received":true,"duplicate":${duplicate}}`);
const server = createServer((request, response) => {
  if (request.url === '/readyz') {
    response.end('{"status":"ready"}');
    return;
  }
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks);
    const verified = verify(body, request.headers);
    let object: { id?: unknown; status?: unknown } | undefined;
    try {
      object = verified.ok ? (JSON.parse(body.toString('utf8')) as typeof object) : undefined;
    } catch {
      object = undefined;
    }
    if (!verified.ok || typeof object?.id !== 'string' || typeof object.status !== 'string') {
      response.writeHead(400).end();
      return;
    }
    queue.push({
      id: verified.key,
      prediction: object.id,
      status: object.status,
      body,
      done: (duplicate) => {
        if (duplicate === undefined) response.writeHead(503).end();
        else response.writeHead(200, { 'content-type': 'application/json' }).end(answer(duplicate));
      },
    });
    schedule();
  });
});
server.keepAliveTimeout = 72_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(`floor listening at http://127.0.0.1:${port}/replicate-webhook`);
});
process.on('SIGTERM', () =>
  server.close(() => {
    void backend.close().then(() => process.exit(0));
  }),
);
