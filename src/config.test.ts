import { describe, expect, it } from 'vitest';
import { configJsonSchema } from './config-file.js';
import { EMULATOR_DEFAULTS } from './emulator/index.js';
import {
  ConfigError,
  EMULATOR_PORT_OPTION,
  EmulateSettingsSchema,
  flagOption,
  parseNumberFlag,
  VerifySettingsSchema,
  parseEmulatorPort,
  parseSecretList,
  parseServeConfig,
  readSecretsFromEnv,
  SERVE_SETTINGS,
  settingOption,
} from './config.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const parse = (flags: Record<string, string | boolean>, env: Record<string, string>) =>
  parseServeConfig(flags, { REPLICATE_WEBHOOK_SECRET: SECRET, ...env }, { isTty: false });

function settingOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.setting;
    throw error;
  }
  return undefined;
}

describe('parseServeConfig', () => {
  it('reads durations: INLET_LISTEN_EXPIRY (default 7d) and --retention (default off)', () => {
    expect(parse({}, {})).toMatchObject({ listenExpiryMs: 7 * 86_400_000, retentionMs: undefined });
    expect(parse({ retention: '30d' }, { INLET_LISTEN_EXPIRY: '12h' })).toMatchObject({
      listenExpiryMs: 12 * 3_600_000,
      retentionMs: 30 * 86_400_000,
    });
    expect(parse({}, { INLET_RETENTION: ' ' }).retentionMs).toBeUndefined();
    expect(settingOf(() => parse({}, { INLET_LISTEN_EXPIRY: '7' }))).toBe('INLET_LISTEN_EXPIRY');
    expect(settingOf(() => parse({ retention: 'soon' }, {}))).toBe('--retention');
  });

  it('has the contract defaults', () => {
    const config = parse({}, {});
    expect(config).toMatchObject({
      port: 5000,
      host: '0.0.0.0',
      webhookPath: '/replicate-webhook',
      databaseUrl: 'sqlite:./data/inlet.db',
      toleranceSec: 300,
      maxBodyBytes: 16 * 1024 * 1024,
      acceptHexSignature: false,
      commitTimeoutMs: 5000,
      logLevel: 'info',
      logFormat: 'json',
      insecureSkipVerify: false,
      maxRejections: 10_000,
      adminToken: undefined,
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(parseServeConfig({}, { REPLICATE_WEBHOOK_SECRET: SECRET }, { isTty: true }).logFormat).toBe(
      'pretty',
    );
  });

  it('parses the database into the store to open, once, and words its errors as --database', () => {
    expect(parse({}, {}).database).toEqual({ dialect: 'sqlite', path: './data/inlet.db' });
    expect(parse({}, { DATABASE_URL: 'postgres://u:p@h:5432/d' }).database).toEqual({
      dialect: 'postgres',
      url: 'postgres://u:p@h:5432/d',
    });
    expect(settingOf(() => parse({ database: 'mysql://root:hunter2@db/x' }, {}))).toBe('--database');
    expect(() => parse({}, { DATABASE_URL: 'mysql://root:hunter2@db/x' })).toThrow(
      /^--database: Unsupported database URL scheme "mysql:"/,
    );
    expect(() => parse({ database: ' ' }, {})).toThrow('--database must not be empty.');
  });

  it('lets flags win over the environment', () => {
    const config = parse(
      { port: '6000', tolerance: '0' },
      { PORT: '7000', INLET_TOLERANCE_SECONDS: '10', HOST: '::1' },
    );
    expect(config).toMatchObject({ port: 6000, toleranceSec: 0, host: '::1' });
  });

  it('names the flag or variable of a bad value', () => {
    expect(settingOf(() => parse({ port: '65536' }, {}))).toBe('--port');
    expect(settingOf(() => parse({}, { PORT: 'x' }))).toBe('PORT');
    expect(settingOf(() => parse({}, { INLET_MAX_BODY_BYTES: '-1' }))).toBe('INLET_MAX_BODY_BYTES');
    expect(settingOf(() => parse({}, { INLET_ACCEPT_HEX_SIGNATURE: 'maybe' }))).toBe(
      'INLET_ACCEPT_HEX_SIGNATURE',
    );
    expect(settingOf(() => parse({ logFormat: 'xml' }, {}))).toBe('--log-format');
    expect(settingOf(() => parse({ path: 'no-slash' }, {}))).toBe('--path');
  });

  it('allows tiny body limits (for tests) and an empty value counts as unset', () => {
    expect(parse({ maxBody: '1' }, {}).maxBodyBytes).toBe(1);
    expect(parse({}, { PORT: '' }).port).toBe(5000);
  });

  it('needs a secret unless --insecure-skip-verify, naming REPLICATE_WEBHOOK_SECRET', () => {
    const noSecret = () => parseServeConfig({}, {}, { isTty: false });
    expect(settingOf(noSecret)).toBe('REPLICATE_WEBHOOK_SECRET');
    expect(() => noSecret()).toThrow(/REPLICATE_WEBHOOK_SECRET/);
    expect(parseServeConfig({ insecureSkipVerify: true }, {}, { isTty: false }).secrets).toEqual([]);
    expect(
      settingOf(() => parseServeConfig({}, { REPLICATE_WEBHOOK_SECRET: 'whsec_!!' }, { isTty: false })),
    ).toBe('REPLICATE_WEBHOOK_SECRET');
  });

  it('holds every secret to one rule and says which part failed: whsec_ + base64, any string only for the hex scheme', () => {
    const serveWith =
      (secret: string, flags = {}) =>
      () =>
        parseServeConfig(flags, { REPLICATE_WEBHOOK_SECRET: secret }, { isTty: false });
    expect(serveWith('whsec_ab!cd')).toThrow(/a character that is not base64 at position 9/);
    expect(serveWith('whsec_')).toThrow(/nothing follows "whsec_"/);
    expect(serveWith('whsec_ab=cd')).toThrow(/"=" padding appears before the end/);
    expect(serveWith('whsec_A')).toThrow(/decodes to no bytes/);
    expect(serveWith('my-tutorial-secret!')).toThrow(/only with --accept-hex-signature/);
    // Never the secret itself in the message.
    expect(serveWith('whsec_ab!cd')).not.toThrow(/ab!cd/);
    expect(serveWith('my-tutorial-secret!', { acceptHexSignature: true })().secrets).toEqual([
      'my-tutorial-secret!',
    ]);
    // Bare base64 and the URL-safe alphabet are the same secret as with the prefix.
    expect(serveWith(SECRET.slice('whsec_'.length))().secrets).toHaveLength(1);
  });

  it('reads several secrets, separated by spaces or commas, from either variable', () => {
    expect(parseSecretList(' a, b  c,,d ')).toEqual(['a', 'b', 'c', 'd']);
    expect(readSecretsFromEnv({ REPLICATE_WEBHOOK_SIGNING_SECRET: `${SECRET} ${SECRET}` })).toEqual({
      secrets: [SECRET, SECRET],
      source: 'REPLICATE_WEBHOOK_SIGNING_SECRET',
    });
    expect(
      readSecretsFromEnv({ REPLICATE_WEBHOOK_SECRET: '', REPLICATE_WEBHOOK_SIGNING_SECRET: SECRET }).source,
    ).toBe('REPLICATE_WEBHOOK_SIGNING_SECRET');
  });
});

describe('the settings schema', () => {
  it('gives inlet config schema every serve setting, with its flag, variables and default', () => {
    const schema = configJsonSchema() as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
      $defs: { serve: { properties: Record<string, Record<string, unknown>> } };
    };
    // The file's own schema is unchanged: destinations, and nothing else is allowed.
    expect(Object.keys(schema.properties).sort()).toEqual(['$schema', 'destinations']);
    expect(schema.additionalProperties).toBe(false);
    const serve = schema.$defs.serve.properties;
    expect(Object.keys(serve)).toEqual(SERVE_SETTINGS.map((s) => s.key));
    for (const s of SERVE_SETTINGS) {
      expect(serve[s.key]?.['x-flag'], s.key).toBe(s.flag === undefined ? undefined : `--${s.flag}`);
      expect(serve[s.key]?.['x-env'], s.key).toEqual(s.env);
    }
    expect(serve.port).toMatchObject({ type: 'integer', minimum: 0, maximum: 65535, default: 5000 });
    expect(serve.logLevel).toMatchObject({ default: 'info', enum: expect.arrayContaining(['debug']) });
  });

  it('states each default once: the parsed config, --help and the JSON Schema agree', () => {
    const config = parse({}, {});
    const serve = (
      configJsonSchema() as { $defs: { serve: { properties: Record<string, { default?: unknown }> } } }
    ).$defs.serve.properties;
    for (const key of [
      'port',
      'host',
      'webhookPath',
      'toleranceSec',
      'commitTimeoutMs',
      'maxRejections',
    ] as const) {
      expect(serve[key]?.default, key).toBe(config[key]);
      expect(SERVE_SETTINGS.find((s) => s.key === key)?.defaultText, key).toBe(String(config[key]));
    }
    expect(settingOption('databaseUrl', 'the database')).toEqual([
      '--database <url>',
      'the database (default: sqlite:./data/inlet.db) [env: DATABASE_URL]',
    ]);
  });

  it('reads ranges from the schema: the message names them', () => {
    expect(() => parse({ port: '65536' }, {})).toThrow(
      '--port must be a whole number from 0 to 65535; got "65536".',
    );
    expect(() => parse({}, { INLET_HEADERS_TIMEOUT_MS: '99' })).toThrow(
      'INLET_HEADERS_TIMEOUT_MS must be a whole number from 100 to 3600000; got "99".',
    );
  });
});

describe("inlet dev's emulator port", () => {
  it('reads --emulator-port, else INLET_EMULATOR_PORT, else 5555, and names the bad one', () => {
    expect(EMULATOR_PORT_OPTION).toEqual([
      '--emulator-port <port>',
      'emulator port (default: 5555) [env: INLET_EMULATOR_PORT]',
    ]);
    expect(parseEmulatorPort({}, {})).toBe(5555);
    expect(parseEmulatorPort({}, { INLET_EMULATOR_PORT: '6000' })).toBe(6000);
    expect(parseEmulatorPort({ emulatorPort: '0' }, { INLET_EMULATOR_PORT: '6000' })).toBe(0);
    expect(() => parseEmulatorPort({}, { INLET_EMULATOR_PORT: '70000' })).toThrow(
      'INLET_EMULATOR_PORT must be a port from 0 to 65535; got "70000".',
    );
    expect(settingOf(() => parseEmulatorPort({ emulatorPort: 'x' }, {}))).toBe('--emulator-port');
  });
});

describe("emulate's and verify's flags, from their schemas", () => {
  const E = EmulateSettingsSchema.shape;

  it('reads a number flag in the schema range, or the default when not given', () => {
    expect(parseNumberFlag(E.port, '0')).toBe(0);
    expect(parseNumberFlag(E.port, undefined)).toBe(5555);
    expect(parseNumberFlag(E.timeScale, '.05')).toBe(0.05);
    expect(parseNumberFlag(E.faultDrop, '1')).toBe(1);
    expect(parseNumberFlag(E.faultDrop, undefined)).toBeUndefined();
    expect(parseNumberFlag(E.seed, '4294967295')).toBe(2 ** 32 - 1);
    expect(parseNumberFlag(VerifySettingsSchema.shape.toleranceSec, undefined)).toBe(300);
  });

  it.each([
    [E.port, '70000', '--port must be a whole number from 0 to 65535; got "70000".'],
    [E.port, '1.5', '--port must be a whole number from 0 to 65535; got "1.5".'],
    [E.timeScale, '0', '--time-scale must be a number greater than 0 and at most 1000; got "0".'],
    [E.timeScale, 'fast', '--time-scale must be a number greater than 0 and at most 1000; got "fast".'],
    [E.faultDrop, '1.5', '--fault-drop must be a number from 0 to 1; got "1.5".'],
    [E.retryWindowMs, '-1', '--retry-window-ms must be a whole number from 0 to 86400000; got "-1".'],
    [
      VerifySettingsSchema.shape.toleranceSec,
      'soon',
      '--tolerance must be a whole number from 0 to 315360000; got "soon".',
    ],
  ])('refuses %#: a ConfigError naming the flag and its range', (schema, text, message) => {
    const error = (() => {
      try {
        parseNumberFlag(schema, text);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(message);
  });

  it("gives commander the flag, the help and the schema's default", () => {
    expect(flagOption(E.port)).toEqual([
      '--port <port>',
      'listen port (0 picks a free port and prints it)',
      '5555',
    ]);
    expect(flagOption(E.faultDrop)).toEqual([
      '--fault-drop <fraction>',
      'share of webhooks never sent (a dropped terminal one is lost) (default: 0)',
    ]);
  });

  it("agrees with the emulator's own defaults (createEmulator without options)", () => {
    expect(parseNumberFlag(E.timeScale, undefined)).toBe(EMULATOR_DEFAULTS.timeScale);
    expect(parseNumberFlag(E.retryWindowMs, undefined)).toBe(EMULATOR_DEFAULTS.retryWindowMs);
    expect(parseNumberFlag(E.outputTtlMs, undefined)).toBe(EMULATOR_DEFAULTS.outputTtlMs);
    expect(parseNumberFlag(E.attemptTimeoutMs, undefined)).toBe(EMULATOR_DEFAULTS.attemptTimeoutMs);
  });

  it('puts both in inlet config schema, beside serve', () => {
    const defs = (configJsonSchema() as { $defs: Record<string, { properties: Record<string, unknown> }> })
      .$defs;
    expect(defs.emulate?.properties.port).toMatchObject({
      type: 'integer',
      default: 5555,
      'x-flag': '--port',
    });
    expect(defs.emulate?.properties.seed).toMatchObject({ 'x-flag': '--seed', 'x-default': 'random' });
    expect(defs.verify?.properties.toleranceSec).toMatchObject({ default: 300, 'x-flag': '--tolerance' });
  });
});
