/**
 * Configuration: parsed once, validated, frozen. The only module that reads `process.env`
 * (callers pass `process.env` in; tests pass their own object).
 */

import {
  ArchiveDestinationError,
  parseArchiveDestination,
  type ArchiveDestination,
} from './archive/archive-destination.js';
import { DEFAULT_ARCHIVE_HOSTS, parseHostList } from './archive/host-allow-list.js';
import { z } from 'zod';
import { DURATION_HINT, parseDurationMs } from './duration.js';
import { InvalidDatabaseUrlError } from './store/errors.js';
import { parseDatabaseUrl, type DatabaseTarget } from './store/index.js';
import { TrustedProxies } from './server/trusted-proxies.js';
import { secretProblem } from './verify/secret.js';

export type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const SECRET_ENV_NAMES = ['REPLICATE_WEBHOOK_SECRET', 'REPLICATE_WEBHOOK_SIGNING_SECRET'] as const;

export interface ServeConfig {
  readonly port: number;
  readonly host: string;
  readonly webhookPath: string;
  readonly databaseUrl: string;
  /** `databaseUrl` parsed: the store to open. */
  readonly database: DatabaseTarget;
  readonly secrets: readonly string[];
  readonly toleranceSec: number;
  readonly maxBodyBytes: number;
  /** Request body bytes held in memory at once, all connections together; beyond: 503, body unread. */
  readonly maxInflightBytes: number;
  readonly acceptHexSignature: boolean;
  readonly commitTimeoutMs: number;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly insecureSkipVerify: boolean;
  readonly maxRejections: number;
  readonly rejectionBodyBudgetBytes: number;
  /** Rejections one source (address; IPv6 by /64) may add to the rejection log per second. */
  readonly rejectionsPerSecond: number;
  /** Rejected body bytes one source may add to the rejection log per second. */
  readonly rejectionBytesPerSecond: number;
  readonly adminToken: string | undefined;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** The config file given by `--config` / `INLET_CONFIG` (else `./inlet.config.json` if it exists). */
  readonly configFile: string | undefined;
  /** PEM certificate (chain) and key files: `serve` speaks HTTPS when both are given. */
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  /** Proxies (CIDR list) whose `X-Forwarded-For` names the client in logs and rejections; empty: none. */
  readonly trustProxy: string;
  /** `--retention`: `serve` prunes what is older than this once a day; undefined: kept for ever. */
  readonly retentionMs: number | undefined;
  /** Where succeeded outputs' files are copied (`--archive`); undefined: the archive is off. */
  readonly archive: ArchiveDestination | undefined;
  /** Hosts the archive may fetch from (`*.` wildcards), lower case. */
  readonly archiveHosts: readonly string[];
  readonly archiveMaxBytes: number;
  /** Inlet's own public origin (and path prefix), for the absolute links it hands out. */
  readonly publicUrl: string | undefined;
  /** Reconcile polls an object not terminal with no accepted delivery for this long (with a token). */
  readonly reconcileAfterMs: number;
  /** An `inlet listen` consumer that has not connected for this long is dropped. */
  readonly listenExpiryMs: number;
}

/** A value the user gave that cannot be used; `setting` names the flag or variable to change. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

/** How a setting is given and documented; its values and default are the schema's. */
export interface SettingMeta {
  /** Long flag without dashes, when the setting has one. */
  readonly flag?: string;
  /** The flag's value placeholder; absent for boolean switches. */
  readonly valueName?: string;
  readonly env?: readonly string[];
  /** The default as `--help` and the docs word it, when not the schema's default value itself. */
  readonly defaultText?: string;
  readonly description: string;
}

/** Every `serve` setting: drives the CLI flags and is checked against docs/configuration.md. */
export interface SettingSpec {
  readonly key: keyof ServeConfig;
  readonly flag?: string;
  readonly valueName?: string;
  readonly env?: readonly string[];
  readonly defaultText: string;
  readonly description: string;
}

/** The flags, variables and help of each setting of `ServeSettingsSchema`. */
const SETTING_META = z.registry<SettingMeta>();

function setting<T extends z.ZodType>(schema: T, meta: SettingMeta): T {
  const described = schema.describe(meta.description);
  SETTING_META.add(described, meta);
  return described;
}

const DURATION = z.string().refine((text) => parseDurationMs(text) !== undefined, DURATION_HINT);

/**
 * `serve`'s settings as written (flags, variables, and the coming config file): the one place their
 * names, ranges and defaults are stated. `parseServeConfig` reads each through it; `--help`, `dev` and
 * the other verbs' shared flags, `docs/configuration.md`'s test and `inlet config schema` derive from it.
 */
