import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresOrSkip, queryOnce, type TestDatabase } from '../../test/pg-helpers.js';
import { tempDir } from '../../test/helpers.js';
import { openStore } from './index.js';
import {
  createSchemaMigrationsSql,
  foreignSchemaProblem,
  MIGRATIONS,
  planMigrations,
  schemaColumns,
  type DialectTypes,
} from './migrations.js';
import { containsPattern, numberPlaceholders } from './statements.js';

const DIALECTS: Record<string, DialectTypes> = {
  sqlite: { blob: 'BLOB', bigint: 'INTEGER', serialPrimaryKey: 'INTEGER PRIMARY KEY AUTOINCREMENT' },
  postgres: { blob: 'BYTEA', bigint: 'BIGINT', serialPrimaryKey: 'BIGSERIAL PRIMARY KEY' },
};

describe('migrations', () => {
  it('have strictly increasing ids and unique names', () => {
    const ids = MIGRATIONS.map((m) => m.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(MIGRATIONS.map((m) => m.name)).size).toBe(ids.length);
  });

  it('spell every column type that differs between dialects through DialectTypes', () => {
    // Sentinels for the spellings DialectTypes supplies: any other type must be one both dialects read
    // alike (TEXT, INTEGER), so a raw BYTEA or AUTOINCREMENT in a migration shows up here.
    const sentinels: DialectTypes = {
      blob: 'DIALECT_BLOB',
      bigint: 'DIALECT_BIGINT',
      serialPrimaryKey: 'DIALECT_SERIAL_KEY',
    };
    const portable = new Set(['TEXT', 'INTEGER', 'DIALECT_BLOB', 'DIALECT_BIGINT', 'DIALECT_SERIAL_KEY']);
    const columnTypes: string[] = [];
    const statements = [createSchemaMigrationsSql(sentinels), ...MIGRATIONS.flatMap((m) => m.up(sentinels))];
    for (const statement of statements) {
      const created = /^CREATE TABLE (?:IF NOT EXISTS )?\w+ \(([\s\S]*)\)$/.exec(statement.trim());
      const added = /^ALTER TABLE \w+ ADD COLUMN \w+ (\S+)/.exec(statement.trim());
      if (created !== null) {
        for (const line of created[1]!.split(/,\s*\n/)) {
          const [name = '', type = ''] = line.trim().split(/\s+/);
          if (!['PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK', 'CONSTRAINT'].includes(name)) columnTypes.push(type);
        }
      } else if (added !== null) {
        columnTypes.push(added[1]!);
      }
      expect(statement, 'a type spelled for one dialect').not.toMatch(
        /\b(BLOB|BYTEA|BIGINT|BIGSERIAL|SERIAL|AUTOINCREMENT|BOOLEAN|TIMESTAMPTZ|TIMESTAMP|JSONB?|REAL|VARCHAR)\b/i,
      );
    }
    expect(columnTypes.length).toBeGreaterThan(50);
    expect(columnTypes.filter((type) => !portable.has(type))).toEqual([]);
    expect(columnTypes).toContain('DIALECT_BLOB');
  });

  it('plan pending and unknown ids', () => {
    expect(planMigrations([]).pending).toEqual(MIGRATIONS);
    expect(planMigrations(MIGRATIONS.map((m) => m.id))).toEqual({ pending: [], unknown: [] });
    expect(planMigrations([...MIGRATIONS.map((m) => m.id), 1000, 999]).unknown).toEqual([999, 1000]);
  });
});

const probe = await postgresOrSkip('the migrations compared on PostgreSQL');
let pgDatabase: TestDatabase | undefined;
afterAll(async () => {
  await pgDatabase?.drop();
});

/** A column as both dialects can say it: its kind of value and whether it may be NULL. */
type Described = Record<string, Record<string, string>>;

/** SQLite's declared types and PostgreSQL's data types, by the kind of value they hold. */
const KIND: Record<string, string> = {
  INTEGER: 'integer',
  integer: 'integer',
  bigint: 'integer',
  TEXT: 'text',
  text: 'text',
  BLOB: 'bytes',
  bytea: 'bytes',
};

function kind(type: string): string {
  return KIND[type] ?? `unknown type ${type}`;
}

/** Tables, columns and indexes of a SQLite file that a real store migrated. */
async function migratedSqlite(): Promise<{ columns: Described; indexes: string[] }> {
  const tmp = tempDir();
  try {
    const file = join(tmp.dir, 'inlet.db');
    await (await openStore(`sqlite:${file}`, { mode: 'serve' })).close();
    const db = new Database(file, { readonly: true });
    const columns: Described = {};
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
    for (const table of tables) {
      const rows = db.prepare('SELECT name, type, "notnull", pk FROM pragma_table_info(?)').all(table) as {
        name: string;
        type: string;
        notnull: number;
        pk: number;
      }[];
      columns[table] = Object.fromEntries(
        rows.map((c) => [c.name, `${kind(c.type)}${c.notnull === 1 || c.pk > 0 ? ' not null' : ''}`]),
      );
    }
    const indexes = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
    db.close();
    return { columns, indexes: indexes.sort() };
  } finally {
    tmp.cleanup();
  }
}

