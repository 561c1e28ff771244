import { describe, expect, it } from 'vitest';
import { capabilitiesBeforeOpen, DIALECT_CAPABILITIES } from './dialects.js';

describe('capabilitiesBeforeOpen', () => {
  it("keeps the dialect's facts and allows one commit at a time", () => {
    expect(capabilitiesBeforeOpen('postgres')).toEqual({
      ...DIALECT_CAPABILITIES.postgres,
      maxConcurrentCommits: 1,
    });
    expect(capabilitiesBeforeOpen('postgres').crossProcessNotify).toBe(true);
    expect(capabilitiesBeforeOpen('sqlite')).toMatchObject({
      crossProcessNotify: false,
      maxConcurrentCommits: 1,
    });
    expect(DIALECT_CAPABILITIES.sqlite.maxConcurrentCommits).toBeGreaterThan(1);
  });
});
