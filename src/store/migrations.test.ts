import { describe, expect, it } from 'vitest';
import { MIGRATIONS, planMigrations, type DialectTypes } from './migrations.js';
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
