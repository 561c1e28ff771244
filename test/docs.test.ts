import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EmulateSettingsSchema, flagOption, SERVE_SETTINGS } from '../src/config.js';
import { CONFIG_ERROR_CODE, ERROR_CODES, ERROR_STATUS } from '../src/errors.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

/**
 * The error codes CONTRACT §7 names: the code spans of its section up to the rules that follow the list
 * ("An issue may add codes…", which name other things, such as `message`).
 */
function contractErrorCodes(contract: string): string[] {
  const section = /^## 7\.[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(contract)?.[1] ?? '';
  const list = section.split(/An issue may add codes/)[0]!;
  return [...list.matchAll(/`([a-z]+(?:_[a-z]+)*)`/g)].map((m) => m[1]!);
}

describe('docs stay in step with the code', () => {
  it('docs/errors.md lists every error code with its status, and no other', () => {
    const doc = read('docs/errors.md');
    for (const code of ERROR_CODES) {
      expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${ERROR_STATUS[code]}`));
    }
    expect(doc).toMatch(new RegExp(`\\| \`${CONFIG_ERROR_CODE}\` \\| exit 2`));
    const documented = [...doc.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...ERROR_CODES, CONFIG_ERROR_CODE].sort());
  });

  // The contract lives beside the repository (../shared), not in it: a fresh clone has no such file.
  const contractPath = fileURLToPath(new URL('../../shared/CONTRACT.md', import.meta.url));
  it.skipIf(!existsSync(contractPath))(
    'every code of CONTRACT §7 is in ERROR_CODES and docs/errors.md (skipped without ../shared/CONTRACT.md, as in a fresh clone)',
    () => {
      const codes = contractErrorCodes(readFileSync(contractPath, 'utf8'));
      // Enough to know the section was found and read, not an empty list that checks nothing.
      expect(codes.length).toBeGreaterThanOrEqual(15);
      const known: readonly string[] = [...ERROR_CODES, CONFIG_ERROR_CODE];
      expect(codes.filter((code) => !known.includes(code))).toEqual([]);
      const doc = read('docs/errors.md');
      expect(codes.filter((code) => !doc.includes(`| \`${code}\` |`))).toEqual([]);
    },
  );

  it('reads the codes of CONTRACT §7, and only those', () => {
    const text = [
      '## 6. Verbs',
      '`not_a_code` here',
      '## 7. Error codes',
      'The closed set so far: `method_not_allowed`, `bad_request` (400), and `invalid_config` (exit 2).',
      'An issue may add codes. Every error answer carries a `message`.',
      '## 8. Next',
      '`also_not_a_code`',
    ].join('\n');
    expect(contractErrorCodes(text)).toEqual(['method_not_allowed', 'bad_request', 'invalid_config']);
    expect(contractErrorCodes('## 6. No error section')).toEqual([]);
  });

  it('docs/configuration.md names every flag and variable of serve', () => {
    const doc = read('docs/configuration.md');
    for (const setting of SERVE_SETTINGS) {
      if (setting.flag !== undefined) expect(doc, setting.flag).toContain(`\`--${setting.flag}`);
      for (const env of setting.env ?? []) expect(doc, env).toContain(`\`${env}`);
    }
    const flags = [...doc.matchAll(/^\| `--([a-z-]+)/gm)].map((m) => m[1]);
    const known = SERVE_SETTINGS.flatMap((s) => (s.flag ? [s.flag] : []));
    expect(flags.sort()).toEqual([...known].sort());
  });

  it("docs/configuration.md gives each serve setting the settings schema's default", () => {
    const plain = (text: string) => text.replace(/`/g, '').replace(/’/g, "'").trim();
    const rows = read('docs/configuration.md')
      .split('\n')
      .filter((line) => line.startsWith('| '))
      .map((line) => line.split(' | ').map(plain));
    for (const setting of SERVE_SETTINGS) {
      const row = rows.find(([flag, env]) =>
        setting.flag !== undefined
          ? flag?.startsWith(`| --${setting.flag}`)
          : setting.env?.every((name) => env?.includes(name)),
      );
      expect(row, setting.key).toBeDefined();
      const [cell, text] = [row![2]!, plain(setting.defaultText)];
      expect(cell === text || cell.startsWith(`${text} `) ? text : cell, setting.key).toBe(text);
    }
  });
});

