import { describe, expect, it } from 'vitest';
import { decideFold, foldFactsOf, type FoldFacts } from './fold.js';
import { KNOWN_STATUSES, statusRank, TERMINAL_STATUSES } from './status.js';
import type { ReplicateObject } from './types.js';

function facts(status: string, over: Partial<Omit<FoldFacts, 'status' | 'rank'>> = {}): FoldFacts {
  return {
    status,
    rank: statusRank(status),
    observedAtSec: 1000,
    logsLength: 0,
    outputKind: 'other',
    outputLength: 0,
    ...over,
  };
}

function object(status: string, extra: Partial<ReplicateObject> = {}): ReplicateObject {
  return { id: 'p1', status, ...extra };
}

describe('foldFactsOf', () => {
  it('ranks statuses: unknown -1, starting 0, processing 1, terminal 2', () => {
    expect(foldFactsOf(object('queued'), 1).rank).toBe(-1);
    expect(foldFactsOf(object('starting'), 1).rank).toBe(0);
    expect(foldFactsOf(object('processing'), 1).rank).toBe(1);
    for (const status of TERMINAL_STATUSES) expect(foldFactsOf(object(status), 1).rank).toBe(2);
    expect(foldFactsOf(object('Succeeded'), 1).rank).toBe(-1);
  });

  it('measures array output in items and string output in characters', () => {
    expect(foldFactsOf(object('processing', { output: ['a', 'b', 'c'] }), 5)).toMatchObject({
      outputKind: 'array',
      outputLength: 3,
      observedAtSec: 5,
    });
    expect(foldFactsOf(object('processing', { output: 'hello' }), 5)).toMatchObject({
      outputKind: 'string',
      outputLength: 5,
    });
    for (const output of [null, undefined, { version: 'v', weights: 'w' }, 42]) {
      expect(foldFactsOf(object('processing', { output }), 5)).toMatchObject({
        outputKind: 'other',
        outputLength: 0,
      });
    }
  });

  it('measures logs when they are a string, else 0', () => {
    expect(foldFactsOf(object('processing', { logs: 'abc\n' }), 1).logsLength).toBe(4);
    expect(foldFactsOf(object('processing', { logs: null }), 1).logsLength).toBe(0);
    expect(foldFactsOf(object('processing', { logs: ['x'] }), 1).logsLength).toBe(0);
  });

  it('keeps the status text as sent', () => {
    expect(foldFactsOf(object('weird-status'), 1).status).toBe('weird-status');
  });
});

describe('decideFold', () => {
  it('applies the first event of an object, whatever its status', () => {
    for (const status of [...KNOWN_STATUSES, 'queued', ''])
      expect(decideFold(undefined, facts(status))).toBe('apply');
  });

  it('applies a higher rank, even when older or with less progress', () => {
    expect(decideFold(facts('starting'), facts('processing'))).toBe('apply');
    expect(
      decideFold(facts('processing', { logsLength: 50 }), facts('succeeded', { observedAtSec: 1 })),
    ).toBe('apply');
    expect(decideFold(facts('starting'), facts('failed'))).toBe('apply');
    expect(decideFold(facts('queued'), facts('starting', { observedAtSec: 1 }))).toBe('apply');
  });

  it('never regresses to a lower rank', () => {
    expect(decideFold(facts('processing'), facts('starting', { observedAtSec: 2000 }))).toBe('ignore');
    expect(decideFold(facts('succeeded'), facts('processing', { observedAtSec: 2000 }))).toBe('ignore');
    expect(decideFold(facts('succeeded'), facts('starting'))).toBe('ignore');
  });

  it('never lets an unknown status replace a known one', () => {
    expect(decideFold(facts('starting'), facts('queued', { observedAtSec: 2000, logsLength: 9 }))).toBe(
      'ignore',
    );
    expect(decideFold(facts('processing'), facts('mystery'))).toBe('ignore');
    expect(decideFold(facts('canceled'), facts('mystery'))).toBe('ignore');
  });

  it('lets unknown statuses replace each other like any equal rank', () => {
    expect(decideFold(facts('queued'), facts('booting', { observedAtSec: 1001 }))).toBe('apply');
    expect(decideFold(facts('queued'), facts('booting', { observedAtSec: 999 }))).toBe('ignore');
  });

  describe('at equal non-terminal rank', () => {
    it('applies an event no older with no less progress', () => {
      const current = facts('processing', { logsLength: 10, outputKind: 'array', outputLength: 2 });
      expect(decideFold(current, { ...current })).toBe('apply');
      expect(decideFold(current, { ...current, observedAtSec: 1001, logsLength: 20, outputLength: 3 })).toBe(
        'apply',
      );
    });

    it('ignores an older event, even with more progress', () => {
      const current = facts('processing', { observedAtSec: 1000, logsLength: 10 });
      expect(decideFold(current, facts('processing', { observedAtSec: 999, logsLength: 100 }))).toBe(
        'ignore',
      );
    });

    it('ignores shorter logs', () => {
      const current = facts('processing', { logsLength: 10 });
      expect(decideFold(current, facts('processing', { observedAtSec: 1005, logsLength: 9 }))).toBe('ignore');
    });

    it('ignores fewer array items and shorter strings', () => {
      expect(
        decideFold(
          facts('processing', { outputKind: 'array', outputLength: 3 }),
          facts('processing', { outputKind: 'array', outputLength: 2, observedAtSec: 1005 }),
        ),
      ).toBe('ignore');
      expect(
        decideFold(
          facts('processing', { outputKind: 'string', outputLength: 30 }),
          facts('processing', { outputKind: 'string', outputLength: 29, observedAtSec: 1005 }),
        ),
      ).toBe('ignore');
    });

    it('does not compare outputs of different kinds', () => {
      expect(
        decideFold(
          facts('processing', { outputKind: 'array', outputLength: 9 }),
          facts('processing', { outputKind: 'string', outputLength: 1 }),
        ),
      ).toBe('apply');
      expect(
        decideFold(
          facts('processing', { outputKind: 'string', outputLength: 9 }),
          facts('processing', { outputKind: 'other', outputLength: 0 }),
        ),
      ).toBe('apply');
    });

    it('applies at rank starting too', () => {
      expect(decideFold(facts('starting'), facts('starting', { observedAtSec: 1001 }))).toBe('apply');
      expect(decideFold(facts('starting', { logsLength: 3 }), facts('starting'))).toBe('ignore');
    });
  });

  describe('once terminal', () => {
    it('keeps the first terminal status: a different terminal status is a conflict', () => {
      for (const first of TERMINAL_STATUSES) {
        for (const next of TERMINAL_STATUSES) {
          const expected = first === next ? 'ignore' : 'conflict';
          expect(decideFold(facts(first), facts(next, { observedAtSec: 2000, logsLength: 99 }))).toBe(
            expected,
          );
        }
      }
    });

    it('does not treat a repeat of the same terminal status as a conflict, even with more progress', () => {
      expect(
        decideFold(
          facts('succeeded', { outputKind: 'array', outputLength: 1 }),
          facts('succeeded', { outputKind: 'array', outputLength: 5, observedAtSec: 5000 }),
        ),
      ).toBe('ignore');
    });

    it('treats aborted as terminal', () => {
      expect(decideFold(facts('processing'), facts('aborted'))).toBe('apply');
      expect(decideFold(facts('aborted'), facts('succeeded'))).toBe('conflict');
      expect(decideFold(facts('aborted'), facts('processing'))).toBe('ignore');
    });
  });
});
