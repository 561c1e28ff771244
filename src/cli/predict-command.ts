import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { defaultWebhookUrl, settingOption, type ServeFlags } from '../config.js';
import { outputPreview } from '../ingest/output-preview.js';
import { pollDelayMs } from '../reconcile/backoff.js';
import { logRetries } from '../reconcile/index.js';
import type { ReplicateApiConfig } from '../replicate/api-config.js';
import { ReplicateClient } from '../replicate/client.js';
import { isTerminalStatus } from '../replicate/status.js';
import type { ReplicateObject } from '../replicate/types.js';
import type { Store } from '../store/types.js';
import {
  type CliContext,
  CommandFailedError,
  EXIT_CHECK_FAILED,
  EXIT_OK,
  UsageError,
  println,
} from './context.js';
import { openCliStore } from './open-store.js';
import { reason, replicateApiOrExit } from './secret-command.js';

export const WEBHOOK_EVENTS = ['start', 'output', 'logs', 'completed'] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];

type PredictFlags = ServeFlags & {
  input?: string[];
  webhookUrl?: string;
  events?: string;
  wait?: boolean;
};

/** How often `--wait` reads the database (a local read, cheap). */
const WAIT_READ_MS = 200;

const MIME_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.flac': 'audio/flac',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.txt': 'text/plain',
  '.json': 'application/json',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.tar': 'application/x-tar',
};

/** A `-i` value: JSON when it parses as JSON (numbers, booleans, arrays…), else the text as a string. */
export function parseInputValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A file as a data URL (`data:<type>;base64,…`), as Replicate's clients send files without an upload. */
function fileDataUrl(path: string, bytes: Buffer): string {
  const type = MIME_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
  return `data:${type};base64,${bytes.toString('base64')}`;
}

/**
 * `-i key=value` and `-i key=@file` into the input object; a repeated key is a usage error.
 * `read` is injected so tests need no files.
 */
export async function parseInputArgs(
  args: readonly string[],
  read: (path: string) => Promise<Buffer> = (path) => readFile(path),
): Promise<Record<string, unknown>> {
  const input: Record<string, unknown> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? '' : arg.slice(0, eq).trim();
    if (key === '') throw new UsageError(`-i takes key=value or key=@file; got "${arg}".`);
    if (Object.hasOwn(input, key)) throw new UsageError(`-i ${key} is given twice.`);
    const value = arg.slice(eq + 1);
    if (value.startsWith('@') && value.length > 1) {
      const path = value.slice(1);
      let bytes: Buffer;
      try {
        bytes = await read(path);
      } catch (error) {
        throw new UsageError(
          `-i ${key}=@${path}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)}).`,
        );
      }
      input[key] = fileDataUrl(path, bytes);
    } else {
      input[key] = parseInputValue(value);
    }
  }
  return input;
}

/** `--events start,output,logs,completed`; `completed` is always added (the result must come). */
export function parseEvents(text: string | undefined): WebhookEventName[] {
  if (text === undefined) return [...WEBHOOK_EVENTS];
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const name of names) {
    if (!(WEBHOOK_EVENTS as readonly string[]).includes(name)) {
      throw new UsageError(`--events: "${name}" is not one of ${WEBHOOK_EVENTS.join(', ')}.`);
    }
  }
  const chosen = new Set([...names, 'completed']);
  return WEBHOOK_EVENTS.filter((e) => chosen.has(e));
}

/** `--webhook-url`, else `INLET_PUBLIC_URL` + the webhook path; neither is a usage error. */
export function webhookUrlOf(flag: string | undefined, env: CliContext['env']): string {
  if (flag !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(flag);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new UsageError(`--webhook-url must be an http(s) URL; got "${flag}".`);
    }
    return flag;
  }
  const url = defaultWebhookUrl(env);
  if (url === undefined) {
    throw new UsageError(
      'No webhook URL: give --webhook-url URL, or set INLET_PUBLIC_URL to the address Replicate reaches this Inlet at (the webhook path is added).',
    );
  }
  return url;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerPredictCommand(program: Command, ctx: CliContext): void {
  program
    .command('predict')
    .description(
      'create a prediction on Replicate with its webhook pointing at Inlet, record it for reconciling, and print its id',
    )
    .argument('<model>', 'owner/name, or owner/name:version')
    .option(
      '-i, --input <key=value>',
      'an input (JSON when it parses, else a string); key=@file sends a file',
      collect,
    )
    .option(
      '--webhook-url <url>',
      'where Replicate sends the webhooks (default: INLET_PUBLIC_URL + the webhook path)',
    )
    .option('--events <list>', 'webhook events: start,output,logs,completed (completed always included)')
    .option(
      '--wait',
      'show progress as Inlet receives it until the prediction ends (exit 0 succeeded, 1 otherwise)',
    )
    .option(...settingOption('databaseUrl', 'the database'))
    .action(async (model: string, flags: PredictFlags) => {
      ctx.setExitCode(await runPredict(model, flags, ctx));
    });
}