const ServeSettingsSchema = z.object({
  port: setting(z.int().min(0).max(65535).default(5000), {
    flag: 'port',
    valueName: 'port',
    env: ['PORT'],
    description: 'listen port (0 picks a free port and prints it)',
  }),
  host: setting(z.string().min(1).default('0.0.0.0'), {
    flag: 'host',
    valueName: 'host',
    env: ['HOST'],
    description: 'listen address',
  }),
  webhookPath: setting(z.string().default('/replicate-webhook'), {
    flag: 'path',
    valueName: 'path',
    env: ['INLET_WEBHOOK_PATH'],
    description: 'where Replicate POSTs',
  }),
  databaseUrl: setting(z.string().min(1).default('sqlite:./data/inlet.db'), {
    flag: 'database',
    valueName: 'url',
    env: ['DATABASE_URL'],
    description: '`sqlite:PATH`, a bare file path, or `postgres://…` / `postgresql://…`',
  }),
  secrets: setting(z.array(z.string()).optional(), {
    env: SECRET_ENV_NAMES,
    defaultText: 'none',
    description:
      'one or more `whsec_…` secrets separated by spaces or commas (rotation); the first variable set wins',
  }),
  toleranceSec: setting(
    z
      .int()
      .min(0)
      .max(10 * 365 * 24 * 3600)
      .default(300),
    {
      flag: 'tolerance',
      valueName: 'seconds',
      env: ['INLET_TOLERANCE_SECONDS'],
      description: 'allowed clock skew of `webhook-timestamp`, both directions; 0 turns the check off',
    },
  ),
  maxBodyBytes: setting(
    z
      .int()
      .min(1)
      .max(1024 * 1024 * 1024)
      .default(16 * 1024 * 1024),
    {
      flag: 'max-body',
      valueName: 'bytes',
      env: ['INLET_MAX_BODY_BYTES'],
      description: 'larger bodies get 413 `payload_too_large`',
    },
  ),
  maxInflightBytes: setting(
    z
      .int()
      .min(1)
      .max(64 * 1024 * 1024 * 1024)
      .default(128 * 1024 * 1024),
    {
      flag: 'max-inflight-bytes',
      valueName: 'bytes',
      env: ['INLET_MAX_INFLIGHT_BYTES'],
      description:
        'request body bytes held in memory at once, all connections together; a request that would pass it gets 503 `storage_unavailable` before its body is read',
    },
  ),
  acceptHexSignature: setting(z.boolean().default(false), {
    flag: 'accept-hex-signature',
    env: ['INLET_ACCEPT_HEX_SIGNATURE'],
    defaultText: 'off',
    description: "also accept the tutorial's `X-Replicate-Signature` hex scheme (env: `1`)",
  }),
  commitTimeoutMs: setting(z.int().min(1).max(600_000).default(5000), {
    flag: 'commit-timeout-ms',
    valueName: 'ms',
    env: ['INLET_COMMIT_TIMEOUT_MS'],
    description: 'longest wait for a commit before answering 503 `storage_unavailable`',
  }),
  logLevel: setting(z.enum(LOG_LEVELS).default('info'), {
    flag: 'log-level',
    valueName: 'level',
    env: ['INLET_LOG_LEVEL'],
    description: `one of ${LOG_LEVELS.join(', ')}`,
  }),
  logFormat: setting(z.enum(LOG_FORMATS).optional(), {
    flag: 'log-format',
    valueName: 'format',
    env: ['INLET_LOG_FORMAT'],
    defaultText: '`pretty` on a terminal, else `json`',
    description: 'one of pretty, json',
  }),
  insecureSkipVerify: setting(z.boolean().default(false), {
    flag: 'insecure-skip-verify',
    defaultText: 'off',
    description: 'development only: accept unsigned requests (warns loudly at start)',
  }),
  headersTimeoutMs: setting(z.int().min(100).max(3_600_000).default(10_000), {
    flag: 'headers-timeout-ms',
    valueName: 'ms',
    env: ['INLET_HEADERS_TIMEOUT_MS'],
    description: 'a client that has not sent all its request headers by then is cut off (slow clients)',
  }),
  requestTimeoutMs: setting(z.int().min(0).max(3_600_000).default(60_000), {
    flag: 'request-timeout-ms',
    valueName: 'ms',
    env: ['INLET_REQUEST_TIMEOUT_MS'],
    description:
      'a client that has not sent its whole request (headers and body) by then is cut off; 0 turns it off',
  }),
  configFile: setting(z.string().optional(), {
    flag: 'config',
    valueName: 'file',
    env: ['INLET_CONFIG'],
    defaultText: './inlet.config.json when it exists',
    description: 'the JSON config file (destinations); `inlet config schema` prints its JSON Schema',
  }),
  tlsCert: setting(z.string().optional(), {
    flag: 'tls-cert',
    valueName: 'file',
    env: ['INLET_TLS_CERT'],
    defaultText: 'none',
    description:
      'PEM certificate (with its chain): serve HTTPS directly, with --tls-key; SIGHUP reloads both',
  }),
  tlsKey: setting(z.string().optional(), {
    flag: 'tls-key',
    valueName: 'file',
    env: ['INLET_TLS_KEY'],
    defaultText: 'none',
    description: 'PEM private key of --tls-cert',
  }),
  trustProxy: setting(z.string().optional(), {
    flag: 'trust-proxy',
    valueName: 'cidrs',
    env: ['INLET_TRUST_PROXY'],
    defaultText: 'none',
    description:
      'proxies (CIDR[,CIDR…]) whose X-Forwarded-For gives the client address in logs and rejections; never opens the admin API',
  }),
  archive: setting(z.string().optional(), {
    flag: 'archive',
    valueName: 'dest',
    env: ['INLET_ARCHIVE'],
    defaultText: 'off',
    description:
      'copy the files of succeeded outputs to `file:DIR` or `s3://BUCKET/PREFIX` (S3_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)',
  }),
  archiveHosts: setting(z.string().default(DEFAULT_ARCHIVE_HOSTS.join(',')), {
    env: ['INLET_ARCHIVE_HOSTS'],
    description: 'the only hosts the archive fetches from: comma list of host names, `*.` wildcards',
  }),
  archiveMaxBytes: setting(
    z
      .int()
      .min(1)
      .max(5_000_000_000)
      .default(1024 * 1024 * 1024),
    {
      env: ['INLET_ARCHIVE_MAX_BYTES'],
      description: 'largest file the archive copies',
    },
  ),
  publicUrl: setting(z.string().optional(), {
    env: ['INLET_PUBLIC_URL'],
    defaultText: 'the request’s own host',
    description: 'the URL this Inlet is reached at, for the absolute links it hands out',
  }),
  reconcileAfterMs: setting(
    z
      .int()
      .min(1)
      .max(7 * 24 * 3600 * 1000)
      .default(120_000),
    {
      env: ['INLET_RECONCILE_AFTER_MS'],
      description:
        'with REPLICATE_API_TOKEN set, an object not terminal with no accepted delivery for this long is fetched from Replicate until it ends',
    },
  ),
  listenExpiryMs: setting(DURATION.default('7d'), {
    env: ['INLET_LISTEN_EXPIRY'],
    description:
      'an `inlet listen` that has not connected for this long is dropped (its position forgotten); a duration like 7d, 12h',
  }),
  maxRejections: setting(z.int().min(0).max(10_000_000).default(10_000), {
    env: ['INLET_MAX_REJECTIONS'],
    description: 'rejected requests kept, newest first (their bodies at most 256 MiB in all)',
  }),
  rejectionsPerSecond: setting(z.int().min(1).max(1_000_000).default(10), {
    flag: 'rejections-per-second',
    valueName: 'n',
    env: ['INLET_REJECTIONS_PER_SECOND'],
    description:
      'rejections one client address (IPv6: its /64) may add to the rejection log per second; beyond, they are only counted',
  }),
  rejectionBytesPerSecond: setting(
    z
      .int()
      .min(1)
      .max(1024 * 1024 * 1024)
      .default(256 * 1024),
    {
      flag: 'rejection-bytes-per-second',
      valueName: 'bytes',
      env: ['INLET_REJECTION_BYTES_PER_SECOND'],
      description:
        'rejected body bytes one client address may add to the rejection log per second; beyond, they are only counted',
    },
  ),
  adminToken: setting(z.string().optional(), {
    env: ['INLET_ADMIN_TOKEN'],
    defaultText: 'none',
    description: 'bearer token for `/api/*`; without it `/api/*` answers loopback clients only',
  }),
  retentionMs: setting(DURATION.optional(), {
    flag: 'retention',
    valueName: 'duration',
    env: ['INLET_RETENTION'],
    defaultText: 'off (kept for ever)',
    description:
      'once a day (first a minute after start), delete events, transitions, delivered messages and rejections older than this, like `inlet prune --older-than`; a duration like 30d',
  }),
});

