import type Database from 'better-sqlite3';
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
import { createSqliteExecutor } from './sqlite-recover.js';
import {
  ADVANCE_POSITION_SQL,
  consumerFromRow,
  COUNT_LEASED_SQL,
  DISABLE_CONSUMER_SQL,
  ENABLE_CONSUMER_SQL,
  GET_CONSUMER_SQL,
  INSERT_CONSUMER_SQL,
  INSERT_MESSAGE_SQL,
  insertConsumerParams,
  insertMessageParams,
  leaseDueSql,
  messageFromRow,
  MOVE_POSITION_SQL,
  batchOutcomeStatements,
  releaseSql,
  REQUEUE_MESSAGE_SQL,
  SKIP_PENDING_SQL,
  UPDATE_CONSUMER_SQL,
  updateConsumerParams,
  type ConsumerRow,
  type MessageRow,
} from '../sql-jobs.js';
import { toNumber, type SqlValue } from '../statements.js';

/** How the job store reaches the store's one connection. */
export interface SqliteAccess {
  readonly db: Database.Database;
  /** A read on the connection, errors mapped to store errors. */
  read<T>(doing: string, work: () => T): T;
  /**
   * A write transaction on the store's write path, not waiting for its WAL sync: a job row lost to a
   * power cut only repeats a message (at least once), and the next ingest sync covers it anyway.
   */
  write<T>(doing: string, work: () => T): Promise<T>;
}

type Statement = Database.Statement<SqlValue[]>;

/**
 * SQLite has one writer and each transaction runs to its end on the event loop, so a claim needs no
 * row locks: reading the due messages and leasing them is one synchronous transaction.
 */
export class SqliteJobs extends SqlJobStore implements JobStore {
  readonly #access: SqliteAccess;
  readonly #statements = new Map<string, Statement>();

  constructor(access: SqliteAccess) {
    super(createSqliteExecutor(access));
    this.#access = access;
  }

  async upsertConsumer(consumer: ConsumerUpsert): Promise<ConsumerRecord> {
    return this.#access.write('saving a consumer', () =>
      this.#db
        .transaction(() => {
          const existing = this.#get<ConsumerRow>(GET_CONSUMER_SQL, [consumer.name]);
          if (existing === undefined) {
            const secret = consumer.secret ?? consumer.generateSecret?.() ?? null;
            this.#run(INSERT_CONSUMER_SQL, insertConsumerParams(consumer, secret));
          } else {
            this.#run(UPDATE_CONSUMER_SQL, updateConsumerParams(consumer));
          }
          return consumerFromRow(this.#get<ConsumerRow>(GET_CONSUMER_SQL, [consumer.name])!);
        })
        .immediate(),
    );
  }

  async fanOut(
    consumer: string,
    fromPosition: number,
    toPosition: number,
    messages: readonly NewMessage[],
    nowMs: number,
  ): Promise<boolean> {
    return this.#access.write('fanning out transitions', () =>
      this.#db
        .transaction(() => {
          if (this.#run(ADVANCE_POSITION_SQL, [toPosition, consumer, fromPosition]).changes === 0)
            return false;
          for (const m of messages) this.#run(INSERT_MESSAGE_SQL, insertMessageParams(consumer, m, nowMs));
          return true;
        })
        .immediate(),
    );
  }

  async claim(request: ClaimRequest): Promise<MessageRecord[]> {
    if (request.limit <= 0) return [];
    return this.#access.write('claiming messages', () =>
      this.#db.transaction(() => this.#claim(request)).immediate(),
    );
  }

  async complete(
    outcomes: readonly AttemptOutcome[],
    nowMs: number,
    claims: readonly ClaimRequest[] = [],
  ): Promise<MessageRecord[][]> {
    if (outcomes.length === 0 && claims.length === 0) return [];
    return this.#access.write('recording attempts', () =>
      this.#db
        .transaction(() => {
          for (const s of batchOutcomeStatements(outcomes, nowMs)) this.#run(s.sql, s.params);
          return claims.map((request) => this.#claim(request));
        })
        .immediate(),
    );
  }

  /** Inside a write transaction: one writer, so reading the due messages and leasing them is atomic. */
  #claim(request: ClaimRequest): MessageRecord[] {
    if (request.limit <= 0) return [];
    const consumer = this.#get<ConsumerRow>(GET_CONSUMER_SQL, [request.consumer]);
    if (consumer === undefined || toNumber(consumer.enabled) === 0) return [];
    const leased = toNumber(
      this.#get<{ n: unknown }>(COUNT_LEASED_SQL, [request.consumer, request.nowMs])?.n ?? 0,
    );
    const limit = Math.min(request.limit, request.maxInFlight - leased);
    if (limit <= 0) return [];
    return this.#all<MessageRow>(leaseDueSql(request.ordered), [
      request.owner,
      request.nowMs + request.leaseMs,
      request.consumer,
      request.nowMs,
      request.nowMs,
      limit,
    ])
      .map(messageFromRow)
      .sort((a, b) => a.transitionSeq - b.transitionSeq);
  }

  async release(messageIds: readonly string[], owner: string): Promise<void> {
    if (messageIds.length === 0) return;
    await this.#access.write('releasing leases', () => {
      this.#run(releaseSql(messageIds.length), [owner, ...messageIds]);
    });
  }

  async setConsumerEnabled(
    name: string,
    change: { enabled: boolean; reason?: string; position?: number; nowMs: number },
  ): Promise<boolean> {
    return this.#access.write('enabling a consumer', () =>
      this.#db
        .transaction(() => {
          const changed = change.enabled
            ? this.#run(ENABLE_CONSUMER_SQL, [change.nowMs, name]).changes
            : this.#run(DISABLE_CONSUMER_SQL, [
                change.reason ?? 'disabled by an operator',
                change.nowMs,
                name,
              ]).changes;
          if (changed === 0) return false;
          if (change.position !== undefined) {
            this.#run(MOVE_POSITION_SQL, [change.position, name]);
            this.#run(SKIP_PENDING_SQL, [name]);
          }
          return true;
        })
        .immediate(),
    );
  }

  async requeue(consumer: string, messages: readonly NewMessage[], nowMs: number): Promise<number> {
    if (messages.length === 0) return 0;
    return this.#access.write('replaying messages', () =>
      this.#db
        .transaction(() => {
          for (const m of messages) {
            if (this.#run(INSERT_MESSAGE_SQL, insertMessageParams(consumer, m, nowMs)).changes === 0) {
              this.#run(REQUEUE_MESSAGE_SQL, [nowMs, m.id]);
            }
          }
          return messages.length;
        })
        .immediate(),
    );
  }

  async watchTransitions(): Promise<() => Promise<void>> {
    // One process writes a SQLite database: its commit batcher wakes the runner directly.
    return async () => undefined;
  }

  get #db(): Database.Database {
    return this.#access.db;
  }

  #prepare(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      if (this.#statements.size >= 128) this.#statements.clear();
      statement = this.#db.prepare<SqlValue[]>(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #run(sql: string, params: SqlValue[]): Database.RunResult {
    return this.#prepare(sql).run(...params);
  }

  #get<Row>(sql: string, params: SqlValue[]): Row | undefined {
    return this.#prepare(sql).get(...params) as Row | undefined;
  }

  #all<Row>(sql: string, params: SqlValue[]): Row[] {
    return this.#prepare(sql).all(...params) as Row[];
  }
}