async function runPredict(model: string, flags: PredictFlags, ctx: CliContext): Promise<number> {
  if (!/^[^/\s:]+\/[^/\s:]+(:[^\s:]+)?$/.test(model)) {
    throw new UsageError(`MODEL must be owner/name or owner/name:version; got "${model}".`);
  }
  const api = replicateApiOrExit(ctx.env);
  const webhook = webhookUrlOf(flags.webhookUrl, ctx.env);
  const events = parseEvents(flags.events);
  const input = await parseInputArgs(flags.input ?? []);
  // Opened first: a prediction that cannot be recorded is better not created.
  const store = await openCliStore(flags, ctx, 'create');
  try {
    const created = await createPrediction(api, ctx, { model, input, webhook, events });
    const now = Date.now();
    await store.recover.track({
      id: created.id,
      kind: 'prediction',
      source: 'predict',
      createdAtMs: now,
      nextPollAtMs: now + pollDelayMs(0, api.timeScale),
    });
    println(ctx.stdout, created.id);
    if (flags.wait !== true) return EXIT_OK;
    return await waitForEnd(store, created, ctx);
  } finally {
    await store.close();
  }
}

async function createPrediction(
  api: ReplicateApiConfig,
  ctx: CliContext,
  request: { model: string; input: Record<string, unknown>; webhook: string; events: WebhookEventName[] },
): Promise<ReplicateObject> {
  const stderrLogger = {
    info: () => undefined,
    error: () => undefined,
    warn: (_: object, msg?: string) => println(ctx.stderr, msg ?? ''),
  };
  const client = new ReplicateClient(api, { onRetry: logRetries(stderrLogger) });
  try {
    return await client.createPrediction({
      model: request.model,
      input: request.input,
      webhook: request.webhook,
      webhookEventsFilter: request.events,
    });
  } catch (error) {
    throw new CommandFailedError(`Replicate did not create the prediction: ${reason(error)}`);
  }
}

/** What `--wait` has shown so far, to print only what changed. */
interface Shown {
  status: string;
  logs: string;
  output: string | undefined;
}

/** Prints the changes between what was shown and `object`; answers what is shown now. */
export function describeProgress(shown: Shown, object: ReplicateObject): { lines: string[]; shown: Shown } {
  const lines: string[] = [];
  const logs = typeof object.logs === 'string' ? object.logs : '';
  if (logs !== shown.logs) {
    const added = logs.startsWith(shown.logs) ? logs.slice(shown.logs.length) : logs;
    for (const line of added.split('\n')) if (line.trim() !== '') lines.push(`  ${line}`);
  }
  const output =
    object.output === undefined || object.output === null ? undefined : outputPreview(object.output);
  if (output !== undefined && output !== shown.output) lines.push(`output: ${output}`);
  if (object.status !== shown.status) {
    const error = typeof object.error === 'string' && object.error !== '' ? ` (${object.error})` : '';
    lines.push(`status: ${object.status}${error}`);
  }
  return { lines, shown: { status: object.status, logs, output } };
}

async function waitForEnd(store: Store, created: ReplicateObject, ctx: CliContext): Promise<number> {
  let shown: Shown = { status: '', logs: '', output: undefined };
  const show = (object: ReplicateObject) => {
    const next = describeProgress(shown, object);
    for (const line of next.lines) println(ctx.stdout, line);
    shown = next.shown;
  };
  show(created);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, WAIT_READ_MS));
    const record = await store.getPrediction(created.id);
    if (record !== undefined) {
      show(record.object);
      if (isTerminalStatus(record.status)) return record.status === 'succeeded' ? EXIT_OK : EXIT_CHECK_FAILED;
    }
    const tracked = await store.recover.getTracked(created.id);
    if (tracked?.done === true && (record === undefined || !isTerminalStatus(record.status))) {
      println(ctx.stderr, `inlet: reconcile gave up on ${created.id} before it ended.`);
      return EXIT_CHECK_FAILED;
    }
  }
}
