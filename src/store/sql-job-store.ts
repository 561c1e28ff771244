import type {
  ConsumerKind,
  ConsumerRecord,
  ConsumerCounts,
  ConsumerStats,
  JobStore,
  MessageDetailRecord,
  MessageQuery,
  MessageRecord,
  RetryResult,
} from './job-types.js';
import {
  attemptFromRow,
  CONSUMER_COUNTS_SQL,
  CONSUMER_STATS_SQL,
  consumerFromRow,
  DELETE_CONSUMER_SQL,
  earliest,
  GET_CONSUMER_SQL,
  GET_MESSAGE_SQL,
  LIST_ATTEMPTS_SQL,
  LIST_CONSUMERS_OF_KIND_SQL,
  LIST_CONSUMERS_SQL,
  listMessagesQuery,
  messageFromRow,
  NEXT_DUE_SQL,
  RETRY_DEAD_SQL,
  retryAllDeadQuery,
  countsFromRow,
  statsFromRow,
  type AttemptRow,
  type ConsumerRow,
  type MessageRow,
  type CountsRow,
  type StatsRow,
} from './sql-jobs.js';
import type { SqlExecutor } from './sql-recover.js';
import { toPage } from './statements.js';
import type { Page } from './types.js';

/** What a dialect's job store adds to `SqlJobStore`. */
type DialectJobMethods = Exclude<keyof JobStore, keyof SqlJobStore>;

/**
 * The job store's reads and its plain writes, the same SQL on every dialect (through the executor
 * recover uses too). A dialect's class extends it and implements `JobStore`, adding the transactions
 * that lock or branch its own way (claims, fan-out, attempts, consumer changes, replays, release) and
 * how other processes are woken.
 */
export abstract class SqlJobStore implements Omit<JobStore, DialectJobMethods> {
  readonly #sql: SqlExecutor;

  constructor(executor: SqlExecutor) {
    this.#sql = executor;
  }

  async getConsumer(name: string): Promise<ConsumerRecord | undefined> {
    const [row] = await this.#sql.all<ConsumerRow>('reading a consumer', {
      sql: GET_CONSUMER_SQL,
      params: [name],
    });
    return row === undefined ? undefined : consumerFromRow(row);
  }

  async listConsumers(kind?: ConsumerKind): Promise<ConsumerRecord[]> {
    const rows = await this.#sql.all<ConsumerRow>(
      'listing consumers',
      kind === undefined
        ? { sql: LIST_CONSUMERS_SQL, params: [] }
        : { sql: LIST_CONSUMERS_OF_KIND_SQL, params: [kind] },
    );
    return rows.map(consumerFromRow);
  }

  async consumerCounts(name: string): Promise<ConsumerCounts> {
    const [row] = await this.#sql.all<CountsRow>('reading consumer counts', {
      sql: CONSUMER_COUNTS_SQL,
      params: [name, name],
    });
    return countsFromRow(row);
  }

  async consumerStats(name: string): Promise<ConsumerStats> {
    const [row] = await this.#sql.all<StatsRow>('reading consumer stats', {
      sql: CONSUMER_STATS_SQL,
      params: [name, name, name],
    });
    return statsFromRow(row);
  }

  async nextDueAtMs(consumer: string): Promise<number | undefined> {
    const [row] = await this.#sql.all<{ due: unknown; lease_end: unknown }>('reading the next due message', {
      sql: NEXT_DUE_SQL,
      params: [consumer, consumer],
    });
    return earliest(row?.due, row?.lease_end);
  }

  async deleteConsumer(name: string): Promise<boolean> {
    const counts = await this.#sql.write(
      'deleting a consumer',
      DELETE_CONSUMER_SQL.map((sql) => ({ sql, params: [name] })),
    );
    return (counts.at(-1) ?? 0) > 0;
  }

  async listMessages(query: MessageQuery): Promise<Page<MessageRecord>> {
    const rows = await this.#sql.all<MessageRow>('listing messages', listMessagesQuery(query));
    return toPage(rows, query.limit, messageFromRow);
  }

  async getMessage(id: string): Promise<MessageDetailRecord | undefined> {
    const [row] = await this.#sql.all<MessageRow>('reading a message', {
      sql: GET_MESSAGE_SQL,
      params: [id],
    });
    if (row === undefined) return undefined;
    const attempts = await this.#sql.all<AttemptRow>('reading attempts', {
      sql: LIST_ATTEMPTS_SQL,
      params: [id],
    });
    return { ...messageFromRow(row), attemptLog: attempts.map(attemptFromRow) };
  }

  async retryMessage(id: string, nowMs: number): Promise<RetryResult> {
    const [retried] = await this.#sql.write('retrying a message', [
      { sql: RETRY_DEAD_SQL, params: [nowMs, id] },
    ]);
    if ((retried ?? 0) > 0) return 'retried';
    const found = await this.#sql.all('retrying a message', { sql: GET_MESSAGE_SQL, params: [id] });
    return found.length === 0 ? 'not_found' : 'not_dead';
  }

  async retryDead(consumer: string | undefined, nowMs: number): Promise<number> {
    const [count] = await this.#sql.write('retrying dead messages', [retryAllDeadQuery(consumer, nowMs)]);
    return count ?? 0;
  }
}
