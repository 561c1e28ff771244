import type { Command } from 'commander';
import { ConfigError, SECRET_HELP, checkSecret, parseSecretList, readSecretsFromEnv } from '../config.js';
import { verifyWebhook } from '../verify/index.js';
import { type CliContext, EXIT_CHECK_FAILED, EXIT_OK, println, readBodyArg } from './context.js';

export const SECRET_OPTION = [
  '--secret <secrets>',
  'whsec_… secret(s), separated by spaces or commas [env: REPLICATE_WEBHOOK_SECRET, REPLICATE_WEBHOOK_SIGNING_SECRET]',
] as const;

const DEFAULT_TOLERANCE_SEC = 300;
const MAX_TOLERANCE_SEC = 10 * 365 * 24 * 3600;

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

function parseTolerance(value: string): number {
  const text = value.trim();
  const seconds = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds > MAX_TOLERANCE_SEC) {
    throw new ConfigError(
      '--tolerance',
      `--tolerance must be a whole number of seconds from 0 to ${MAX_TOLERANCE_SEC} (0 skips the clock check); got "${value}".`,
    );
  }
  return seconds;
}

interface VerifyFlags {
  secret?: string;
  id?: string;
  timestamp?: string;
  signature?: string;
  tolerance: string;
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
      '--tolerance <seconds>',
      'allowed clock skew, both directions; 0 skips the clock check',
      String(DEFAULT_TOLERANCE_SEC),
    )
    .action(async (file: string | undefined, flags: VerifyFlags) => {
      await runVerify(file, flags, ctx);
    });
}

async function runVerify(file: string | undefined, flags: VerifyFlags, ctx: CliContext): Promise<void> {
  const secrets = resolveSecrets(flags.secret, ctx);
  const toleranceSec = parseTolerance(flags.tolerance);
  const body = await readBodyArg(file, ctx);
  const headers = {
    'webhook-id': flags.id,
    'webhook-timestamp': flags.timestamp,
    'webhook-signature': flags.signature,
  };
  const result = verifyWebhook(body, headers, { secrets, toleranceSec });
  if (result.ok) {
    println(ctx.stdout, 'valid');
    ctx.setExitCode(EXIT_OK);
    return;
  }
  println(ctx.stdout, `invalid: ${result.code} — ${result.message}`);
  ctx.setExitCode(EXIT_CHECK_FAILED);
}
