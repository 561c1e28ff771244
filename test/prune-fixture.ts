/**
 * A large Inlet SQLite database built by direct SQL (a million deliveries in seconds, not hours of HTTP):
 * `deliveries` events over `deliveries / 10` predictions, each starting → 8 × processing (longer logs
 * each time) → succeeded, with one transition per event, one `prediction.completed` message for the
 * consumer `app`, and an attempt per message. The first 90% of predictions arrived `oldAgeMs` ago, the
 * rest an hour ago.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';

export const EVENTS_PER_PREDICTION = 10;
export const DAY_MS = 86_400_000;

export interface PruneFixture {
  predictions: number;
  oldPredictions: number;
  /** Old predictions whose completed message is pending (1 in 100) or dead (1 in 100). */
  pending: number;
  dead: number;
  rejections: number;
  oldRejections: number;
}

export interface ExpectedPrune {
  events: number;
  transitions: number;
  messages: number;
  message_attempts: number;
  rejections: number;
}

/** What `inlet prune` must delete from this fixture with a cutoff between old and recent. */
export function expectedPrune(f: PruneFixture): ExpectedPrune {
  const delivered = f.oldPredictions - f.pending - f.dead;
  return {
    // Every old event but the winning one (the succeeded event, also the completed transition's).
    events: f.oldPredictions * (EVENTS_PER_PREDICTION - 1),
    // The completed transition of a pending or dead message stays.
    transitions: f.oldPredictions * EVENTS_PER_PREDICTION - f.pending - f.dead,
    messages: delivered,
    message_attempts: delivered,
    rejections: f.oldRejections,
  };
}

