import { parseDatabaseSetting, type ServeFlags } from '../config.js';
import { DatabaseNotFoundError, StoreOpenError, StoreUnavailableError } from '../store/errors.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import { type CliContext, CommandFailedError, UsageError } from './context.js';

/**
 * Opens the database a CLI verb names (`--database`, `DATABASE_URL`), its errors in the CLI's terms
 * (exit 2 for what a setting fixes, 1 otherwise). `read` and `write` never create a database (CONTRACT
 * §6): `write` checks it exists read-only first, then opens it to write; `create` is `serve`'s open.
 */
export async function openCliStore(
  flags: ServeFlags,
  ctx: CliContext,
  access: 'read' | 'write' | 'create',
): Promise<Store> {
  const database = parseDatabaseSetting(flags, ctx.env);
  try {
    if (access === 'create') return await openStore(database, { mode: 'serve' });
    const store = await openStore(database, { mode: 'read' });
    if (access === 'read') return store;
    await store.close();
    // A short-lived verb, perhaps beside a running serve: no statistics refresh holding its writer.
    return await openStore(database, { mode: 'serve', optimizeOnClose: false });
  } catch (error) {
    if (error instanceof DatabaseNotFoundError) throw new UsageError(error.message);
    if (error instanceof StoreOpenError) {
      throw error.failure === 'configuration'
        ? new UsageError(error.message)
        : new CommandFailedError(error.message);
    }
    if (error instanceof StoreUnavailableError) {
      throw new CommandFailedError(
        `Cannot ${access === 'read' ? 'read' : 'open'} the database: ${error.message}`,
      );
    }
    throw error;
  }
}
