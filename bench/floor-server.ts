import { createServer } from 'node:http';
import Database from 'better-sqlite3';
import { WalCheckpointer } from '../src/store/sqlite/wal-checkpoint.js';
import { WalSync } from '../src/store/sqlite/wal-sync.js';
import { createVerifier } from '../src/verify/index.js';

/**
 * The floor under Inlet (docs/benchmarks.md): the "plain prototype that only verifies and inserts"
 * of the issue. A bare node:http server that verifies the Standard Webhooks signature, parses the
 * JSON, inserts one row per delivery (deduplicated by its id) in a group commit, and answers 200 once
 * the commit is on disk — with Inlet's own WAL sync and checkpoints, so that the gap between this
 * line and Inlet's is what Inlet does beyond verify + insert (Fastify, the fold and its list indexes,
 * headers, logs, metrics). Not a server anyone should run.
 */
const path = process.env.FLOOR_DATABASE;
const secret = process.env.REPLICATE_WEBHOOK_SECRET;
if (path === undefined || secret === undefined)
  throw new Error('FLOOR_DATABASE and REPLICATE_WEBHOOK_SECRET');

const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  prediction TEXT NOT NULL, status TEXT NOT NULL, received_at INTEGER NOT NULL, body BLOB NOT NULL)`);
const insert = db.prepare(
  'INSERT OR IGNORE INTO deliveries (id, prediction, status, received_at, body) VALUES (?, ?, ?, ?, ?)',
);
const wal = new WalSync(path);
const checkpoints = new WalCheckpointer(db, path, wal);
const verify = createVerifier({ secrets: [secret], toleranceSec: 300, acceptHex: false });

interface Row {
  id: string;
  prediction: string;
  status: string;
  body: Buffer;
  done(duplicate: boolean | undefined): void;
}
let queue: Row[] = [];
let scheduled = false;
const commit = db.transaction((rows: Row[]) => {
  const now = Date.now();
  return rows.map((r) => insert.run(r.id, r.prediction, r.status, now, r.body).changes === 0);
});

async function flush(): Promise<void> {
  scheduled = false;
  const hold = checkpoints.writeHold();
  if (hold !== undefined) {
    await hold;
    schedule();
    return;
  }
  const rows = queue;
  queue = [];
  try {
    const duplicates = commit(rows);
    checkpoints.committed();
    await wal.durable();
    rows.forEach((r, i) => r.done(duplicates[i]));
  } catch {
    rows.forEach((r) => r.done(undefined));
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
    void checkpoints.idle().then(async () => {
      await wal.settled();
      checkpoints.close();
      wal.close();
      db.close();
      process.exit(0);
    });
  }),
);
