import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config.js';
import { UsageError } from './context.js';
import {
  describeProgress,
  parseEvents,
  parseInputArgs,
  parseInputValue,
  webhookUrlOf,
} from './predict-command.js';

describe('inlet predict arguments', () => {
  it('reads -i values as JSON when they parse, else as strings', () => {
    expect(parseInputValue('2')).toBe(2);
    expect(parseInputValue('0.5')).toBe(0.5);
    expect(parseInputValue('true')).toBe(true);
    expect(parseInputValue('[1,"a"]')).toEqual([1, 'a']);
    expect(parseInputValue('"quoted"')).toBe('quoted');
    expect(parseInputValue('hi')).toBe('hi');
    expect(parseInputValue('a red fox')).toBe('a red fox');
    expect(parseInputValue('')).toBe('');
  });

  it('builds the input object; key=@file becomes a data URL; bad or repeated keys are usage errors', async () => {
    const files: Record<string, Buffer> = {
      'cat.png': Buffer.from([1, 2, 3]),
      'notes.bin': Buffer.from('x'),
    };
    const read = (path: string) =>
      files[path] === undefined
        ? Promise.reject(Object.assign(new Error('no'), { code: 'ENOENT' }))
        : Promise.resolve(files[path]);
    expect(
      await parseInputArgs(['text=hi', 'n=2', 'eq=a=b', 'image=@cat.png', 'blob=@notes.bin'], read),
    ).toEqual({
      text: 'hi',
      n: 2,
      eq: 'a=b',
      image: 'data:image/png;base64,AQID',
      blob: 'data:application/octet-stream;base64,eA==',
    });
    await expect(parseInputArgs(['novalue'], read)).rejects.toBeInstanceOf(UsageError);
    await expect(parseInputArgs(['=x'], read)).rejects.toBeInstanceOf(UsageError);
    await expect(parseInputArgs(['a=1', 'a=2'], read)).rejects.toThrow(/given twice/);
    await expect(parseInputArgs(['a=@missing.png'], read)).rejects.toThrow(/ENOENT/);
  });

  it('always asks for `completed`, in Replicate’s order, and refuses unknown events', () => {
    expect(parseEvents(undefined)).toEqual(['start', 'output', 'logs', 'completed']);
    expect(parseEvents('logs,start')).toEqual(['start', 'logs', 'completed']);
    expect(parseEvents('completed')).toEqual(['completed']);
    expect(() => parseEvents('start,done')).toThrow(UsageError);
  });

  it('takes --webhook-url, else INLET_PUBLIC_URL plus the webhook path, else exits 2', () => {
    expect(webhookUrlOf('https://x.example/hook', {})).toBe('https://x.example/hook');
    expect(() => webhookUrlOf('ftp://x', {})).toThrow(UsageError);
    expect(webhookUrlOf(undefined, { INLET_PUBLIC_URL: 'https://inlet.example/' })).toBe(
      'https://inlet.example/replicate-webhook',
    );
    expect(
      webhookUrlOf(undefined, {
        INLET_PUBLIC_URL: 'https://inlet.example/base',
        INLET_WEBHOOK_PATH: '/hooks/r',
      }),
    ).toBe('https://inlet.example/base/hooks/r');
    expect(() => webhookUrlOf(undefined, {})).toThrow(/--webhook-url/);
    expect(() => webhookUrlOf(undefined, { INLET_PUBLIC_URL: 'nope' })).toThrow(ConfigError);
  });

  it('--wait prints only what changed: status, new log lines, output', () => {
    let shown = { status: '', logs: '', output: undefined as string | undefined };
    const step = (object: Record<string, unknown>) => {
      const next = describeProgress(shown, { id: 'p', status: 'starting', ...object });
      shown = next.shown;
      return next.lines;
    };
    expect(step({ status: 'starting' })).toEqual(['status: starting']);
    expect(step({ status: 'processing', logs: 'one\n' })).toEqual(['  one', 'status: processing']);
    expect(step({ status: 'processing', logs: 'one\ntwo\n' })).toEqual(['  two']);
    expect(step({ status: 'processing', logs: 'one\ntwo\n' })).toEqual([]);
    expect(step({ status: 'succeeded', logs: 'one\ntwo\n', output: 'hi' })).toEqual([
      'output: "hi"',
      'status: succeeded',
    ]);
    expect(step({ status: 'failed', logs: 'one\ntwo\n', output: 'hi', error: 'boom' })).toEqual([
      'status: failed (boom)',
    ]);
  });
});
