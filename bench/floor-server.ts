import { createServer } from 'node:http';
import { createVerifier } from '../src/verify/index.js';
import { postgresBackend, sqliteBackend, type Row } from './floor-backends.js';

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
