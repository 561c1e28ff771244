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
  const measuring = new Promise<void>((resolve) => (opened = resolve));
  const done = new Promise<PacedResult>((resolve, reject) => {
    child.on('message', (message: FromSender) => {
      if (message.type === 'measuring') opened();
      else if (message.type === 'done') resolve(message.result);
      else reject(new Error(`paced sender: ${message.error}`));
    });
    child.once('exit', (code) => reject(new Error(`paced sender exited with ${code} before its result`)));
    child.once('error', reject);
  }).finally(() => child.connected && child.disconnect());
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
