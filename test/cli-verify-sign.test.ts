import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Spawns the built CLI: `npm test` builds first; alone, run `npm run build` before this file.
const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url));
const SECRET_VARS = ['REPLICATE_WEBHOOK_SECRET', 'REPLICATE_WEBHOOK_SIGNING_SECRET'];

const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: '1614265330',
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const VECTOR2 = {
  secret: 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD',
  id: 'msg_27UH4WbU6Z5A5EzD8u03UvzRbpk',
  timestamp: '1649367553',
  body: '{"email":"test@example.com","username":"test_user"}',
  signature: 'v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=',
};
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const OTHER_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const BODY = '{"id":"p1","status":"succeeded","output":["https://replicate.delivery/x.png"],"logs":"é\\n"}';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with a clean secret environment; resolves once it exits (killed after 20 s). */
function inlet(
  args: string[],
  options: { input?: string | Buffer; env?: Record<string, string> } = {},
): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  for (const name of SECRET_VARS) if (!(name in (options.env ?? {}))) delete env[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: 'pipe' });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`inlet ${args.join(' ')} did not exit within 20 s`));
    }, 20_000);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    // A command that fails before reading stdin closes it early: that is not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

function lastLine(text: string): string | undefined {
  return text.trimEnd().split('\n').at(-1);
}

