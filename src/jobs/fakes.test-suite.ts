import type {
  TransitionLog,
  TransitionQuery,
  TransitionRecord,
  TransitionType,
} from '../store/transition-types.js';
import type { Clock } from '../clock.js';

/** The transitions log as the runner reads it, kept in memory. */
export class FakeTransitionLog implements TransitionLog {
  readonly rows: TransitionRecord[] = [];

  append(objectId: string, type: TransitionType, over: Partial<TransitionRecord> = {}): TransitionRecord {
    const seq = this.rows.length + 1;
    const status = type.endsWith('.completed') ? 'succeeded' : 'processing';
    const row: TransitionRecord = {
      seq,
      id: `tr_${seq}`,
      type,
      objectId,
      kind: 'prediction',
      model: 'acme/painter',
      status,
      eventKey: `evt_${seq}`,
      recordedAtMs: 1_000_000 + seq,
      eventCount: seq,
      firstReceivedAtMs: 1_000_000,
      lastReceivedAtMs: 1_000_000 + seq,
      body: Buffer.from(JSON.stringify({ id: objectId, status, model: 'acme/painter' })),
      ...over,
    };
    this.rows.push(row);
    return row;
  }

  async listTransitions(query: TransitionQuery): Promise<TransitionRecord[]> {
    return this.rows
      .filter(
        (r) =>
          r.seq > query.afterSeq &&
          (query.objectIds === undefined || query.objectIds.includes(r.objectId)) &&
          (query.sinceMs === undefined || r.recordedAtMs >= query.sinceMs) &&
          (query.untilMs === undefined || r.recordedAtMs <= query.untilMs),
      )
      .slice(0, query.limit);
  }

  async lastTransitionSeq(): Promise<number> {
    return this.rows.at(-1)?.seq ?? 0;
  }

  async getTransition(id: string): Promise<TransitionRecord | undefined> {
    return this.rows.find((r) => r.id === id);
  }
}

export class FakeClock implements Clock {
  constructor(public nowMs = 1_700_000_000_000) {}
  now(): number {
    return this.nowMs;
  }
  advance(ms: number): void {
    this.nowMs += ms;
  }
  setTimeout(): unknown {
    return undefined;
  }
  clearTimeout(): void {}
}
