import { describe, expect, it } from 'vitest';
import { outputPreview } from './output-preview.js';

describe('outputPreview', () => {
  it('shows short outputs whole, as JSON', () => {
    expect(outputPreview(['https://replicate.delivery/a/out-0.png'])).toBe(
      '["https://replicate.delivery/a/out-0.png"]',
    );
    expect(outputPreview('a cat')).toBe('"a cat"');
    expect(outputPreview({ version: 'v1', weights: 'https://w' })).toBe(
      '{"version":"v1","weights":"https://w"}',
    );
    expect(outputPreview(0)).toBe('0');
  });

  it('has nothing to show before there is output', () => {
    expect(outputPreview(null)).toBeUndefined();
    expect(outputPreview(undefined)).toBeUndefined();
  });

  it('cuts long outputs at the limit on one line, without walking all of a huge one', () => {
    const tokens = Array.from({ length: 1_000_000 }, (_, i) => `token ${i}\n`);
    const preview = outputPreview(tokens, 40)!;
    expect(preview).toHaveLength(40);
    expect(preview.endsWith('…')).toBe(true);
    expect(preview).not.toContain('\n');
    expect(outputPreview('x'.repeat(10_000_000), 20)).toBe(`"${'x'.repeat(18)}…`);
  });

  it('survives deep nesting', () => {
    let deep: unknown = 'core';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(outputPreview(deep, 60)).toMatch(/^\[\[\[\[\[\[\[\[\[\[…\]/);
  });
});
