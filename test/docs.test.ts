import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVE_SETTINGS } from '../src/config.js';
import { CONFIG_ERROR_CODE, ERROR_CODES, ERROR_STATUS } from '../src/errors.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

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