type SettingKey = keyof typeof ServeSettingsSchema.shape;

function metaOf(key: SettingKey): SettingMeta {
  const meta = SETTING_META.get(ServeSettingsSchema.shape[key]);
  if (meta === undefined) throw new Error(`no setting ${key}`);
  return meta;
}

/** The schema's default of a setting (undefined when it has none: off, or worked out at start). */
function defaultOf(key: SettingKey): unknown {
  return ServeSettingsSchema.shape[key].parse(undefined);
}

/** The settings' defaults, as written (durations as text): for the core and the library, not restated. */
export const SETTING_DEFAULTS = Object.freeze(ServeSettingsSchema.parse({}));

/** `INLET_LISTEN_EXPIRY`'s default in milliseconds. */
export const DEFAULT_LISTEN_EXPIRY_MS = parseDurationMs(SETTING_DEFAULTS.listenExpiryMs)!;

export const SERVE_SETTINGS: readonly SettingSpec[] = (
  Object.keys(ServeSettingsSchema.shape) as SettingKey[]
).map((key) => {
  const meta = metaOf(key);
  return Object.freeze({
    key,
    ...meta,
    defaultText: meta.defaultText ?? String(defaultOf(key)),
  });
});

/** A serve setting's flag for another verb (`dev`, `migrate`, `worker`…), with that verb's wording. */
export function settingOption(key: SettingKey, description: string): [flags: string, help: string] {
  return optionOf(spec(key), description);
}