function parseSigned(stdout: string): Record<string, string> {
  const lines = stdout.trimEnd().split('\n');
  expect(lines).toHaveLength(3);
  const headers = Object.fromEntries(lines.map((line) => line.split(/: (.*)/s).slice(0, 2)));
  expect(Object.keys(headers)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
  return headers;
}

function verifyArgs(headers: Record<string, string>, ...rest: string[]): string[] {
  return [
    'verify',
    '--id',
    headers['webhook-id']!,
    '--timestamp',
    headers['webhook-timestamp']!,
    '--signature',
    headers['webhook-signature']!,
    ...rest,
  ];
}

let dir: string;
let bodyFile: string;

beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first.`);
  dir = mkdtempSync(join(tmpdir(), 'inlet-cli-verify-'));
  bodyFile = join(dir, 'body.json');
  writeFileSync(bodyFile, BODY);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.concurrent('inlet sign → inlet verify', () => {
  it('round-trips through a file', async () => {
    const signed = await inlet(['sign', '--secret', SECRET, bodyFile]);
    expect(signed.code).toBe(0);
    const headers = parseSigned(signed.stdout);
    expect(headers['webhook-id']).toMatch(/^msg_[0-9A-Za-z]+$/);
    expect(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);

    const verified = await inlet(verifyArgs(headers, '--secret', SECRET, bodyFile));
    expect(verified).toMatchObject({ code: 0 });
    expect(lastLine(verified.stdout)).toBe('valid');
  });

  it('round-trips raw non-UTF-8 bytes through stdin ("-" and no file)', async () => {
    const body = Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0x00, 0x7b, 0x7d, 0x0a]);
    const headers = parseSigned((await inlet(['sign', '--secret', SECRET, '-'], { input: body })).stdout);
    const viaDash = await inlet(verifyArgs(headers, '--secret', SECRET, '-'), { input: body });
    expect(viaDash.code).toBe(0);
    expect(lastLine(viaDash.stdout)).toBe('valid');
    const viaNothing = await inlet(verifyArgs(headers, '--secret', SECRET), { input: body });
    expect(viaNothing.code).toBe(0);
    expect(lastLine(viaNothing.stdout)).toBe('valid');

    const flipped = Buffer.from(body);
    flipped[4] = 0xfe;
    const tampered = await inlet(verifyArgs(headers, '--secret', SECRET), { input: flipped });
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toContain('invalid_signature');
  });

  it('verifies with --headers FILE holding what `inlet sign` printed (flags win over the file)', async () => {
    const signed = await inlet(['sign', '--secret', SECRET, bodyFile]);
    const headersFile = join(dir, 'headers-sign.txt');
    writeFileSync(headersFile, signed.stdout);
    const verified = await inlet(['verify', '--secret', SECRET, '--headers', headersFile, bodyFile]);
    expect(verified).toMatchObject({ code: 0 });
    expect(lastLine(verified.stdout)).toBe('valid');
    // Copied from a `curl -v` trace, with other headers around them: the same.
    const traced = join(dir, 'headers-curl.txt');
    writeFileSync(
      traced,
      `> POST /hook HTTP/1.1\n> Content-Type: application/json\n${signed.stdout.replace(/^/gm, '> ')}`,
    );
    expect((await inlet(['verify', '--secret', SECRET, '--headers', traced, bodyFile])).code).toBe(0);
    const overridden = await inlet([
      'verify',
      '--secret',
      SECRET,
      '--headers',
      headersFile,
      '--id',
      'msg_other',
      bodyFile,
    ]);
    expect(overridden.code).toBe(1);
    expect(overridden.stdout).toContain('invalid_signature');

    const empty = join(dir, 'headers-empty.txt');
    writeFileSync(empty, 'content-type: application/json\n');
    const noLines = await inlet(['verify', '--secret', SECRET, '--headers', empty, bodyFile]);
    expect(noLines.code).toBe(2);
    expect(noLines.stderr).toContain('holds no webhook-id');
    const missing = await inlet(['verify', '--secret', SECRET, '--headers', join(dir, 'nope.txt'), bodyFile]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('ENOENT');
  });

  it('uses the given id and timestamp', async () => {
    const headers = parseSigned(
      (await inlet(['sign', '--secret', SECRET, '--id', 'msg_mine', '--timestamp', '1700000000', bodyFile]))
        .stdout,
    );
    expect(headers['webhook-id']).toBe('msg_mine');
    expect(headers['webhook-timestamp']).toBe('1700000000');
    expect((await inlet(verifyArgs(headers, '--secret', SECRET, '--tolerance', '0', bodyFile))).code).toBe(0);
  });

  it('signs output that the standardwebhooks package verifies', async () => {
    const headers = parseSigned((await inlet(['sign', '--secret', SECRET], { input: BODY })).stdout);
    expect(new Webhook(SECRET).verify(BODY, headers)).toEqual(JSON.parse(BODY));
    expect(() => new Webhook(OTHER_SECRET).verify(BODY, headers)).toThrow();
  });

  it('signs with every secret given, and each verifies on its own', async () => {
    const headers = parseSigned(
      (await inlet(['sign', '--secret', `${SECRET}, ${OTHER_SECRET}`, bodyFile])).stdout,
    );
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    for (const secret of [SECRET, OTHER_SECRET]) {
      expect(new Webhook(secret).verify(BODY, headers)).toEqual(JSON.parse(BODY));
      expect((await inlet(verifyArgs(headers, '--secret', secret, bodyFile))).code).toBe(0);
    }
  });
});

describe.concurrent('inlet verify', () => {
  it.each([VECTOR, VECTOR2])('accepts the public vector $id with --tolerance 0', async (v) => {
    const headers = {
      'webhook-id': v.id,
      'webhook-timestamp': v.timestamp,
      'webhook-signature': v.signature,
    };
    const run = await inlet(verifyArgs(headers, '--secret', v.secret, '--tolerance', '0'), { input: v.body });
    expect(run.code).toBe(0);
    expect(lastLine(run.stdout)).toBe('valid');
    const sign = ['sign', '--secret', v.secret, '--id', v.id, '--timestamp', v.timestamp];
    const signed = parseSigned((await inlet(sign, { input: v.body })).stdout);
    expect(signed).toEqual(headers);
  });

  it('accepts any of several secrets (rotation)', async () => {
    const headers = parseSigned((await inlet(['sign', '--secret', SECRET, bodyFile])).stdout);
    for (const list of [`${OTHER_SECRET} ${SECRET}`, `${OTHER_SECRET},${SECRET}`]) {
      expect((await inlet(verifyArgs(headers, '--secret', list, bodyFile))).code).toBe(0);
    }
  });

  const vectorHeaders = {
    'webhook-id': VECTOR.id,
    'webhook-timestamp': VECTOR.timestamp,
    'webhook-signature': VECTOR.signature,
  };
  const failures: [string, string[], string][] = [
    [
      'an absent --id',
      ['verify', '--timestamp', VECTOR.timestamp, '--signature', VECTOR.signature],
      'missing_signature',
    ],
    ['an empty --signature', verifyArgs({ ...vectorHeaders, 'webhook-signature': '' }), 'missing_signature'],
    ['an empty --timestamp', verifyArgs({ ...vectorHeaders, 'webhook-timestamp': '' }), 'missing_signature'],
    ['no headers at all', ['verify'], 'missing_signature'],
    [
      'a timestamp that is not a number',
      verifyArgs({ ...vectorHeaders, 'webhook-timestamp': 'yesterday' }),
      'malformed_signature',
    ],
    ['an old timestamp with the default tolerance', verifyArgs(vectorHeaders), 'timestamp_out_of_tolerance'],
    [
      'an old timestamp with --tolerance 60',
      verifyArgs(vectorHeaders, '--tolerance', '60'),
      'timestamp_out_of_tolerance',
    ],
    [
      'a garbage signature',
      verifyArgs({ ...vectorHeaders, 'webhook-signature': 'garbage' }, '--tolerance', '0'),
      'invalid_signature',
    ],
    [
      'a signature from another secret',
      verifyArgs({ ...vectorHeaders, 'webhook-signature': VECTOR2.signature }, '--tolerance', '0'),
      'invalid_signature',
    ],
  ];
  it.each(failures)('exits 1 naming the code for %s', async (_label, args, code) => {
    const run = await inlet([...args, '--secret', VECTOR.secret], { input: VECTOR.body });
    expect(run.code).toBe(1);
    expect(`${run.stdout}${run.stderr}`).toContain(code);
    expect(lastLine(run.stdout)).not.toBe('valid');
    expect(`${run.stdout}${run.stderr}`).not.toContain(VECTOR.secret.slice(6));
  });

  it('exits 1 for a tampered body', async () => {
    const run = await inlet(verifyArgs(vectorHeaders, '--secret', VECTOR.secret, '--tolerance', '0'), {
      input: VECTOR.body.replace('2432232314', '2432232315'),
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('invalid_signature');
  });
});

describe.concurrent('secrets from the environment', () => {
  const headers = async () => parseSigned((await inlet(['sign', '--secret', SECRET, bodyFile])).stdout);

  it('falls back to REPLICATE_WEBHOOK_SECRET, then REPLICATE_WEBHOOK_SIGNING_SECRET', async () => {
    const h = await headers();
    expect((await inlet(verifyArgs(h, bodyFile), { env: { REPLICATE_WEBHOOK_SECRET: SECRET } })).code).toBe(
      0,
    );
    expect(
      (await inlet(verifyArgs(h, bodyFile), { env: { REPLICATE_WEBHOOK_SIGNING_SECRET: SECRET } })).code,
    ).toBe(0);
    const both = { REPLICATE_WEBHOOK_SECRET: OTHER_SECRET, REPLICATE_WEBHOOK_SIGNING_SECRET: SECRET };
    expect((await inlet(verifyArgs(h, bodyFile), { env: both })).code).toBe(1);
    // --secret wins over the environment.
    const flagWins = await inlet(verifyArgs(h, '--secret', SECRET, bodyFile), {
      env: { REPLICATE_WEBHOOK_SECRET: OTHER_SECRET },
    });
    expect(flagWins.code).toBe(0);
  });

  it('signs with the environment secret', async () => {
    const signed = await inlet(['sign', bodyFile], { env: { REPLICATE_WEBHOOK_SECRET: SECRET } });
    expect(signed.code).toBe(0);
    expect(new Webhook(SECRET).verify(BODY, parseSigned(signed.stdout))).toEqual(JSON.parse(BODY));
  });
});

describe.concurrent('usage errors exit 2', () => {
  it.each([['verify'], ['sign']])(
    'inlet %s with no secret anywhere names REPLICATE_WEBHOOK_SECRET',
    async (verb) => {
      const run = await inlet([verb, bodyFile], {
        env: { REPLICATE_WEBHOOK_SECRET: '', REPLICATE_WEBHOOK_SIGNING_SECRET: '' },
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('REPLICATE_WEBHOOK_SECRET');
    },
  );

  it.each([
    ['a secret that is not base64', ['verify', '--secret', 'whsec_not base64!', bodyFile], '--secret'],
    ['an empty --secret', ['verify', '--secret', '', bodyFile], '--secret'],
    ['a bad secret in the environment', ['sign', bodyFile], 'REPLICATE_WEBHOOK_SECRET'],
    [
      'a negative --tolerance',
      [...verifyArgs(vectorHeadersOf()), '--secret', SECRET, '--tolerance', '-5', bodyFile],
      '--tolerance',
    ],
    [
      'a word for --tolerance',
      [...verifyArgs(vectorHeadersOf()), '--secret', SECRET, '--tolerance', 'five', bodyFile],
      '--tolerance',
    ],
    [
      'a fractional --tolerance',
      [...verifyArgs(vectorHeadersOf()), '--secret', SECRET, '--tolerance', '1.5', bodyFile],
      '--tolerance',
    ],
    [
      'a bad --timestamp for sign',
      ['sign', '--secret', SECRET, '--timestamp', 'now', bodyFile],
      '--timestamp',
    ],
    [
      'a negative --timestamp for sign',
      ['sign', '--secret', SECRET, '--timestamp', '-1', bodyFile],
      '--timestamp',
    ],
    ['an empty --id for sign', ['sign', '--secret', SECRET, '--id', '', bodyFile], '--id'],
    [
      'a missing body file',
      ['sign', '--secret', SECRET, join(tmpdir(), 'inlet-no-such-file.json')],
      'no-such-file',
    ],
  ])('for %s', async (_label, args, named) => {
    const run = await inlet(args, { env: { REPLICATE_WEBHOOK_SECRET: 'whsec_%%%' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(named);
    expect(run.stdout).not.toMatch(/^valid$/m);
  });
});

function vectorHeadersOf(): Record<string, string> {
  return {
    'webhook-id': VECTOR.id,
    'webhook-timestamp': VECTOR.timestamp,
    'webhook-signature': VECTOR.signature,
  };
}
