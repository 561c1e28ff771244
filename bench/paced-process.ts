import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startPaced, type PacedOptions, type PacedResult, type PacedRun } from './paced.js';

/**
 * The paced sender in a process of its own. In the bench's process its garbage collections (a full
 * one every 1–1.6 s in the paced window, 2–7 ms each, traced with `--trace-gc`) held back sends and
 * answers alike and were charged to the server; a small process holds little more than the requests.
 */
type FromSender =
  { type: 'measuring' } | { type: 'done'; result: PacedResult } | { type: 'failed'; error: string };
type ToSender = Omit<PacedOptions, 'url'> & { url: string };

export function startPacedProcess(options: PacedOptions): PacedRun {
  const child = fork(fileURLToPath(import.meta.url), ['--sender'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let opened: () => void;
  let failed: (error: Error) => void;
  // A sender that fails before the window opens fails both, so the bench never waits on the first.
  const measuring = new Promise<void>((resolve, reject) => ((opened = resolve), (failed = reject)));
  const done = new Promise<PacedResult>((resolve, reject) => {
    const fail = (error: Error) => {
      failed(error);
      reject(error);
    };
    child.on('message', (message: FromSender) => {
      if (message.type === 'measuring') opened();
      else if (message.type === 'done') resolve(message.result);
      else fail(new Error(`paced sender: ${message.error}`));
    });
    child.once('exit', (code) => fail(new Error(`paced sender exited with ${code}`)));
    child.once('error', fail);
  }).finally(() => child.connected && child.disconnect());
  // Both are the caller's to await; these only keep whichever it has not reached from going unhandled.
  measuring.catch(() => undefined);
  done.catch(() => undefined);
  const toSender: ToSender = { ...options, url: options.url.href };
  child.send(toSender);
  return { measuring, done };
}

if (process.argv[2] === '--sender') {
  process.once('message', (message: ToSender) => {
    const run = startPaced({ ...message, url: new URL(message.url) });
    void run.measuring.then(() => process.send?.({ type: 'measuring' } satisfies FromSender));
    run.done.then(
      (result) => process.send?.({ type: 'done', result } satisfies FromSender),
      (error: unknown) => process.send?.({ type: 'failed', error: String(error) } satisfies FromSender),
    );
  });
}