/** The same of a fresh PostgreSQL schema that a real store migrated. */
async function migratedPostgres(adminUrl: string): Promise<{ columns: Described; indexes: string[] }> {
  pgDatabase ??= await createTestDatabase(adminUrl, 'inlet_test_migrations');
  const url = await pgDatabase.freshSchema();
  await (await openStore(url, { mode: 'serve' })).close();
  const found = await queryOnce<{
    table_name: string;
    column_name: string;
    data_type: string;
    is_nullable: string;
  }>(
    url,
    `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
     WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`,
  );
  const columns: Described = {};
  for (const c of found.rows) {
    (columns[c.table_name] ??= {})[c.column_name] =
      `${kind(c.data_type)}${c.is_nullable === 'NO' ? ' not null' : ''}`;
  }
  // Indexes the migrations created, not those behind PRIMARY KEY and UNIQUE constraints.
  const indexes = await queryOnce<{ indexname: string }>(
    url,
    `SELECT indexname FROM pg_indexes i WHERE schemaname = current_schema()
     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`,
  );
  return { columns, indexes: indexes.rows.map((r) => r.indexname).sort() };
}

describe.skipIf(!probe.ok)('the migrations on SQLite and PostgreSQL', () => {
  it('make the same tables, columns (kind of value, NULL or not) and indexes', async () => {
    const [sqlite, postgres] = await Promise.all([
      migratedSqlite(),
      migratedPostgres(probe.ok ? probe.adminUrl : ''),
    ]);
    expect(Object.keys(sqlite.columns).sort()).toEqual([...schemaColumns().keys()].sort());
    expect(sqlite.indexes.length).toBeGreaterThan(10);
    expect(postgres).toEqual(sqlite);
  });
});

describe('the schema check', () => {
  /** The tables and columns a real database has after running the given migrations. */
  function migratedTables(upTo: number): Map<string, Set<string>> {
    const db = new Database(':memory:');
    db.exec(createSchemaMigrationsSql(DIALECTS.sqlite!));
    for (const migration of MIGRATIONS.filter((m) => m.id <= upTo)) {
      for (const statement of migration.up(DIALECTS.sqlite!)) db.exec(statement);
    }
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
    const found = new Map(
      tables.map((t) => [
        t,
        new Set(db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(t) as string[]),
      ]),
    );
    db.close();
    return found;
  }

  it('reads from the migrations exactly the tables and columns they create', () => {
    expect(schemaColumns()).toEqual(migratedTables(Infinity));
    expect(schemaColumns(MIGRATIONS.filter((m) => m.id === 1))).toEqual(migratedTables(1));
  });

  it('finds nothing foreign in an empty database, or in one Inlet migrated part of the way', () => {
    expect(foreignSchemaProblem(new Map(), [])).toBeUndefined();
    expect(foreignSchemaProblem(migratedTables(2), [1, 2])).toBeUndefined();
    expect(
      foreignSchemaProblem(
        migratedTables(Infinity),
        MIGRATIONS.map((m) => m.id),
      ),
    ).toBeUndefined();
  });

  it("names a table Inlet did not create, or columns that are not Inlet's", () => {
    const events = new Map([['events', new Set(['id', 'name'])]]);
    expect(foreignSchemaProblem(events, [])).toBe('it has a table "events" that Inlet did not create');
    const altered = migratedTables(Infinity);
    altered.get('events')!.delete('body');
    expect(
      foreignSchemaProblem(
        altered,
        MIGRATIONS.map((m) => m.id),
      ),
    ).toBe('its table "events" has other columns (no body)');
    const oddMigrations = new Map([['schema_migrations', new Set(['version'])]]);
    expect(foreignSchemaProblem(oddMigrations, [])).toMatch(
      /"schema_migrations" has other columns \(no id, name/,
    );
    const early = migratedTables(1);
    early.get('objects')!.add('output_digest');
    expect(foreignSchemaProblem(early, [1])).toBe(
      'its table "objects" has a column "output_digest" that Inlet did not add',
    );
  });
});

describe('statement helpers', () => {
  it('number placeholders for drivers that want $n', () => {
    expect(numberPlaceholders('SELECT a FROM t WHERE b = ? AND c IN (?, ?) LIMIT ?')).toBe(
      'SELECT a FROM t WHERE b = $1 AND c IN ($2, $3) LIMIT $4',
    );
  });

  it('escape LIKE wildcards and the escape character', () => {
    expect(containsPattern('a%b_c\\d')).toBe('%a\\%b\\_c\\\\d%');
  });
});
