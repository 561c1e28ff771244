/**
 * The config file (CONTRACT §9): `--config FILE`, else `INLET_CONFIG`, else `./inlet.config.json` when
 * it exists. One zod schema validates it and gives `inlet config schema` its JSON Schema.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, EmulateSettingsSchema, VerifySettingsSchema, settingsJsonSchema } from './config.js';
import { CONFIG_ERROR_CODE } from './errors.js';
import { DestinationSchema, type DestinationConfig } from './jobs/destination-config.js';

const DEFAULT_CONFIG_FILE = 'inlet.config.json';

const ConfigFileSchema = z
  .strictObject({
    $schema: z.string().optional().describe('The JSON Schema this file follows (editors use it).'),
    destinations: z
      .array(DestinationSchema)
      .default([])
      .check((ctx) => {
        const seen = new Set<string>();
        ctx.value.forEach((destination, i) => {
          if (seen.has(destination.name)) {
            ctx.issues.push({
              code: 'custom',
              message: `the name "${destination.name}" is used twice`,
              input: destination.name,
              path: [i, 'name'],
            });
          }
          seen.add(destination.name);
        });
      })
      .describe('Where every matching transition is sent, signed and retried.'),
  })
  .describe('Inlet config file (inlet.config.json).');

export type ConfigFile = z.output<typeof ConfigFileSchema>;

export interface LoadedConfigFile {
  /** Absolute path of the file read; undefined when none was given and the default does not exist. */
  path: string | undefined;
  destinations: DestinationConfig[];
}

/**
 * The config file's JSON Schema (draft 2020-12), as `inlet config schema` prints it. `$defs.serve`,
 * `$defs.emulate` and `$defs.verify` are those verbs' settings (with each one's flag and variables):
 * not yet keys of the file, ready for them.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigFileSchema, { io: 'input', target: 'draft-2020-12' });
  const defs = (settings?: z.ZodObject) => {
    const { $schema: _, ...rest } = settingsJsonSchema(settings);
    return rest;
  };
  return {
    ...schema,
    $defs: {
      ...schema.$defs,
      serve: defs(),
      emulate: defs(EmulateSettingsSchema),
      verify: defs(VerifySettingsSchema),
    },
  };
}

/** An `invalid_config` failure at start: exit 2 with this message. */
class InvalidConfigError extends ConfigError {
  readonly code = CONFIG_ERROR_CODE;
  constructor(path: string, detail: string) {
    super('config', `${CONFIG_ERROR_CODE}: ${path}: ${detail}`);
  }
}

/** Which file to read: the flag, else `INLET_CONFIG`, else the default in `cwd` if it exists. */
function configFilePath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
): { path: string; required: boolean } | undefined {
  if (flag !== undefined && flag !== '') return { path: resolve(cwd, flag), required: true };
  const fromEnv = env.INLET_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return { path: resolve(cwd, fromEnv), required: true };
  const fallback = resolve(cwd, DEFAULT_CONFIG_FILE);
  return existsSync(fallback) ? { path: fallback, required: false } : undefined;
}

/** Reads, substitutes `${NAME}` from `env`, and validates the config file. Throws `InvalidConfigError`. */
export function loadConfigFile(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
): LoadedConfigFile {
  const where = configFilePath(flag, env, cwd);
  if (where === undefined) return { path: undefined, destinations: [] };
  let text: string;
  try {
    text = readFileSync(where.path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidConfigError(
      where.path,
      code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(error)})`,
    );
  }
  return { path: where.path, destinations: parseConfigText(text, env, where.path).destinations };
}

/** Parses a config file's text (exported for tests and `inlet config check`). */
function parseConfigText(text: string, env: NodeJS.ProcessEnv, path: string): ConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidConfigError(path, `not valid JSON (${(error as Error).message})`);
  }
  const substituted = substituteEnv(json, env, path, '$');
  const parsed = ConfigFileSchema.safeParse(substituted);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = jsonPath(issue.path);
    const detail =
      issue.code === 'unrecognized_keys'
        ? `unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')} at ${at}`
        : `${at}: ${issue.message}`;
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : '';
    throw new InvalidConfigError(path, `${detail}${more}`);
  }
  return parsed.data;
}

/** `$.destinations[0].url` */
function jsonPath(path: readonly PropertyKey[]): string {
  return (
    '$' +
    path
      .map((part) =>
        typeof part === 'number'
          ? `[${part}]`
          : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(String(part))
            ? `.${String(part)}`
            : `[${JSON.stringify(String(part))}]`,
      )
      .join('')
  );
}

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, file: string, at: string): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REFERENCE, (_match, name: string) => {
      const replacement = env[name];
      if (replacement === undefined) {
        throw new InvalidConfigError(file, `${at} names the environment variable ${name}, which is not set`);
      }
      return replacement;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteEnv(item, env, file, `${at}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        substituteEnv(item, env, file, jsonPath([key]).replace('$', at)),
      ]),
    );
  }
  return value;
}
