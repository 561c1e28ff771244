import type { PoolClient, QueryResultRow } from 'pg';
import type {
  AttemptOutcome,
  ClaimRequest,
  ConsumerRecord,
  ConsumerUpsert,
  JobStore,
  MessageRecord,
  NewMessage,
} from '../job-types.js';
import { SqlJobStore } from '../sql-job-store.js';
import { createPostgresExecutor } from './postgres-recover.js';
import {
  ADVANCE_POSITION_SQL,
  claimAndLeaseSql,
  combinedStatement,
  consumerFromRow,
  DISABLE_CONSUMER_SQL,
  ENABLE_CONSUMER_SQL,
  GET_CONSUMER_SQL,
  INSERT_CONSUMER_SQL,
  INSERT_MESSAGE_SQL,
  insertConsumerParams,
  insertMessageParams,
  messageFromRow,
  MOVE_POSITION_SQL,
  outcomeStatements,
  releaseSql,
  REQUEUE_MESSAGE_SQL,
  SKIP_PENDING_SQL,
  UPDATE_CONSUMER_SQL,
  updateConsumerParams,
  type ConsumerRow,
  type MessageRow,
} from '../sql-jobs.js';
import { numberPlaceholders, toNumber, type SqlQuery, type SqlValue } from '../statements.js';

/** How the job store reaches the pool: the store's own transaction (retries on deadlocks) and queries. */
export interface PostgresAccess {
  transaction<T>(doing: string, work: (client: PoolClient) => Promise<T>): Promise<T>;
  query<Row>(doing: string, query: SqlQuery): Promise<Row[]>;
  /** A connection of its own, held for LISTEN. */
  connect(): Promise<PoolClient>;
}

/** Where ingest announces new transitions (`NOTIFY`), every instance listening. */
export const TRANSITIONS_CHANNEL = 'inlet_transitions';
const RELISTEN_DELAY_MS = 1000;

/** Params: consumer. Takes the consumer's claim lock (until the transaction ends), then reads it. */
const CLAIM_LOCK_SQL = `SELECT c.enabled FROM (
  SELECT pg_advisory_xact_lock(hashtextextended('inlet.claim.' || current_schema() || '.' || $1::text, 0))
) AS l, consumers c WHERE c.name = $1::text`;

/** Several instances share this: claims lock the consumer's row, then skip rows others hold. */
export class PostgresJobs extends SqlJobStore implements JobStore {
  readonly #access: PostgresAccess;

  constructor(access: PostgresAccess) {
    super(createPostgresExecutor(access));
    this.#access = access;
  }

