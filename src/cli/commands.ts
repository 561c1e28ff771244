import type { Command } from 'commander';
import type { CliContext } from './context.js';

/** One place that lists every verb; each lives in its own file. */
export function registerCommands(program: Command, ctx: CliContext): void {
  void program;
  void ctx;
}
