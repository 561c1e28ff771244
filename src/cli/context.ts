import type { Readable, Writable } from 'node:stream';
import type { Env } from '../config.js';

/** What a command may touch: passed in, so commands run in tests without a real terminal. */
export interface CliContext {
  readonly env: Env;
  readonly stdin: Readable;
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable;
  /** Resolves the exit code of a long-running command (serve) once it has stopped. */
  setExitCode(code: number): void;
}

export const EXIT_OK = 0;
export const EXIT_CHECK_FAILED = 1;
export const EXIT_USAGE = 2;

/** Something outside the command failed (a database that does not answer): exit 1 with a plain message. */
export class CommandFailedError extends Error {
  override readonly name = 'CommandFailedError';
}

/** A usage or configuration error: exit 2 with a message that says what to change. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function println(stream: Writable, line = ''): void {
  stream.write(`${line}\n`);
}

/** Reads a body from FILE, or stdin for `-` or no file. */
export async function readBodyArg(file: string | undefined, ctx: CliContext): Promise<Buffer> {
  if (file === undefined || file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.stdin)
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    return Buffer.concat(chunks);
  }
  const { readFile } = await import('node:fs/promises');
  try {
    return await readFile(file);
  } catch (error) {
    throw new UsageError(`Cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
  }
}
