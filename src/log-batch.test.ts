import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LogBatch, openLogBatches, type LineSink } from './log-batch.js';

const LOGGER_MODULE = fileURLToPath(new URL('../dist/logger.js', import.meta.url));

function recordingSink(): LineSink & { writes: string[]; flushed: number } {
  return {
    writes: [],
    flushed: 0,
    write(chunk: string) {
      this.writes.push(chunk);
    },
    flushSync() {
      this.flushed++;
    },
  };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('LogBatch', () => {
  it("hands one event-loop turn's lines to the sink in one write, in order", async () => {
    const sink = recordingSink();
    const batch = new LogBatch(sink);
    for (let i = 0; i < 100; i++) batch.write(`line ${i}\n`);
    expect(sink.writes).toEqual([]);
    await nextTurn();
    expect(sink.writes).toHaveLength(1);
    expect(sink.writes[0]).toBe(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''));
    batch.write('later\n');
    await nextTurn();
    expect(sink.writes).toEqual([sink.writes[0], 'later\n']);
  });

  it('keeps a batch for the exit flush only while it holds lines', async () => {
    const before = openLogBatches();
    const batches = Array.from({ length: 5 }, () => new LogBatch(recordingSink()));
    expect(openLogBatches()).toBe(before);
    for (const batch of batches) batch.write('x\n');
    expect(openLogBatches()).toBe(before + 5);
    await nextTurn();
    expect(openLogBatches()).toBe(before);
  });

  it('hands over what waits before a synchronous flush, and nothing twice', async () => {
    const sink = recordingSink();
    const batch = new LogBatch(sink);
    batch.write('a\n');
    batch.flushSync();
    expect(sink.writes).toEqual(['a\n']);
    expect(sink.flushed).toBe(1);
    await nextTurn();
    expect(sink.writes).toEqual(['a\n']);
  });

  it('drops the lines of a turn whose sink has ended, instead of throwing from a timer', async () => {
    const batch = new LogBatch({
      write() {
        throw new Error('SonicBoom destroyed');
      },
    });
    batch.write('late\n');
    // Thrown from the timer, the error would fail this run as an unhandled one.
    await nextTurn();
  });

  it.each([
    ['exits at once', 'process.exit(3);', 3],
    ['throws', "throw new Error('boom');", 1],
    ['ends on its own', '', 0],
  ])('writes every line to stdout when a process that logged them %s', (_, end, code) => {
    const lines = 2000;
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createLogger } from ${JSON.stringify(LOGGER_MODULE)};
const logger = createLogger({ level: 'info', format: 'json', stream: process.stdout });
// A turn in which some lines are already handed over and writing, then more that wait.
for (let i = 0; i < ${lines / 2}; i++) logger.info({ i }, 'line ' + i);
await new Promise((resolve) => setImmediate(resolve));
for (let i = ${lines / 2}; i < ${lines}; i++) logger.info({ i }, 'line ' + i);
${end}`,
      ],
      { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
    );
    expect(child.status).toBe(code);
    const seen = child.stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (JSON.parse(line) as { i: number }).i);
    expect(seen).toEqual(Array.from({ length: lines }, (_, i) => i));
  });
});
