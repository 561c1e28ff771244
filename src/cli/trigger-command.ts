import type { Command } from 'commander';
import {
  checkSecret,
  EMULATOR_DEFAULT_PORT,
  readSecretsFromEnv,
  SECRET_HELP,
  SETTING_DEFAULTS,
} from '../config.js';
import {
  FAKE_MODELS,
  FORCED_STATUSES,
  isWebhookEvent,
  postOnce,
  simulatePrediction,
  WEBHOOK_EVENTS,
  type ForcedStatus,
  type WebhookEvent,
} from '../emulator/index.js';
import { newMessageId, signWebhook } from '../verify/index.js';
import { type CliContext, EXIT_CHECK_FAILED, EXIT_OK, UsageError, println } from './context.js';

const DEFAULT_TRIGGER_URL = `http://127.0.0.1:${SETTING_DEFAULTS.port}${SETTING_DEFAULTS.webhookPath}`;
/** Where the sample prediction's own URLs (files, get) point: a default `inlet emulate`. */
const SAMPLE_ORIGIN = `http://127.0.0.1:${EMULATOR_DEFAULT_PORT}`;
const ATTEMPT_TIMEOUT_MS = 10_000;
const MAX_PRINTED_BODY = 300;

interface TriggerFlags {
  secret?: string;
  model: string;
  status?: string;
  events: string;
  id?: string;
}

function shortNames(): string {
  return FAKE_MODELS.map((m) => m.name.replace(/^inlet\//, '')).join(', ');
}

function parseEvents(text: string): WebhookEvent[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const bad = names.filter((n) => !isWebhookEvent(n));
  if (names.length === 0 || bad.length > 0) {
    throw new UsageError(`--events must be a comma list of ${WEBHOOK_EVENTS.join(', ')}; got "${text}".`);
  }
  return [...new Set(names)] as WebhookEvent[];
}

export function registerTriggerCommand(program: Command, ctx: CliContext): void {
  program
    .command('trigger')
    .description(
      "send one prediction's realistic, signed webhook sequence to a receiver (like `stripe trigger`)",
    )
    .argument('[url]', 'where to send it', DEFAULT_TRIGGER_URL)
    .option(
      '--secret <whsec>',
      'signing secret [env: REPLICATE_WEBHOOK_SECRET, REPLICATE_WEBHOOK_SIGNING_SECRET]',
    )
    .option('--model <name>', `fake model: ${shortNames()}`, 'echo')
    .option('--status <status>', `how it ends: ${FORCED_STATUSES.join(', ')} (default: the model's own end)`)
    .option('--events <list>', 'webhook_events_filter, a comma list', WEBHOOK_EVENTS.join(','))
    .option('--id <id>', 'prediction id (default: a new random one)')
    .action(async (url: string, flags: TriggerFlags) => {
      await runTrigger(url, flags, ctx);
    });
}

async function runTrigger(url: string, flags: TriggerFlags, ctx: CliContext): Promise<void> {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new UsageError(`The URL must be an http(s) URL; got "${url}".`);
  }
  let secret = flags.secret;
  let secretSetting = '--secret';
  if (secret === undefined) {
    const fromEnv = readSecretsFromEnv(ctx.env);
    secret = fromEnv.secrets[0];
    secretSetting = fromEnv.source ?? '--secret';
  }
  if (secret === undefined || secret === '') {
    throw new UsageError(`No webhook secret: pass --secret or set REPLICATE_WEBHOOK_SECRET. ${SECRET_HELP}`);
  }
  checkSecret(secret, secretSetting);
  const modelName = flags.model.includes('/') ? flags.model : `inlet/${flags.model}`;
  const model = FAKE_MODELS.find((m) => m.name === modelName);
  if (model === undefined)
    throw new UsageError(`--model must be one of ${shortNames()}; got "${flags.model}".`);
  let status: ForcedStatus | undefined;
  if (flags.status !== undefined) {
    if (!(FORCED_STATUSES as readonly string[]).includes(flags.status)) {
      throw new UsageError(`--status must be one of ${FORCED_STATUSES.join(', ')}; got "${flags.status}".`);
    }
    status = flags.status as ForcedStatus;
    if (model.name === 'inlet/fail' && status === 'succeeded') {
      throw new UsageError('--model fail always fails: use another --model for --status succeeded.');
    }
  }
  const events = parseEvents(flags.events);
  if (flags.id !== undefined && !/^[A-Za-z0-9_-]+$/.test(flags.id)) {
    throw new UsageError(`--id must hold only letters, digits, "-" and "_"; got "${flags.id}".`);
  }

  const { record, webhooks } = simulatePrediction({
    model,
    origin: SAMPLE_ORIGIN,
    webhook: url,
    events,
    endAtMs: Date.now(),
    ...(status === undefined ? {} : { status }),
    ...(flags.id === undefined ? {} : { id: flags.id }),
  });
  println(
    ctx.stdout,
    `Sending ${webhooks.length} webhook${webhooks.length === 1 ? '' : 's'} for prediction ${record.id} ` +
      `(${model.name}, ${record.status}) to ${url}`,
  );
  let allOk = true;
  for (const webhook of webhooks) {
    const id = newMessageId();
    const headers = signWebhook(webhook.body, { secret, id, timestampSec: Math.floor(Date.now() / 1000) });
    const result = await postOnce(
      url,
      webhook.body,
      { 'content-type': 'application/json', 'user-agent': 'inlet-trigger', ...headers },
      { timeoutMs: ATTEMPT_TIMEOUT_MS },
    );
    const label = `${webhook.event.padEnd(9)} ${webhook.status.padEnd(10)} ${id}`;
    if (!result.ok) {
      allOk = false;
      if (result.reason === 'connection') {
        println(ctx.stdout, `${label} -> no connection`);
        println(
          ctx.stderr,
          `inlet: cannot reach ${url} (${result.error}). Is a receiver (inlet serve) listening there?`,
        );
        ctx.setExitCode(EXIT_CHECK_FAILED);
        return;
      }
      println(ctx.stdout, `${label} -> ${result.error}`);
      continue;
    }
    const body = result.body.replace(/\s+/g, ' ').trim();
    const shown = body.length > MAX_PRINTED_BODY ? `${body.slice(0, MAX_PRINTED_BODY)}…` : body;
    println(ctx.stdout, `${label} -> ${result.status} ${shown}`);
    if (result.status < 200 || result.status >= 300) allOk = false;
  }
  ctx.setExitCode(allOk ? EXIT_OK : EXIT_CHECK_FAILED);
}
