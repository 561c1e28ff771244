import { resolve } from 'node:path';
import { InvalidDatabaseUrlError } from './errors.js';
import type { OpenStoreOptions } from './options.js';
import { maskPostgresUrl, parsePostgresUrl } from './postgres/url.js';
import type { Store } from './types.js';

export {
  DatabaseNotFoundError,
  InvalidDatabaseUrlError,
  StoreOpenError,
  StoreUnavailableError,
  type StoreOpenFailure,
} from './errors.js';
export { OPEN_MODES, type OpenMode, type OpenStoreOptions, type StoreLogger } from './options.js';
export type * from './types.js';

export type DatabaseTarget = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

const SCHEME = /^([a-z][a-z0-9+.-]+):/i;
const SUPPORTED = '`sqlite:PATH`, a file path, or `postgres://…` / `postgresql://…`';

/**
 * `sqlite:PATH` (also `sqlite://PATH`; `sqlite:///abs` is `/abs`), a bare file path, or a
 * `postgres://` / `postgresql://` URL. One-letter schemes are drive letters (`C:\…`), so bare paths.
 */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  const text = url.trim();
  if (text === '') throw new InvalidDatabaseUrlError(`The database URL is empty: use ${SUPPORTED}.`);
  const scheme = SCHEME.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return { dialect: 'sqlite', path: text };
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (parsePostgresUrl(text) === undefined) {
      throw new InvalidDatabaseUrlError(
        `The ${scheme}: database URL does not parse: use postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password).`,
      );
    }
    return { dialect: 'postgres', url: text };
  }
  if (scheme === 'sqlite') {
    let path = text.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '')
      throw new InvalidDatabaseUrlError(`The database URL "${text}" names no file: use sqlite:PATH.`);
    return { dialect: 'sqlite', path };
  }
  // Only the scheme is quoted: the rest may hold a password.
  throw new InvalidDatabaseUrlError(`Unsupported database URL scheme "${scheme}:": use ${SUPPORTED}.`);
}

/** Where a target's data lives, for messages: an absolute file path, or the URL without its password. */
export function describeDatabase(target: DatabaseTarget): string {
  if (target.dialect === 'sqlite') return target.path === ':memory:' ? target.path : resolve(target.path);
  return maskPostgresUrl(target.url) ?? `${target.url.slice(0, target.url.indexOf(':'))}://…`;
}

/**
 * Opens the store a database target (or URL) names. Dialects load lazily, so a PostgreSQL deployment
 * never loads the SQLite addon.
 */
export async function openStore(
  database: DatabaseTarget | string,
  options: OpenStoreOptions,
): Promise<Store> {
  const target = typeof database === 'string' ? parseDatabaseUrl(database) : database;
  switch (target.dialect) {
    case 'sqlite': {
      const { openSqliteStore } = await import('./sqlite/sqlite-store.js');
      return openSqliteStore(target.path, options);
    }
    case 'postgres': {
      const { openPostgresStore } = await import('./postgres/postgres-store.js');
      return openPostgresStore(target.url, options);
    }
  }
}
