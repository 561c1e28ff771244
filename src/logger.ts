import type { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { LogFormat, LogLevel } from './config.js';
import { REDACTED_HEADERS } from './ingest/headers.js';
import { LogBatch } from './log-batch.js';

/** One logger for the process; secrets and signatures are never passed to it. */
export function createLogger(options: { level: LogLevel; format: LogFormat; stream: Writable }): Logger {
  const base = {
    level: options.level,
    base: undefined,
    redact: {
      paths: REDACTED_HEADERS.map((name) => `headers["${name}"]`),
      censor: '[redacted]',
    },
  };
  if (options.format === 'pretty') {
    return pino(
      base,
      pretty({
        destination: options.stream,
        colorize: false,
        sync: true,
        ignore: 'pid,hostname',
        translateTime: 'SYS:HH:MM:ss.l',
        singleLine: true,
      }),
    );
  }
  // On stdout, lines are written by libuv's thread pool, several at a time under load, instead of one
  // blocking write per line on the event loop, and handed to it once per event-loop turn (LogBatch);
  // what is left is written out when the process exits.
  const destination =
    options.stream === process.stdout
      ? new LogBatch(pino.destination({ dest: 1, sync: false }))
      : options.stream;
  return pino({ ...base, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
