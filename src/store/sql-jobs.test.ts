import { describe, expect, it } from 'vitest';
import type { AttemptOutcome } from './job-types.js';
import { batchOutcomeStatements, CONSUMER_DELIVERED_SQL, outcomeStatements } from './sql-jobs.js';

function outcome(messageId: string, consumer: string, atMs: number, delivered: boolean): AttemptOutcome {
  return {
    messageId,
    consumer,
    owner: 'me',
    attempt: { atMs, status: delivered ? 200 : 500, durationMs: 3, error: delivered ? null : 'HTTP 500' },
    verdict: delivered ? { state: 'delivered' } : { state: 'retry', nextAttemptAtMs: atMs + 1000 },
  };
}

describe('batchOutcomeStatements', () => {
  it("keeps every outcome's statements in order and sets each consumer's last delivery once, to its latest", () => {
    const outcomes = [
      outcome('m1', 'a', 9, true),
      outcome('m2', 'b', 4, true),
      outcome('m3', 'a', 5, true),
      outcome('m4', 'a', 12, false),
    ];
    const statements = batchOutcomeStatements(outcomes, 20);
    const perMessage = outcomes.flatMap((o) =>
      outcomeStatements(o, 20).filter((s) => s.sql !== CONSUMER_DELIVERED_SQL),
    );
    expect(statements.slice(0, perMessage.length)).toEqual(perMessage);
    expect(statements.slice(perMessage.length)).toEqual([
      { sql: CONSUMER_DELIVERED_SQL, params: [9, 'a'] },
      { sql: CONSUMER_DELIVERED_SQL, params: [4, 'b'] },
    ]);
  });
});