  async upsertConsumer(consumer: ConsumerUpsert): Promise<ConsumerRecord> {
    return this.#access.transaction('saving a consumer', async (client) => {
      const secret = consumer.secret ?? consumer.generateSecret?.() ?? null;
      // Inserted or not (another instance may be creating it now: the insert waits for that commit).
      await run(client, INSERT_CONSUMER_SQL, insertConsumerParams(consumer, secret));
      await run(client, UPDATE_CONSUMER_SQL, updateConsumerParams(consumer));
      const [row] = await rows<ConsumerRow>(client, GET_CONSUMER_SQL, [consumer.name]);
      return consumerFromRow(row!);
    });
  }

  async fanOut(
    consumer: string,
    fromPosition: number,
    toPosition: number,
    messages: readonly NewMessage[],
    nowMs: number,
  ): Promise<boolean> {
    return this.#unsyncedTransaction('fanning out transitions', async (client) => {
      // The position update locks the consumer's row: a second instance fanning out waits, then
      // finds the position moved and writes nothing.
      const advanced = await run(client, ADVANCE_POSITION_SQL, [toPosition, consumer, fromPosition]);
      if (advanced === 0) return false;
      await insertMessages(client, consumer, messages, nowMs);
      return true;
    });
  }

  async claim(request: ClaimRequest): Promise<MessageRecord[]> {
    if (request.limit <= 0) return [];
    return this.#unsyncedTransaction('claiming messages', async (client) => {
      // One claim per consumer at a time across instances, so `maxInFlight` holds for all of them. An
      // advisory lock rather than the consumer's row: recording attempts updates that row meanwhile.
      const [consumer] = await rows<{ enabled: unknown }>(client, CLAIM_LOCK_SQL, [request.consumer]);
      if (consumer === undefined || toNumber(consumer.enabled) === 0) return [];
      const leased = await rows<MessageRow>(client, claimAndLeaseSql(request.ordered), [
        request.consumer,
        request.nowMs,
        request.nowMs,
        request.limit,
        request.maxInFlight,
        request.consumer,
        request.nowMs,
        request.owner,
        request.nowMs + request.leaseMs,
      ]);
      return leased.map(messageFromRow).sort((x, y) => x.transitionSeq - y.transitionSeq);
    });
  }

  async complete(
    outcomes: readonly AttemptOutcome[],
    nowMs: number,
    claims: readonly ClaimRequest[] = [],
  ): Promise<MessageRecord[][]> {
    if (outcomes.length > 0) {
      // Messages in id order, as every instance writes them, so concurrent batches cannot deadlock.
      const sorted = [...outcomes].sort((a, b) => (a.messageId < b.messageId ? -1 : 1));
      await this.#unsyncedTransaction('recording attempts', async (client) => {
        for (const outcome of sorted) {
          const one = combinedStatement(outcomeStatements(outcome, nowMs));
          await run(client, one.sql, one.params);
        }
      });
    }
    // Each claim in a transaction of its own, after the outcomes' commit: a claim holds its consumer's
    // lock until its transaction ends, and the outcomes' row locks need not wait behind it.
    const claimed: MessageRecord[][] = [];
    for (const request of claims) claimed.push(await this.claim(request));
    return claimed;
  }

  async release(messageIds: readonly string[], owner: string): Promise<void> {
    if (messageIds.length === 0) return;
    await this.#query('releasing leases', releaseSql(messageIds.length), [owner, ...messageIds]);
  }

  async setConsumerEnabled(
    name: string,
    change: { enabled: boolean; reason?: string; position?: number; nowMs: number },
  ): Promise<boolean> {
    return this.#access.transaction('enabling a consumer', async (client) => {
      const changed = change.enabled
        ? await run(client, ENABLE_CONSUMER_SQL, [change.nowMs, name])
        : await run(client, DISABLE_CONSUMER_SQL, [
            change.reason ?? 'disabled by an operator',
            change.nowMs,
            name,
          ]);
      if (changed === 0) return false;
      if (change.position !== undefined) {
        await run(client, MOVE_POSITION_SQL, [change.position, name]);
        await run(client, SKIP_PENDING_SQL, [name]);
      }
      return true;
    });
  }

  async requeue(consumer: string, messages: readonly NewMessage[], nowMs: number): Promise<number> {
    if (messages.length === 0) return 0;
    return this.#access.transaction('replaying messages', async (client) => {
      for (const m of messages) {
        if ((await run(client, INSERT_MESSAGE_SQL, insertMessageParams(consumer, m, nowMs))) === 0) {
          await run(client, REQUEUE_MESSAGE_SQL, [nowMs, m.id]);
        }
      }
      return messages.length;
    });
  }

  async watchTransitions(onNotify: () => void): Promise<() => Promise<void>> {
    let stopped = false;
    let client: PoolClient | undefined;
    let timer: NodeJS.Timeout | undefined;
    const listen = async (): Promise<void> => {
      try {
        const c = await this.#access.connect();
        if (stopped) {
          c.release();
          return;
        }
        client = c;
        c.on('notification', (n) => {
          if (n.channel === TRANSITIONS_CHANNEL) onNotify();
        });
        c.on('error', (error) => {
          // The connection is gone: drop it, listen again on a new one, and look for missed work.
          if (client === c) client = undefined;
          c.release(error);
          if (!stopped) timer = setTimeout(() => void listen(), RELISTEN_DELAY_MS);
        });
        await c.query(`LISTEN ${TRANSITIONS_CHANNEL}`);
        onNotify();
      } catch {
        if (client !== undefined) {
          client.release(true);
          client = undefined;
        }
        if (!stopped) timer = setTimeout(() => void listen(), RELISTEN_DELAY_MS);
      }
    };
    await listen();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      if (c !== undefined) {
        await c.query(`UNLISTEN ${TRANSITIONS_CHANNEL}`).catch(() => undefined);
        c.release();
      }
    };
  }

  /**
   * The runner's transactions (fan-out, claims, attempts) do not wait for their WAL flush: a commit lost to a database crash
   * only repeats a message or an attempt (at least once), and ingest's own commits stay synchronous.
   */
  #unsyncedTransaction<T>(doing: string, work: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.#access.transaction(doing, async (client) => {
      await client.query('SET LOCAL synchronous_commit = off');
      return work(client);
    });
  }

  #query<Row>(doing: string, sql: string, params: SqlValue[]): Promise<Row[]> {
    return this.#access.query<Row>(doing, { sql, params });
  }
}

async function insertMessages(
  client: PoolClient,
  consumer: string,
  messages: readonly NewMessage[],
  nowMs: number,
): Promise<void> {
  // One statement per chunk: fan-out of a busy log is many rows.
  const CHUNK = 500;
  const head = INSERT_MESSAGE_SQL.slice(0, INSERT_MESSAGE_SQL.indexOf('VALUES') + 'VALUES'.length);
  for (let i = 0; i < messages.length; i += CHUNK) {
    const chunk = messages.slice(i, i + CHUNK);
    const params: SqlValue[] = [];
    const tuples = chunk.map((m) => {
      const p = insertMessageParams(consumer, m, nowMs);
      const base = params.length;
      params.push(...p);
      return `($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5}, $${base + 6}, $${base + 7}, 'pending', 0, 0, $${base + 8}, $${base + 9})`;
    });
    await client.query(`${head} ${tuples.join(', ')} ON CONFLICT (id) DO NOTHING`, params);
  }
}

async function run(client: PoolClient, sql: string, params: SqlValue[]): Promise<number> {
  return (await client.query(numberPlaceholders(sql), params)).rowCount ?? 0;
}

async function rows<Row>(client: PoolClient, sql: string, params: SqlValue[]): Promise<Row[]> {
  return (await client.query<Row & QueryResultRow>(numberPlaceholders(sql), params)).rows;
}
