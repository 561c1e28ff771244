import type { Command } from 'commander';
import { ConfigError } from '../config.js';
import { messageIdProblem, newMessageId, signWebhook } from '../verify/index.js';
import { type CliContext, EXIT_OK, println, readBodyArg } from './context.js';
import { SECRET_OPTION, resolveSecrets } from './verify-command.js';

interface SignFlags {
  secret?: string;
  id?: string;
  timestamp?: string;
}

export function registerSignCommand(program: Command, ctx: CliContext): void {
  program
    .command('sign')
    .description(
      'print the webhook-id, webhook-timestamp and webhook-signature headers Replicate would send for a body',
    )
    .argument('[file]', 'the raw body; "-" or nothing reads stdin')
    .option(...SECRET_OPTION)
    .option('--id <id>', 'the webhook-id (default: a fresh msg_… id)')
    .option('--timestamp <seconds>', 'Unix seconds (default: now)')
    .action(async (file: string | undefined, flags: SignFlags) => {
      await runSign(file, flags, ctx);
    });
}

function parseTimestamp(value: string | undefined): number {
  if (value === undefined) return Math.floor(Date.now() / 1000);
  const text = value.trim();
  const seconds = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(seconds)) {
    throw new ConfigError(
      '--timestamp',
      `--timestamp must be a whole number of Unix seconds; got "${value}".`,
    );
  }
  return seconds;
}

async function runSign(file: string | undefined, flags: SignFlags, ctx: CliContext): Promise<void> {
  const secrets = resolveSecrets(flags.secret, ctx);
  const id = flags.id ?? newMessageId();
  const problem = messageIdProblem(id);
  if (problem !== undefined) throw new ConfigError('--id', `--id ${problem}.`);
  const timestampSec = parseTimestamp(flags.timestamp);
  const body = await readBodyArg(file, ctx);
  // With several secrets (rotation) the header lists one entry per secret, as Standard Webhooks allows.
  const signed = secrets.map((secret) => signWebhook(body, { secret, id, timestampSec }));
  const first = signed[0];
  if (first === undefined) throw new ConfigError('--secret', 'No webhook secret to sign with.');
  println(ctx.stdout, `webhook-id: ${first['webhook-id']}`);
  println(ctx.stdout, `webhook-timestamp: ${first['webhook-timestamp']}`);
  println(ctx.stdout, `webhook-signature: ${signed.map((s) => s['webhook-signature']).join(' ')}`);
  ctx.setExitCode(EXIT_OK);
}