function optionOf(
  s: Pick<SettingSpec, 'flag' | 'valueName' | 'env' | 'defaultText'>,
  description: string,
): [flags: string, help: string] {
  if (s.flag === undefined) throw new Error(`${description}: no flag`);
  const flags = s.valueName ? `--${s.flag} <${s.valueName}>` : `--${s.flag}`;
  const env = s.env ? ` [env: ${s.env.join(', ')}]` : '';
  return [flags, `${description} (default: ${s.defaultText})${env}`];
}

/** `inlet dev`'s own setting, beside serve's (which it takes too). */
/** Where the emulator listens unless told otherwise (`inlet emulate --port`, `inlet dev --emulator-port`). */
export const EMULATOR_DEFAULT_PORT = 5555;

const EMULATOR_PORT = setting(z.int().min(0).max(65535).default(EMULATOR_DEFAULT_PORT), {
  flag: 'emulator-port',
  valueName: 'port',
  env: ['INLET_EMULATOR_PORT'],
  description: 'emulator port',
});

/** `inlet dev --emulator-port`'s flag and help. */
export const EMULATOR_PORT_OPTION = optionOf(
  { ...SETTING_META.get(EMULATOR_PORT)!, defaultText: String(EMULATOR_PORT.parse(undefined)) },
  'emulator port',
);

/** `--emulator-port`, else `INLET_EMULATOR_PORT`, else its default; throws `ConfigError` out of range. */
export function parseEmulatorPort(flags: ServeFlags, env: Env): number {
  const got = pick(flags, 'emulator-port', env, ['INLET_EMULATOR_PORT']);
  if (got === undefined) return EMULATOR_PORT.parse(undefined);
  const text = String(got.value);
  const port = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!EMULATOR_PORT.safeParse(port).success) {
    throw new ConfigError(got.setting, `${got.setting} must be a port from 0 to 65535; got "${text}".`);
  }
  return port;
}

/**
 * A flag-only setting (`emulate`'s, `verify`'s): its help and commander default come from the schema.
 * Returns `[flags, help, default]` for `.option(...)`.
 */
export function flagOption(schema: z.ZodType): [flags: string, help: string, defaultValue?: string] {
  const meta = SETTING_META.get(schema);
  if (meta?.flag === undefined) throw new Error('not a flag setting');
  const flags = meta.valueName ? `--${meta.flag} <${meta.valueName}>` : `--${meta.flag}`;
  const fallback = schema.parse(undefined) as number | string | undefined;
  const help =
    meta.defaultText === undefined ? meta.description : `${meta.description} (default: ${meta.defaultText})`;
  return fallback === undefined ? [flags, help] : [flags, help, String(fallback)];
}

/**
 * A number flag's text read through its schema (whole or decimal, the schema's range); `undefined`
 * gives the schema's default. Throws `ConfigError` naming the flag, the range and the text given.
 */
export function parseNumberFlag(schema: z.ZodType, text: string | undefined): number | undefined {
  const meta = SETTING_META.get(schema);
  const inner = unwrapped(schema);
  if (meta?.flag === undefined || !(inner instanceof z.ZodNumber))
    throw new Error('not a number flag setting');
  if (text === undefined) return schema.parse(undefined) as number | undefined;
  return numberWithin(`--${meta.flag}`, text, inner);
}

/** A schema without its default or optional wrapper. */
function unwrapped(schema: z.ZodType): z.ZodType {
  let inner = schema;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodOptional) inner = inner.unwrap() as z.ZodType;
  return inner;
}

/**
 * `text` read as a number `schema` allows (whole or decimal, within its range); otherwise a
 * `ConfigError` naming `setting`, the range and the text given. Every number setting is read here.
 */
