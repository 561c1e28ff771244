import { describe, expect, it } from 'vitest';
import { heapGrowthFlag, HEAP_GROWING_PERCENT } from './heap-growth.js';

describe('heapGrowthFlag', () => {
  it.each(['serve', 'dev', 'worker'])('sets a fixed growing factor for `inlet %s`', (verb) => {
    expect(heapGrowthFlag([verb, '--port', '5000'], [])).toBe(
      `--heap-growing-percent=${HEAP_GROWING_PERCENT}`,
    );
  });

  it.each([[[]], [['sign', '--secret', 'x']], [['--version']], [['events', 'serve']]])(
    'leaves V8 alone for a short command: %j',
    (args) => {
      expect(heapGrowthFlag(args, [])).toBeUndefined();
    },
  );

  it.each([['--heap-growing-percent=0'], ['--heap_growing_percent=30'], ['--heap-growing-percent']])(
    'keeps what the operator gave Node (%s)',
    (flag) => {
      expect(heapGrowthFlag(['serve'], ['--enable-source-maps', flag])).toBeUndefined();
    },
  );
});
