import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  ConfigError,
  SECRET_HELP,
  VerifySettingsSchema,
  checkSecret,
  flagOption,
  parseNumberFlag,
  parseSecretList,
  readSecretsFromEnv,
} from '../config.js';
import { verifyWebhook } from '../verify/index.js';
import { type CliContext, EXIT_CHECK_FAILED, EXIT_OK, println, readBodyArg } from './context.js';

export const SECRET_OPTION = [
  '--secret <secrets>',
  'whsec_… secret(s), separated by spaces or commas [env: REPLICATE_WEBHOOK_SECRET, REPLICATE_WEBHOOK_SIGNING_SECRET]',
] as const;

/** `--secret`, else the environment (CONTRACT §6); every secret must be usable. */
export function resolveSecrets(flag: string | undefined, ctx: CliContext): string[] {
  if (flag !== undefined) {
    const secrets = parseSecretList(flag);
    if (secrets.length === 0) {
      throw new ConfigError(
        '--secret',
        '--secret is empty: pass a whsec_… secret, or leave the flag out to use REPLICATE_WEBHOOK_SECRET.',
      );
    }
    for (const secret of secrets) checkSecret(secret, '--secret');
    return secrets;
  }
  const { secrets, source } = readSecretsFromEnv(ctx.env);
  if (source === undefined) {
    throw new ConfigError(
      'REPLICATE_WEBHOOK_SECRET',
      `No webhook secret: --secret is not given and REPLICATE_WEBHOOK_SECRET is not set. ${SECRET_HELP}`,
    );
  }
  for (const secret of secrets) checkSecret(secret, source);
  return secrets;
}

interface VerifyFlags {
  secret?: string;
  id?: string;
  timestamp?: string;
  signature?: string;
  headers?: string;
  tolerance: string;
}

const WEBHOOK_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;
type WebhookHeaders = Partial<Record<(typeof WEBHOOK_HEADERS)[number], string>>;

/**
 * The `webhook-*` headers of a file of `name: value` lines: what `inlet sign` prints, or headers copied
 * from a log or `curl -v` (`> ` prefixes and other headers are skipped). Names are case-insensitive.
 */
function parseHeadersText(text: string): WebhookHeaders {
  const found: WebhookHeaders = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^[<>]\s*/, '');
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if ((WEBHOOK_HEADERS as readonly string[]).includes(name)) {
      found[name as keyof WebhookHeaders] = line.slice(colon + 1).trim();
    }
  }
  return found;
}

async function readHeadersFile(path: string): Promise<WebhookHeaders> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError('--headers', `--headers: cannot read ${path} (${code}).`);
  }
  const headers = parseHeadersText(text);
  if (Object.keys(headers).length === 0) {
    throw new ConfigError(
      '--headers',
      `--headers: ${path} holds no webhook-id, webhook-timestamp or webhook-signature line ("name: value", as \`inlet sign\` prints them).`,
    );
  }
  return headers;
}

export function registerVerifyCommand(program: Command, ctx: CliContext): void {
  program
    .command('verify')
    .description(
      'check the signature of a delivery offline; prints "valid" (exit 0) or the failure code (exit 1)',
    )
    .argument('[file]', 'the raw body as received; "-" or nothing reads stdin')
    .option(...SECRET_OPTION)
    .option('--id <id>', 'the webhook-id header')
    .option('--timestamp <seconds>', 'the webhook-timestamp header')
    .option('--signature <signature>', 'the webhook-signature header (space-separated v1,<base64> entries)')
    .option(
      '--headers <file>',
      'read the three webhook-* headers from a file of "name: value" lines (what `inlet sign` prints); flags win',
    )
    .option(...flagOption(VerifySettingsSchema.shape.toleranceSec))
    .action(async (file: string | undefined, flags: VerifyFlags) => {
      await runVerify(file, flags, ctx);
    });
}

async function runVerify(file: string | undefined, flags: VerifyFlags, ctx: CliContext): Promise<void> {
  const secrets = resolveSecrets(flags.secret, ctx);
  const toleranceSec = parseNumberFlag(VerifySettingsSchema.shape.toleranceSec, flags.tolerance) ?? 0;
  const fromFile = flags.headers === undefined ? {} : await readHeadersFile(flags.headers);
  const body = await readBodyArg(file, ctx);
  const headers = {
    'webhook-id': flags.id ?? fromFile['webhook-id'],
    'webhook-timestamp': flags.timestamp ?? fromFile['webhook-timestamp'],
    'webhook-signature': flags.signature ?? fromFile['webhook-signature'],
  };
  const result = verifyWebhook(body, headers, { secrets, toleranceSec });
  if (result.ok) {
    println(ctx.stdout, 'valid');
    ctx.setExitCode(EXIT_OK);
    return;
  }
  println(ctx.stdout, `invalid: ${result.code} — ${result.message}`);
  if (Object.values(headers).every((value) => value === undefined || value === '')) {
    println(
      ctx.stdout,
      'No headers were given: pass --id, --timestamp and --signature, or --headers FILE with the lines `inlet sign` prints.',
    );
  }
  ctx.setExitCode(EXIT_CHECK_FAILED);
}
