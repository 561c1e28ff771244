import type { Command } from 'commander';
import { parseDatabaseSetting, settingOption, type ServeFlags } from '../config.js';
import { StoreUnavailableError } from '../store/errors.js';
import { describeDatabase, openStore } from '../store/index.js';
import { MIGRATIONS } from '../store/migrations.js';
import type { StoreLogger } from '../store/options.js';
import { type CliContext, EXIT_CHECK_FAILED, EXIT_OK, println } from './context.js';

export function registerMigrateCommand(program: Command, ctx: CliContext): void {
  program
    .command('migrate')
    .description(
      'create or upgrade the database schema, then exit (serve does this too; run it alone before a rolling deploy)',
    )
    .option(...settingOption('databaseUrl', 'the database to migrate'))
    .action(async (flags: ServeFlags) => {
      ctx.setExitCode(await runMigrate(flags, ctx));
    });
}

/** Runs the pending migrations and prints what it applied; answers the exit code. */
async function runMigrate(flags: ServeFlags, ctx: CliContext): Promise<number> {
  const database = parseDatabaseSetting(flags, ctx.env);
  const location = describeDatabase(database);

  const applied: number[] = [];
  const logger: StoreLogger = {
    info(obj) {
      const migrations = (obj as { migrations?: unknown }).migrations;
      if (Array.isArray(migrations))
        applied.push(...migrations.filter((id): id is number => typeof id === 'number'));
    },
    warn() {},
  };
  try {
    // Opening for serve is what migrates: under a lock, so running instances and other migrators are safe.
    const store = await openStore(database, { mode: 'serve', logger });
    await store.close();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const hint =
      error instanceof StoreUnavailableError ? ' Check that the database answers, then run it again.' : '';
    println(ctx.stderr, `inlet: could not migrate ${location}: ${reason}${hint}`);
    return EXIT_CHECK_FAILED;
  }

  const latest = MIGRATIONS.at(-1);
  const version = latest === undefined ? 'none' : `${latest.id} (${latest.name})`;
  if (applied.length === 0) {
    println(ctx.stdout, `Nothing to migrate: ${location} is up to date at schema version ${version}.`);
    return EXIT_OK;
  }
  for (const id of applied) {
    const migration = MIGRATIONS.find((m) => m.id === id);
    println(ctx.stdout, `Applied migration ${id}${migration ? ` (${migration.name})` : ''}`);
  }
  println(ctx.stdout, `Migrated ${location} to schema version ${version}.`);
  return EXIT_OK;
}
