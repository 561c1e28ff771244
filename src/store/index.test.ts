import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidDatabaseUrlError } from './errors.js';
import { describeDatabase, openStore, parseDatabaseUrl } from './index.js';

describe('parseDatabaseUrl', () => {
  it.each([
    ['sqlite:./data/inlet.db', './data/inlet.db'],
    ['sqlite:/var/lib/inlet.db', '/var/lib/inlet.db'],
    ['sqlite://data/inlet.db', 'data/inlet.db'],
    ['sqlite:///var/lib/inlet.db', '/var/lib/inlet.db'],
    ['SQLITE:x.db', 'x.db'],
    ['sqlite::memory:', ':memory:'],
    ['./data/inlet.db', './data/inlet.db'],
    ['inlet.db', 'inlet.db'],
    ['/abs/inlet.db', '/abs/inlet.db'],
    ['C:\\data\\inlet.db', 'C:\\data\\inlet.db'],
    ['  sqlite:padded.db  ', 'padded.db'],
  ])('%s is the SQLite file %s', (url, path) => {
    expect(parseDatabaseUrl(url)).toEqual({ dialect: 'sqlite', path });
  });

  it.each([
    'postgres://u:p@127.0.0.1:5432/db',
    'postgresql://127.0.0.1/db?sslmode=disable',
    'POSTGRES://h/db',
    // Unix sockets, as libpq and the pg driver spell them.
    'postgresql://postgres@/inlet?host=/var/run/postgresql',
    'postgres:///inlet?host=/var/run/postgresql&user=postgres',
    'postgres://postgres@%2Fvar%2Frun%2Fpostgresql/inlet',
  ])('%s is PostgreSQL', (url) => {
    expect(parseDatabaseUrl(url)).toEqual({ dialect: 'postgres', url });
  });

  it('rejects other schemes naming only the scheme, never the rest', () => {
    expect(() => parseDatabaseUrl('mysql://root:hunter2@db/x')).toThrow(InvalidDatabaseUrlError);
    expect(() => parseDatabaseUrl('mysql://root:hunter2@db/x')).toThrow(
      /"mysql:".*sqlite:PATH.*postgres:\/\//,
    );
    expect(() => parseDatabaseUrl('mysql://root:hunter2@db/x')).not.toThrow(/hunter2/);
  });

  it('rejects an empty URL or an empty sqlite path', () => {
    for (const url of ['', '   ', 'sqlite:', 'sqlite://']) {
      expect(() => parseDatabaseUrl(url)).toThrow(InvalidDatabaseUrlError);
    }
  });
});

describe('openStore', () => {
  it('rejects a PostgreSQL URL that does not parse, without echoing it', async () => {
    await expect(openStore('postgres://u:hunter2@h:port/x', { mode: 'serve' })).rejects.toThrow(
      InvalidDatabaseUrlError,
    );
    expect(() => parseDatabaseUrl('postgres://u:hunter2@h:port/x')).not.toThrow(/hunter2/);
  });

  it('rejects an unsupported URL before touching anything', async () => {
    await expect(openStore('mysql://x', { mode: 'read' })).rejects.toBeInstanceOf(InvalidDatabaseUrlError);
  });
});

describe('describeDatabase', () => {
  it('names SQLite files by absolute path', () => {
    expect(describeDatabase({ dialect: 'sqlite', path: 'data/x.db' })).toBe(join(process.cwd(), 'data/x.db'));
    expect(describeDatabase({ dialect: 'sqlite', path: ':memory:' })).toBe(':memory:');
  });

  it('never shows a PostgreSQL password', () => {
    const shown = describeDatabase({
      dialect: 'postgres',
      url: 'postgres://inlet:s3cret@db.local:5432/inlet',
    });
    expect(shown).toBe('postgres://inlet:***@db.local:5432/inlet');
    expect(
      describeDatabase({ dialect: 'postgres', url: 'postgresql://inlet:s3cret@/inlet?host=/run/postgresql' }),
    ).toBe('postgresql://inlet:***@/inlet?host=/run/postgresql');
    expect(describeDatabase({ dialect: 'postgres', url: 'postgres://db.local/inlet' })).toBe(
      'postgres://db.local/inlet',
    );
    expect(describeDatabase({ dialect: 'postgres', url: 'postgres://in:s3cret@[bad' })).not.toContain(
      's3cret',
    );
  });
});