export async function buildPruneFixture(
  path: string,
  deliveries: number,
  options: { nowMs?: number; oldAgeMs?: number } = {},
): Promise<PruneFixture> {
  // Migrated by Inlet itself, then filled behind its back.
  await (await openSqliteStore(path, { mode: 'serve' })).close();
  const nowMs = options.nowMs ?? Date.now();
  const oldAt = nowMs - (options.oldAgeMs ?? 40 * DAY_MS);
  const recentAt = nowMs - 3_600_000;
  const predictions = Math.max(1, Math.floor(deliveries / EVENTS_PER_PREDICTION));
  const oldPredictions = Math.floor(predictions * 0.9);
  const rejections = Math.max(1, Math.floor(deliveries / 100));
  const oldRejections = Math.floor(rejections * 0.9);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insertEvent = db.prepare(`INSERT INTO events
    (delivery_key, object_id, status, scheme, received_at, webhook_ts, headers, body, duplicates, conflict)
    VALUES (?, ?, ?, 'standard', ?, ?, ?, ?, 0, 0)`);
  const insertTransition = db.prepare(`INSERT INTO transitions
    (id, type, object_id, kind, model, status, event_key, recorded_at, event_count, first_received_at, last_received_at)
    VALUES (?, ?, ?, 'prediction', 'acme/painter', ?, ?, ?, ?, ?, ?)`);
  const insertObject = db.prepare(`INSERT INTO objects
    (id, kind, status, status_rank, model, observed_at, logs_len, output_kind, output_len, winning_event_key,
     summary, event_count, conflict_count, first_received_at, last_received_at, output_digest)
    VALUES (?, 'prediction', 'succeeded', 2, 'acme/painter', ?, ?, 'string', 1, ?, ?, ?, 0, ?, ?, ?)`);
  const insertMessage = db.prepare(`INSERT INTO messages
    (id, consumer, transition_seq, transition_id, object_id, type, recorded_at, state, attempts, round_attempts,
     next_attempt_at, last_status, created_at, delivered_at)
    VALUES (?, 'app', ?, ?, ?, 'prediction.completed', ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertAttempt = db.prepare(
    'INSERT INTO message_attempts (message_id, at, status, duration_ms, error) VALUES (?, ?, ?, 12, NULL)',
  );
  const insertRejection = db.prepare(`INSERT INTO rejections
    (id, received_at, code, message, remote_address, headers, body, body_len)
    VALUES (?, ?, 'invalid_signature', 'No signature matched', '192.0.2.7', '{}', ?, ?)`);
  const headers = JSON.stringify({ 'content-type': 'application/json', 'user-agent': 'Go-http-client/2.0' });
  let pending = 0;
  let dead = 0;
  db.transaction(() => {
    for (let p = 0; p < predictions; p++) {
      const id = `p${p.toString(36).padStart(8, '0')}`;
      const old = p < oldPredictions;
      const base = (old ? oldAt : recentAt) + p;
      let lastSeq = 0;
      let lastKey = '';
      let logs = '';
      for (let k = 0; k < EVENTS_PER_PREDICTION; k++) {
        const status = k === 0 ? 'starting' : k === EVENTS_PER_PREDICTION - 1 ? 'succeeded' : 'processing';
        if (k > 0) logs += `step ${k}/8 done\n`;
        const body = JSON.stringify({
          id,
          model: 'acme/painter',
          version: 'v1',
          status,
          input: { prompt: 'a lighthouse at dusk' },
          logs,
          output: status === 'succeeded' ? 'x' : null,
          urls: { get: `https://api.replicate.com/v1/predictions/${id}` },
        });
        const key = `msg_${id}_${k}`;
        const at = base + k;
        insertEvent.run(key, id, status, at, Math.floor(at / 1000), headers, Buffer.from(body));
        const type =
          k === 0
            ? 'prediction.started'
            : status === 'succeeded'
              ? 'prediction.completed'
              : 'prediction.logs';
        lastSeq = Number(
          insertTransition.run(`tr_${id}_${k}`, type, id, status, key, at, k + 1, base, at).lastInsertRowid,
        );
        lastKey = key;
      }
      const summary = JSON.stringify({ id, model: 'acme/painter', version: 'v1', status: 'succeeded' });
      const lastAt = base + EVENTS_PER_PREDICTION - 1;
      insertObject.run(
        id,
        Math.floor(lastAt / 1000),
        logs.length,
        lastKey,
        summary,
        EVENTS_PER_PREDICTION,
        base,
        lastAt,
        createHash('sha256').update('"x"').digest('hex'),
      );
      const state = old && p % 100 === 0 ? 'pending' : old && p % 100 === 1 ? 'dead' : 'delivered';
      if (state === 'pending') pending++;
      if (state === 'dead') dead++;
      const messageId = `msg_app_${id}`;
      insertMessage.run(
        messageId,
        lastSeq,
        `tr_${id}_${EVENTS_PER_PREDICTION - 1}`,
        id,
        lastAt,
        state,
        1,
        1,
        // Pending messages wait far in the future: no destination `app` runs in the tests.
        state === 'pending' ? nowMs + 365 * DAY_MS : null,
        state === 'delivered' ? 200 : 500,
        lastAt,
        state === 'delivered' ? lastAt + 50 : null,
      );
      insertAttempt.run(messageId, lastAt + 50, state === 'delivered' ? 200 : 500);
    }
    const position = Number(
      (db.prepare('SELECT MAX(seq) AS seq FROM transitions').get() as { seq: number }).seq,
    );
    db.prepare(
      `INSERT INTO consumers (name, kind, position, enabled, secret, config_hash, config, created_at, updated_at)
       VALUES ('app', 'destination', ?, 1, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'fixture', '{}', ?, ?)`,
    ).run(position, oldAt, oldAt);
    for (let r = 0; r < rejections; r++) {
      const body = Buffer.from(`{"id":"forged-${r}"}`);
      insertRejection.run(`rej_${r}`, (r < oldRejections ? oldAt : recentAt) + r, body, body.length);
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  // On disk before anything is measured: the kernel flushing a gigabyte behind the test would stall it.
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { predictions, oldPredictions, pending, dead, rejections, oldRejections };
}
