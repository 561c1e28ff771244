import { describe, expect, it } from 'vitest';
import {
  insertRejectionParams,
  insertRejectionsSql,
  numberPlaceholders,
  REJECTION_INSERT_COLUMNS,
} from './statements.js';

describe('insertRejectionsSql', () => {
  const row = {
    receivedAtMs: 1,
    code: 'bad_signature',
    message: 'no',
    remoteAddress: '127.0.0.1',
    headers: {},
    body: Buffer.from('x'),
  };

  it('has one placeholder per column per row, matching insertRejectionParams', () => {
    expect(insertRejectionParams('rej_1', row)).toHaveLength(REJECTION_INSERT_COLUMNS.length);
    const sql = insertRejectionsSql(3);
    expect(sql.match(/\?/g)).toHaveLength(3 * REJECTION_INSERT_COLUMNS.length);
    expect(sql).toMatch(/^INSERT INTO rejections \(id, received_at, .*, body_len\) VALUES \(/);
  });

  it('numbers the rows one after another for PostgreSQL', () => {
    const sql = numberPlaceholders(insertRejectionsSql(2));
    expect(sql).toContain('VALUES ($1, $2, $3, $4, $5, $6, $7, $8), ($9, $10, $11, $12, $13, $14, $15, $16)');
  });
});
