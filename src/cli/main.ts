import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config.js';
import {
  type CliContext,
  CommandFailedError,
  EXIT_CHECK_FAILED,
  EXIT_USAGE,
  UsageError,
  println,
} from './context.js';
import { registerCommands } from './commands.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function buildProgram(ctx: CliContext): Command {
  const program = new Command('inlet')
    .description(
      'Receive Replicate webhooks: verified, durable, deduplicated, folded into one state per prediction.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
    });
  registerCommands(program, ctx);
  // Every command, nested ones too, throws instead of exiting so runCli maps codes (usage = 2).
  const applyExitOverride = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(applyExitOverride);
  };
  applyExitOverride(program);
  return program;
}

/** Runs the CLI and resolves its exit code; only usage errors and failures become codes, never throws. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  let exitCode = 0;
  const scoped: CliContext = { ...ctx, setExitCode: (code) => (exitCode = code) };
  const program = buildProgram(scoped);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.exitCode === 0
      ) {
        return 0;
      }
      // 'commander.help' is help shown because no command was given: a usage error.
      return EXIT_USAGE;
    }
    if (error instanceof CommandFailedError) {
      println(ctx.stderr, `inlet: ${error.message}`);
      return EXIT_CHECK_FAILED;
    }
    if (error instanceof UsageError || error instanceof ConfigError) {
      println(ctx.stderr, `inlet: ${error.message}`);
      return EXIT_USAGE;
    }
    println(ctx.stderr, `inlet: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  }
}
