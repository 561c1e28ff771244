import { writeSync } from 'node:fs';

/** What a batch of log lines is handed to: pino's asynchronous stdout destination (sonic-boom). */
export interface LineSink {
  /** The file descriptor it writes to: at exit, the lines still waiting are written to it directly. */
  readonly fd?: number;
  write(chunk: string): unknown;
  flushSync?(): void;
}

/**
 * The batches holding lines not yet handed over: the one `exit` listener writes them out. A batch is
 * here only between its first line of a turn and the hand-over, so loggers made and dropped (tests,
 * an embedding application) are not kept alive by it.
 */
const open = new Set<LogBatch>();
let exitListener = false;

/** How many batches hold lines not yet handed over (for tests). */
export function openLogBatches(): number {
  return open.size;
}

/**
 * Joins the log lines of one event-loop turn and hands them to `sink` in one write. Pino's
 * asynchronous destination (sonic-boom) appends each line to its buffer while a write is in flight
 * and measures that buffer's UTF-8 length on every line, which makes V8 copy the whole buffer each
 * time: under load every log line cost a copy of up to 16 KiB (≈ 18 % of everything the webhook
 * path allocated, measured with a sampling heap profile of the bench). One write a turn measures and
 * copies each line once.
 *
 * Nothing is held past the turn. A process that exits before the turn ends still writes its last
 * lines, in order: an `exit` listener flushes the sink synchronously, then writes what waits here
 * straight to its file descriptor (handed to the sink, the lines would start an asynchronous write
 * that the exiting process never finishes).
 */
export class LogBatch {
  readonly #sink: LineSink;
  #lines: string[] = [];
  #scheduled = false;

  constructor(sink: LineSink) {
    this.#sink = sink;
    if (!exitListener) {
      exitListener = true;
      // Before pino's own exit flush, which would otherwise run first and find nothing of these. A batch
      // with nothing waiting needs nothing here: pino flushes its sink at exit itself.
      process.prependListener('exit', () => {
        for (const batch of open) batch.flushSync();
      });
    }
  }

  write(line: string): boolean {
    this.#lines.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      open.add(this);
      setImmediate(() => this.#handOver());
    }
    return true;
  }

  #handOver(): void {
    this.#scheduled = false;
    open.delete(this);
    if (this.#lines.length === 0) return;
    const text = this.#lines.join('');
    this.#lines = [];
    try {
      this.#sink.write(text);
    } catch {
      // A sink ended already (pino ends its own at `beforeExit`): the lines are dropped, as pino drops
      // them after a broken pipe, rather than thrown from a timer where nothing can catch them.
    }
  }

  /** Writes out the sink's lines, then these, before returning (at exit). */
  flushSync(): void {
    const fd = this.#sink.fd;
    if (fd === undefined || fd < 0) this.#handOver();
    try {
      this.#sink.flushSync?.();
    } catch {
      // A sink closed already: nothing of its own is waiting.
    }
    if (this.#lines.length === 0 || fd === undefined || fd < 0) return;
    const text = Buffer.from(this.#lines.join(''));
    this.#lines = [];
    writeAllSync(fd, text);
  }
}

/** Every byte of `data` to `fd`, waiting out a full non-blocking pipe for up to a second. */
function writeAllSync(fd: number, data: Buffer): void {
  const waitUntil = Date.now() + 1000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > waitUntil) return;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}