function numberWithin(setting: string, text: string, schema: z.ZodNumber): number {
  const trimmed = text.trim();
  const pattern = schema.isInt ? /^\d+$/ : /^(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;
  const value = pattern.test(trimmed) ? Number(trimmed) : NaN;
  if (schema.safeParse(value).success) return value;
  const [min, max] = [schema.minValue, schema.maxValue];
  const range = schema.isInt
    ? `a whole number from ${min} to ${max}`
    : schema.safeParse(min).success
      ? `a number from ${min} to ${max}`
      : `a number greater than ${min} and at most ${max}`;
  throw new ConfigError(setting, `${setting} must be ${range}; got "${trimmed}".`);
}

/** `INLET_TIME_SCALE` and `inlet emulate --time-scale`: how much faster (or slower) waits run. */
const TIME_SCALE = z.number().gt(0).max(1000);

const DAY_MS = 24 * 3600 * 1000;
const fraction = (flag: string, description: string) =>
  setting(z.number().min(0).max(1).optional(), {
    flag,
    valueName: 'fraction',
    defaultText: '0',
    description,
  });

/** `inlet emulate`'s number flags: names, ranges and defaults stated once (docs/emulator.md). */
export const EmulateSettingsSchema = z.object({
  port: setting(z.int().min(0).max(65535).default(EMULATOR_DEFAULT_PORT), {
    flag: 'port',
    valueName: 'port',
    description: 'listen port (0 picks a free port and prints it)',
  }),
  timeScale: setting(TIME_SCALE.default(1), {
    flag: 'time-scale',
    valueName: 'x',
    description: 'multiply model timings, throttle, backoff, retry window and fault delays',
  }),
  retryWindowMs: setting(z.int().min(0).max(DAY_MS).default(60_000), {
    flag: 'retry-window-ms',
    valueName: 'ms',
    description: 'how long the terminal webhook is retried after completion',
  }),
  outputTtlMs: setting(
    z
      .int()
      .min(1)
      .max(365 * DAY_MS)
      .default(3_600_000),
    {
      flag: 'output-ttl-ms',
      valueName: 'ms',
      description: 'outputs, inputs, logs and files are removed this long after completion',
    },
  ),
  attemptTimeoutMs: setting(z.int().min(1).max(600_000).default(10_000), {
    flag: 'attempt-timeout-ms',
    valueName: 'ms',
    description: 'longest wait for a webhook answer',
  }),
  faultDrop: fraction('fault-drop', 'share of webhooks never sent (a dropped terminal one is lost)'),
  faultDuplicate: fraction('fault-duplicate', 'share of webhooks sent twice (same webhook-id)'),
  faultReorder: fraction('fault-reorder', 'share of intermediate webhooks sent after the next one'),
  faultDelay: fraction('fault-delay', 'share of webhooks held back for --fault-delay-ms'),
  faultDelayMs: setting(z.int().min(0).max(DAY_MS).default(2000), {
    flag: 'fault-delay-ms',
    valueName: 'ms',
    description: 'how long a delayed webhook waits (scaled by --time-scale)',
  }),
  faultRateLimit: fraction('fault-rate-limit', 'share of API calls answered 429 with Retry-After'),
  faultRetryAfter: setting(z.int().min(0).max(3600).default(1), {
    flag: 'fault-retry-after',
    valueName: 'seconds',
    description: 'Retry-After of a rate-limited answer',
  }),
  seed: setting(
    z
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .optional(),
    {
      flag: 'seed',
      valueName: 'n',
      defaultText: 'random',
      description: 'seed for the fault PRNG, printed at start',
    },
  ),
});

/** `inlet verify`'s clock check: serve's range, verify's wording. */
export const VerifySettingsSchema = z.object({
  toleranceSec: setting(ServeSettingsSchema.shape.toleranceSec.unwrap().default(300), {
    flag: 'tolerance',
    valueName: 'seconds',
    description: 'allowed clock skew, both directions; 0 skips the clock check',
  }),
});

/**
 * The JSON Schema of the settings of `serve` (the default), `emulate` or `verify`, values as written,
 * with each one's flag and variables.
 */
export function settingsJsonSchema(schema: z.ZodObject = ServeSettingsSchema): Record<string, unknown> {
  return z.toJSONSchema(schema, {
    io: 'input',
    target: 'draft-2020-12',
    override: (ctx) => {
      const meta = SETTING_META.get(ctx.zodSchema as unknown as z.ZodType);
      if (meta === undefined) return;
      if (meta.flag !== undefined) ctx.jsonSchema['x-flag'] = `--${meta.flag}`;
      if (meta.env !== undefined) ctx.jsonSchema['x-env'] = [...meta.env];
      if (meta.defaultText !== undefined) ctx.jsonSchema['x-default'] = meta.defaultText;
    },
  });
}

/** The archive `--archive` / `INLET_ARCHIVE` names (undefined: off), for `inlet prune`. */
export function parseArchiveSetting(flags: ServeFlags, env: Env): ArchiveDestination | undefined {
  return archiveSettings(flags, env).archive;
}

function trustProxySetting(flags: ServeFlags, env: Env): string {
  const value = stringSetting(flags, env, 'trustProxy').trim();
  try {
    new TrustedProxies(value);
  } catch (error) {
    throw new ConfigError('--trust-proxy', `--trust-proxy: ${(error as Error).message}.`);
  }
  return value;
}

/** `--archive` and the settings that go with it; the hosts and size are parsed even when it is off. */
function archiveSettings(
  flags: ServeFlags,
  env: Env,
): Pick<ServeConfig, 'archive' | 'archiveHosts' | 'archiveMaxBytes' | 'publicUrl'> {
  const dest = stringSetting(flags, env, 'archive').trim();
  let archive: ArchiveDestination | undefined;
  try {
    archive = dest === '' ? undefined : parseArchiveDestination(dest, env);
  } catch (error) {
    if (error instanceof ArchiveDestinationError) throw new ConfigError(error.setting, error.message);
    throw error;
  }
  const hostsText = stringSetting(flags, env, 'archiveHosts').trim();
  let archiveHosts: readonly string[] = DEFAULT_ARCHIVE_HOSTS;
  if (hostsText !== '') {
    try {
      archiveHosts = Object.freeze(parseHostList(hostsText));
    } catch (error) {
      throw new ConfigError('INLET_ARCHIVE_HOSTS', `INLET_ARCHIVE_HOSTS: ${(error as Error).message}.`);
    }
  }
  const archiveMaxBytes = intSetting(flags, env, 'archiveMaxBytes');
  const publicText = stringSetting(flags, env, 'publicUrl').trim();
  let publicUrl: string | undefined;
  if (publicText !== '') {
    let url: URL | undefined;
    try {
      url = new URL(publicText);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '') {
      throw new ConfigError(
        'INLET_PUBLIC_URL',
        `INLET_PUBLIC_URL must be an http(s) URL without a query (e.g. https://inlet.example.com); got "${publicText}".`,
      );
    }
    publicUrl = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  }
  return { archive, archiveHosts, archiveMaxBytes, publicUrl };
}

/** `--tls-cert` and `--tls-key` go together: one without the other is a configuration error. */
function tlsFiles(flags: ServeFlags, env: Env): Pick<ServeConfig, 'tlsCert' | 'tlsKey'> {
  const tlsCert = stringSetting(flags, env, 'tlsCert').trim() || undefined;
  const tlsKey = stringSetting(flags, env, 'tlsKey').trim() || undefined;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    const missing = tlsCert === undefined ? '--tls-cert' : '--tls-key';
    throw new ConfigError(missing, `${missing} is missing: HTTPS needs both --tls-cert and --tls-key.`);
  }
  return { tlsCert, tlsKey };
}

