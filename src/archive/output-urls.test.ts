import { describe, expect, it } from 'vitest';
import { findOutputUrls, MAX_URL_DEPTH, replaceOutputUrls } from './output-urls.js';

describe('findOutputUrls', () => {
  it('finds URLs in strings, arrays and objects, with JSON paths in document order', () => {
    const output = {
      images: ['https://replicate.delivery/a.png', 'https://replicate.delivery/b.png'],
      meta: { caption: 'a fox', 'weird key': 'http://x.example/y', n: 2, ok: true, none: null },
      text: 'see https://replicate.delivery/c.png',
    };
    expect(findOutputUrls(output)).toEqual([
      { path: 'output.images[0]', url: 'https://replicate.delivery/a.png' },
      { path: 'output.images[1]', url: 'https://replicate.delivery/b.png' },
      { path: 'output.meta["weird key"]', url: 'http://x.example/y' },
    ]);
    expect(findOutputUrls('https://replicate.delivery/one.webp')).toEqual([
      { path: 'output', url: 'https://replicate.delivery/one.webp' },
    ]);
    expect(findOutputUrls(null)).toEqual([]);
  });

  it('stops at the limit and below a depth, without recursion', () => {
    expect(findOutputUrls(Array(50).fill('https://h.example/x'), 10)).toHaveLength(10);
    let deep: unknown = 'https://h.example/deep';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(findOutputUrls(deep)).toEqual([]);
    let shallow: unknown = 'https://h.example/ok';
    for (let i = 0; i < MAX_URL_DEPTH; i++) shallow = { a: shallow };
    expect(findOutputUrls(shallow)).toHaveLength(1);
  });
});

describe('replaceOutputUrls', () => {
  it('replaces only the given paths still holding their source URL, sharing the rest', () => {
    const untouched = { big: ['x'] };
    const output = { images: ['https://r.example/a', 'https://r.example/b'], other: untouched };
    const replaced = replaceOutputUrls(
      output,
      new Map([
        ['output.images[0]', { sourceUrl: 'https://r.example/a', url: 'http://inlet/api/files/1' }],
        ['output.images[1]', { sourceUrl: 'https://r.example/changed', url: 'http://inlet/api/files/2' }],
      ]),
    ) as typeof output;
    expect(replaced).toEqual({
      images: ['http://inlet/api/files/1', 'https://r.example/b'],
      other: untouched,
    });
    expect(replaced.other).toBe(untouched);
    expect(output.images[0]).toBe('https://r.example/a');
  });

  it('keeps keys named __proto__ and constructor as keys', () => {
    const output = JSON.parse(
      '{"__proto__":{"img":"https://r.example/a"},"constructor":["https://r.example/b"]}',
    ) as unknown;
    const urls = findOutputUrls(output);
    expect(urls.map((u) => u.path)).toEqual(['output.__proto__.img', 'output.constructor[0]']);
    const replaced = replaceOutputUrls(
      output,
      new Map(urls.map((u, i) => [u.path, { sourceUrl: u.url, url: `http://inlet/api/files/${i}` }])),
    );
    expect(JSON.stringify(replaced)).toBe(
      '{"__proto__":{"img":"http://inlet/api/files/0"},"constructor":["http://inlet/api/files/1"]}',
    );
  });
});
