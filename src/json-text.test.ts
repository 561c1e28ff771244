import { describe, expect, it } from 'vitest';
import { INDENTED_LEVELS, jsonText, stringifyWithoutRecursion } from './json-text.js';

function nested(depth: number, leaf: unknown = []): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value };
  return value;
}

const SAMPLES: unknown[] = [
  null,
  true,
  0,
  -1.5e300,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  'text "quoted" \\ \n \u2028 \ud800 é',
  [],
  {},
  [1, 'a', null, undefined, () => 1, Symbol('s'), [], {}],
  { a: 1, b: undefined, c: () => 1, d: [{}], e: { f: [[]] } },
  { only: undefined },
  { date: new Date(0), boxed: [Object(1), Object('s'), Object(false)] },
  { toJSON: (key: string) => ({ key }) },
  JSON.parse('{"__proto__":{"a":1},"constructor":"c","toString":[1]}'),
  { '': 1, 'k\u0000"': [2] },
  nested(60, { deep: [1, 2, { x: 'y' }] }),
];

describe('jsonText', () => {
  it('writes what JSON.stringify writes, compact and indented', () => {
    for (const value of SAMPLES) {
      expect(stringifyWithoutRecursion(value, '')).toBe(JSON.stringify(value) ?? 'null');
      expect(stringifyWithoutRecursion(value, '  ')).toBe(JSON.stringify(value, null, 2) ?? 'null');
      expect(jsonText(value, 2)).toBe(JSON.stringify(value, null, 2) ?? 'null');
    }
  });

  it('writes a value 100,000 levels deep, which JSON.stringify cannot', () => {
    const depth = 100_000;
    const text = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const value = JSON.parse(`{"output":${text},"id":"p"}`) as unknown;
    expect(() => JSON.stringify(value)).toThrow(RangeError);
    expect(jsonText(value)).toBe(`{"output":${text},"id":"p"}`);
  });

  it('indents the first levels of a value too deep for JSON.stringify and writes the rest on one line', () => {
    const depth = 100_000;
    const value = { output: nested(depth, 'leaf') };
    const text = jsonText(value, 2);
    expect(JSON.parse(text)).toBeTypeOf('object');
    expect(jsonText(JSON.parse(text))).toBe(jsonText(value));
    const lines = text.split('\n');
    expect(lines[0]).toBe('{');
    expect(lines[1]).toBe('  "output": {');
    expect(lines[2]).toBe('    "k": [');
    // One line per indented level on the way in and on the way out, plus the braces of the root.
    expect(lines).toHaveLength(2 * INDENTED_LEVELS + 1);
    // The whole text is about as long as the compact one, not 2 spaces × 100,000 levels on each line.
    expect(text.length).toBeLessThan(jsonText(value).length + 2 * INDENTED_LEVELS * (INDENTED_LEVELS + 8));
  });

  it('still refuses what JSON.stringify refuses', () => {
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = { back: cycle };
    expect(() => stringifyWithoutRecursion(cycle, '')).toThrow(TypeError);
    expect(() => stringifyWithoutRecursion({ n: 1n }, '')).toThrow(TypeError);
    expect(() => jsonText(cycle)).toThrow(TypeError);
    // A cycle below the depth JSON.stringify reaches: found all the same, not written forever.
    for (const length of [1, 3, 64, 65]) {
      const ring: Record<string, unknown>[] = Array.from({ length }, (_, i) => ({ i }));
      ring.forEach((node, i) => (node.next = ring[(i + 1) % length]));
      const deep = nested(20_001, { before: [1, 2], ring: ring[0] });
      expect(() => jsonText(deep), `cycle of ${length}`).toThrow(TypeError);
    }
  });
});