/** Values from command-line flags, as commander hands them over (strings and booleans). */
export type ServeFlags = Partial<Record<string, string | boolean | undefined>>;

/** Rejected bodies kept in all (not a setting). */
export const REJECTION_BODY_BUDGET_BYTES = 256 * 1024 * 1024;

/** Splits a secrets value on spaces or commas (rotation: several secrets at once). */
export function parseSecretList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(/[\s,]+/).filter((s) => s.length > 0);
}

/** `REPLICATE_WEBHOOK_SECRET`, else `REPLICATE_WEBHOOK_SIGNING_SECRET`; empty counts as unset. */
export function readSecretsFromEnv(env: Env): { secrets: string[]; source: string | undefined } {
  for (const name of SECRET_ENV_NAMES) {
    const secrets = parseSecretList(env[name]);
    if (secrets.length > 0) return { secrets, source: name };
  }
  return { secrets: [], source: undefined };
}

export const SECRET_HELP =
  'Set REPLICATE_WEBHOOK_SECRET to your Replicate webhook signing secret (whsec_…). Get it with: ' +
  'curl -s -H "Authorization: Bearer $REPLICATE_API_TOKEN" https://api.replicate.com/v1/webhooks/default/secret';

/**
 * Checks a webhook secret against the one rule (`secretProblem`): `whsec_` + base64 for the standard
 * scheme; with `hexAllowed` (the opt-in tutorial scheme) any non-empty string. The message names the
 * setting and the part of the rule that failed, never the secret.
 */
export function checkSecret(secret: string, setting: string, options: { hexAllowed?: boolean } = {}): void {
  const problem = secretProblem(secret);
  if (problem === undefined || (options.hexAllowed === true && secret !== '')) return;
  const hint =
    options.hexAllowed === undefined ? '' : ' (any other string works only with --accept-hex-signature)';
  throw new ConfigError(
    setting,
    `${setting}: a webhook secret must be "whsec_" followed by base64${hint}; this one is not: ${problem}.`,
  );
}

