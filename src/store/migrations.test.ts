import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
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

  it('differ between dialects only in the type spellings', () => {
    for (const migration of MIGRATIONS) {
      const [sqlite, postgres] = [migration.up(DIALECTS.sqlite!), migration.up(DIALECTS.postgres!)];
      expect(sqlite.length).toBeGreaterThan(0);
      expect(postgres).toHaveLength(sqlite.length);
      const neutral = (sql: string) =>
        sql.replace(
          /INTEGER PRIMARY KEY AUTOINCREMENT|BIGSERIAL PRIMARY KEY|BLOB|BYTEA|BIGINT|INTEGER/g,
          'T',
        );
      expect(postgres.map(neutral)).toEqual(sqlite.map(neutral));
    }
  });

  it('plan pending and unknown ids', () => {
    expect(planMigrations([]).pending).toEqual(MIGRATIONS);
    expect(planMigrations(MIGRATIONS.map((m) => m.id))).toEqual({ pending: [], unknown: [] });
    expect(planMigrations([...MIGRATIONS.map((m) => m.id), 1000, 999]).unknown).toEqual([999, 1000]);
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