describe('docs/emulator.md', () => {
  it("gives each number flag of inlet emulate the schema's default", () => {
    const rows = read('docs/emulator.md')
      .split('\n')
      .filter((line) => line.startsWith('| `--'))
      .map((line) => line.split(' | ').map((cell) => cell.replace(/^\| /, '').replace(/`/g, '').trim()));
    for (const schema of Object.values(EmulateSettingsSchema.shape)) {
      const [flags, help, fallback] = flagOption(schema);
      const row = rows.find(([flag]) => flag?.split(' ')[0] === flags.split(' ')[0]);
      expect(row, flags).toBeDefined();
      const expected = fallback ?? /\(default: ([^)]*)\)$/.exec(help)?.[1];
      expect(row![1], flags).toBe(expected);
    }
  });
});

describe('docs/destinations.md', () => {
  it('documents every key of a destination in the config file, and no other', async () => {
    const { DestinationSchema } = await import('../src/jobs/destination-config.js');
    const doc = read('docs/destinations.md');
    const keys = Object.keys(DestinationSchema.shape);
    const documented = [...doc.matchAll(/^\| `([A-Za-z]+)` \| /gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual([...keys].sort());
  });
});

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The repository's own docs: what a user reads. */
function docFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`);
  return ['README.md', 'CONTRIBUTING.md', ...docs].filter((path) => existsSync(join(ROOT, path)));
}

/** Lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(text: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker !== undefined) {
      if (fence === undefined) fence = marker[0]!;
      else if (marker[0] === fence) fence = undefined;
      return;
    }
    if (fence === undefined) out.push({ line, n: i + 1 });
  });
  return out;
}

/** GitHub's anchor for a heading: its text as rendered, lower-cased, punctuation dropped, spaces to `-`. */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/[`*]/g, '') // code spans and emphasis marks
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

/** Every anchor of a Markdown file: its headings' slugs (repeats get -1, -2, …) and explicit ids. */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { line } of proseLines(text)) {
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = githubSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Names of files outside the repository that its docs must never send a reader to. */
const OUTSIDE_REFERENCES: [RegExp, string][] = [
  [/\bCONTRACT\b/, 'CONTRACT'],
  [/§\s*\d/, '§ followed by a number'],
  [/replicate-protocol\.md/, 'replicate-protocol.md'],
  [/\bDESIGN\.md\b/, 'DESIGN.md'],
  [/\bSTYLE\.md\b/, 'STYLE.md'],
  [/\/work\/shared\b/, '/work/shared'],
];

/**
 * Problems in one doc (`path` relative to `root`): links to files that do not exist in the repository,
 * anchors that match no heading of their target, and references to files users never see.
 */
export function docProblems(root: string, path: string, text: string): string[] {
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const [pattern, name] of OUTSIDE_REFERENCES) {
      if (pattern.test(line))
        problems.push(`${path}:${i + 1}: mentions ${name}, which is not in the repository`);
    }
  });
  for (const { line, n } of proseLines(text)) {
    const prose = line.replace(/(`+)[\s\S]*?\1/g, ''); // code spans are not links
    const targets = [
      ...[...prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
      ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map((m) => m[1]!),
    ];
    for (const target of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const hashAt = target.indexOf('#');
      const file = decodeURIComponent(hashAt === -1 ? target : target.slice(0, hashAt));
      const anchor = hashAt === -1 ? undefined : decodeURIComponent(target.slice(hashAt + 1));
      if (file === '') {
        if (anchor !== undefined && !anchorsOf(text).has(anchor)) {
          problems.push(`${path}:${n}: link to ${target}: no heading "#${anchor}" in ${path}`);
        }
        continue;
      }
      const absolute = resolve(root, dirname(path), file);
      const inRepo = relative(root, absolute);
      if (inRepo.startsWith(`..${sep}`) || inRepo === '..' || !existsSync(absolute)) {
        problems.push(`${path}:${n}: link to ${target}: no such file in the repository`);
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      if (statSync(absolute).isDirectory() || !absolute.endsWith('.md')) {
        problems.push(`${path}:${n}: link to ${target}: an anchor into a file that is not Markdown`);
        continue;
      }
      if (!anchorsOf(readFileSync(absolute, 'utf8')).has(anchor)) {
        problems.push(`${path}:${n}: link to ${target}: no heading "#${anchor}" in ${inRepo}`);
      }
    }
  }
  return problems;
}

describe('the docs stand alone', () => {
  it('README.md, CONTRIBUTING.md and docs/*.md link only to files and headings that exist, and cite nothing outside', () => {
    const files = docFiles();
    expect(files).toContain('docs/api.md');
    expect(files).toContain('docs/replicate.md');
    const problems = files.flatMap((path) => docProblems(ROOT, path, read(path)));
    expect(problems).toEqual([]);
  });

  it('the checker catches a missing file, a wrong anchor and a reference to a file users never see', () => {
    const doc = [
      '# Title',
      'See [errors](errors.md), [a code](errors.md#error-codes), [here](#title) and [the web](https://example.com/x.md).',
      'Broken: [gone](nowhere.md), [bad anchor](errors.md#no-such-heading), [self](#nope).',
      'As CONTRACT §3 and `replicate-protocol.md` say.',
      '```sh',
      '# not a heading',
      '```',
      '[in code](#not-a-heading)',
    ].join('\n');
    expect(docProblems(ROOT, 'docs/example.md', doc)).toEqual([
      'docs/example.md:4: mentions CONTRACT, which is not in the repository',
      'docs/example.md:4: mentions § followed by a number, which is not in the repository',
      'docs/example.md:4: mentions replicate-protocol.md, which is not in the repository',
      'docs/example.md:3: link to nowhere.md: no such file in the repository',
      'docs/example.md:3: link to errors.md#no-such-heading: no heading "#no-such-heading" in docs/errors.md',
      'docs/example.md:3: link to #nope: no heading "#nope" in docs/example.md',
      'docs/example.md:8: link to #not-a-heading: no heading "#not-a-heading" in docs/example.md',
    ]);
  });

  it('slugs headings the way GitHub does', () => {
    expect(githubSlug('`inlet emulate` flags')).toBe('inlet-emulate-flags');
    expect(githubSlug('Retries, duplicates and order')).toBe('retries-duplicates-and-order');
    expect(githubSlug('NATS JetStream: `nats://[USER:PASS@]HOST[:PORT]/SUBJECT`')).toBe(
      'nats-jetstream-natsuserpasshostportsubject',
    );
    expect(githubSlug('Why not ten lines of Flask?')).toBe('why-not-ten-lines-of-flask');
    expect(githubSlug('503 `storage_unavailable`')).toBe('503-storage_unavailable');
    expect([...anchorsOf('# A\n## Backups\n## Backups\n```\n# B\n```')]).toEqual([
      'a',
      'backups',
      'backups-1',
    ]);
  });
});