function pick(
  flags: ServeFlags,
  flag: string | undefined,
  env: Env,
  envNames: readonly string[] | undefined,
) {
  if (flag !== undefined) {
    const value = flags[camel(flag)];
    if (value !== undefined) return { value, setting: `--${flag}` };
  }
  for (const name of envNames ?? []) {
    const value = env[name];
    if (value !== undefined && value !== '') return { value, setting: name };
  }
  return undefined;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function spec(key: SettingKey): SettingSpec {
  const found = SERVE_SETTINGS.find((s) => s.key === key);
  if (found === undefined) throw new Error(`no setting ${key}`);
  return found;
}

/** The value schema of a setting, without its default or optional wrapper. */
function valueSchema(key: SettingKey): z.ZodType {
  return unwrapped(ServeSettingsSchema.shape[key]);
}

/** A whole-number setting in the schema's range; its default, or `fallback` when one is worked out. */
function intSetting(flags: ServeFlags, env: Env, key: SettingKey, fallback?: number): number {
  const s = spec(key);
  const schema = valueSchema(key);
  if (!(schema instanceof z.ZodNumber)) throw new Error(`${key} is not a number`);
  const got = pick(flags, s.flag, env, s.env);
  if (got === undefined) return fallback ?? (defaultOf(key) as number);
  return numberWithin(got.setting, String(got.value), schema);
}

/** A duration with units (`7d`, `12h`, `90m`), in milliseconds; the default when not given (or blank). */
function durationSetting(flags: ServeFlags, env: Env, key: SettingKey): number | undefined {
  const s = spec(key);
  const got = pick(flags, s.flag, env, s.env);
  const given = got === undefined || String(got.value).trim() === '' ? undefined : String(got.value);
  const parsed = ServeSettingsSchema.shape[key].safeParse(given);
  if (!parsed.success) {
    throw new ConfigError(got!.setting, `${got!.setting} must be ${DURATION_HINT}; got "${given}".`);
  }
  return parsed.data === undefined ? undefined : parseDurationMs(parsed.data as string);
}

function boolSetting(flags: ServeFlags, env: Env, key: SettingKey): boolean {
  const s = spec(key);
  const got = pick(flags, s.flag, env, s.env);
  if (got === undefined) return defaultOf(key) as boolean;
  if (typeof got.value === 'boolean') return got.value;
  const text = got.value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'false', 'no', 'off'].includes(text)) return false;
  throw new ConfigError(got.setting, `${got.setting} must be 1 or 0; got "${got.value}".`);
}

/** One of the schema's choices (lower case); its default, or `fallback` when one is worked out. */
function choiceSetting<T extends string>(flags: ServeFlags, env: Env, key: SettingKey, fallback?: T): T {
  const s = spec(key);
  const schema = valueSchema(key);
  if (!(schema instanceof z.ZodEnum)) throw new Error(`${key} is not a choice`);
  const got = pick(flags, s.flag, env, s.env);
  if (got === undefined) return fallback ?? (defaultOf(key) as T);
  const text = String(got.value).trim().toLowerCase();
  if (!schema.safeParse(text).success) {
    throw new ConfigError(
      got.setting,
      `${got.setting} must be one of ${schema.options.join(', ')}; got "${String(got.value)}".`,
    );
  }
  return text as T;
}

/** The text given, else the schema's default (`''` when it has none). */
function stringSetting(flags: ServeFlags, env: Env, key: SettingKey): string {
  const s = spec(key);
  const got = pick(flags, s.flag, env, s.env);
  if (got !== undefined) return String(got.value);
  const fallback = defaultOf(key);
  return typeof fallback === 'string' ? fallback : '';
}

export interface ParseServeOptions {
  /** Whether stdout is a terminal (picks the default log format). */
  isTty: boolean;
}

