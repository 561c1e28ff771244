import type { Command } from 'commander';
import { registerConfigCommand } from './config-command.js';
import type { CliContext } from './context.js';
import { registerDevCommand } from './dev-command.js';
import { registerEmulateCommand } from './emulate-command.js';
import { registerJobsCommands } from './jobs-commands.js';
import { registerListenCommand } from './listen-command.js';
import { registerMigrateCommand } from './migrate-command.js';
import { registerPredictCommand } from './predict-command.js';
import { registerPruneCommand } from './prune-command.js';
import { registerReadCommands } from './read-commands.js';
import { registerReconcileCommand } from './reconcile-command.js';
import { registerSecretCommand } from './secret-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerSignCommand } from './sign-command.js';
import { registerTriggerCommand } from './trigger-command.js';
import { registerVerifyCommand } from './verify-command.js';

/** One place that lists every verb; each lives in its own file. */
export function registerCommands(program: Command, ctx: CliContext): void {
  registerServeCommand(program, ctx);
  registerReadCommands(program, ctx);
  registerJobsCommands(program, ctx);
  registerMigrateCommand(program, ctx);
  registerConfigCommand(program, ctx);
  registerVerifyCommand(program, ctx);
  registerSignCommand(program, ctx);
  registerEmulateCommand(program, ctx);
  registerTriggerCommand(program, ctx);
  registerDevCommand(program, ctx);
  registerPredictCommand(program, ctx);
  registerPruneCommand(program, ctx);
  registerReconcileCommand(program, ctx);
  registerSecretCommand(program, ctx);
  registerListenCommand(program, ctx);
}