export function parseServeConfig(flags: ServeFlags, env: Env, options: ParseServeOptions): ServeConfig {
  const port = intSetting(flags, env, 'port');
  const host = stringSetting(flags, env, 'host').trim();
  if (host === '') throw new ConfigError('--host', '--host must not be empty.');
  const webhookPath = stringSetting(flags, env, 'webhookPath');
  if (
    !/^\/[A-Za-z0-9._~!$&'()+,;=@%/-]*$/.test(webhookPath) ||
    webhookPath.startsWith('/api/') ||
    ['/api', '/healthz', '/readyz', '/metrics'].includes(webhookPath)
  ) {
    throw new ConfigError(
      '--path',
      `--path must be a URL path starting with "/", not under /api nor /healthz, /readyz or /metrics; got "${webhookPath}".`,
    );
  }
  const databaseUrl = stringSetting(flags, env, 'databaseUrl').trim();
  const database = databaseTarget(databaseUrl);

  const { secrets, source } = readSecretsFromEnv(env);
  const acceptHexSignature = boolSetting(flags, env, 'acceptHexSignature');
  for (const secret of secrets) {
    checkSecret(secret, source ?? 'REPLICATE_WEBHOOK_SECRET', { hexAllowed: acceptHexSignature });
  }
  const insecureSkipVerify = boolSetting(flags, env, 'insecureSkipVerify');
  if (secrets.length === 0 && !insecureSkipVerify) {
    throw new ConfigError(
      'REPLICATE_WEBHOOK_SECRET',
      `No webhook secret: REPLICATE_WEBHOOK_SECRET is not set. ${SECRET_HELP}`,
    );
  }

  const logLevel = choiceSetting<LogLevel>(flags, env, 'logLevel');
  const logFormat = choiceSetting<LogFormat>(flags, env, 'logFormat', options.isTty ? 'pretty' : 'json');
  const adminToken = stringSetting(flags, env, 'adminToken');

  const maxBodyBytes = intSetting(flags, env, 'maxBodyBytes');
  const maxInflightBytes = intSetting(
    flags,
    env,
    'maxInflightBytes',
    Math.max(defaultOf('maxInflightBytes') as number, 2 * maxBodyBytes),
  );
  if (maxInflightBytes < 2 * maxBodyBytes) {
    throw new ConfigError(
      '--max-inflight-bytes',
      `--max-inflight-bytes (${maxInflightBytes}) must be at least twice --max-body (${maxBodyBytes}): a body of unknown length counts twice while it is joined, so a smaller bound could refuse a body of the largest allowed size forever.`,
    );
  }

  return Object.freeze({
    port,
    host,
    webhookPath,
    databaseUrl,
    database,
    secrets: Object.freeze(secrets),
    toleranceSec: intSetting(flags, env, 'toleranceSec'),
    maxBodyBytes,
    maxInflightBytes,
    acceptHexSignature,
    commitTimeoutMs: intSetting(flags, env, 'commitTimeoutMs'),
    logLevel,
    logFormat,
    insecureSkipVerify,
    maxRejections: intSetting(flags, env, 'maxRejections'),
    rejectionBodyBudgetBytes: REJECTION_BODY_BUDGET_BYTES,
    rejectionsPerSecond: intSetting(flags, env, 'rejectionsPerSecond'),
    rejectionBytesPerSecond: intSetting(flags, env, 'rejectionBytesPerSecond'),
    adminToken: adminToken === '' ? undefined : adminToken,
    headersTimeoutMs: intSetting(flags, env, 'headersTimeoutMs'),
    requestTimeoutMs: intSetting(flags, env, 'requestTimeoutMs'),
    configFile: stringSetting(flags, env, 'configFile').trim() || undefined,
    ...tlsFiles(flags, env),
    trustProxy: trustProxySetting(flags, env),
    retentionMs: durationSetting(flags, env, 'retentionMs'),
    ...archiveSettings(flags, env),
    reconcileAfterMs: parseReconcileAfterMs(flags, env),
    listenExpiryMs: durationSetting(flags, env, 'listenExpiryMs')!,
  });
}

/** `INLET_RECONCILE_AFTER_MS`, for `serve` and `inlet reconcile`. */
export function parseReconcileAfterMs(flags: ServeFlags, env: Env): number {
  return intSetting(flags, env, 'reconcileAfterMs');
}

/**
 * `inlet predict`'s default webhook: `INLET_PUBLIC_URL` plus the webhook path (`INLET_WEBHOOK_PATH`);
 * undefined without a public URL.
 */
export function defaultWebhookUrl(env: Env): string | undefined {
  const publicText = stringSetting({}, env, 'publicUrl').trim();
  if (publicText === '') return undefined;
  let url: URL | undefined;
  try {
    url = new URL(publicText);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ConfigError(
      'INLET_PUBLIC_URL',
      `INLET_PUBLIC_URL must be an http(s) URL; got "${publicText}".`,
    );
  }
  const path = stringSetting({}, env, 'webhookPath');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}${path.startsWith('/') ? path : `/${path}`}`;
}

/**
 * `INLET_TIME_SCALE`: multiplies the runner's retry delays and `Retry-After` waits (tests and demos run
 * a day-long schedule in seconds). Default 1.
 */
export function parseTimeScale(env: Env): number {
  const text = env.INLET_TIME_SCALE?.trim();
  if (text === undefined || text === '') return 1;
  return numberWithin('INLET_TIME_SCALE', text, TIME_SCALE);
}

/** The database for the verbs that open one (`inlet predictions`, `inlet migrate`, `inlet worker`…). */
export function parseDatabaseSetting(flags: ServeFlags, env: Env): DatabaseTarget {
  return databaseTarget(stringSetting(flags, env, 'databaseUrl').trim());
}

/** `--database` / `DATABASE_URL` parsed into the store to open: the one place its errors are worded. */
function databaseTarget(url: string): DatabaseTarget {
  if (url === '') throw new ConfigError('--database', '--database must not be empty.');
  try {
    return parseDatabaseUrl(url);
  } catch (error) {
    if (error instanceof InvalidDatabaseUrlError) {
      throw new ConfigError('--database', `--database: ${error.message}`);
    }
    throw error;
  }
}
