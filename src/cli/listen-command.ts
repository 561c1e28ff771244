import { hostname } from 'node:os';
import type { Command } from 'commander';
import { checkSecret, parseSecretList, readSecretsFromEnv } from '../config.js';
import { messageIdFor } from '../jobs/consumer.js';
import { generateDestinationSecret } from '../jobs/destinations.js';
import { inletVersion } from '../jobs/http-deliverer.js';
import { signWebhook } from '../verify/index.js';
import { type CliContext, CommandFailedError, EXIT_OK, UsageError, println } from './context.js';
import { TOKEN_FLAG } from './read-source.js';
import { waitForStopSignal } from './signals.js';

interface ListenFlags {
  url?: string;
  token?: string;
  forward?: string;
  events?: string;
  name?: string;
  secret?: string;
  json?: boolean;
}

/** One transition as `GET /api/stream?raw=1` sends it. */
interface StreamTransition {
  id: string;
  type: string;
  recorded_at: string;
  object_id: string;
  model: string | null;
  status: string;
  raw_body?: string;
}

/** An SSE event: the fields `inlet listen` reads. */
export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** Splits Server-Sent Events text into events; answers them and the unfinished rest. */
export function parseSse(text: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  const normalized = text.replace(/\r\n?/g, '\n');
  let start = 0;
  for (;;) {
    const end = normalized.indexOf('\n\n', start);
    if (end === -1) break;
    const block = normalized.slice(start, end);
    start = end + 2;
    let id: string | undefined;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) events.push({ id, event, data: data.join('\n') });
  }
  return { events, rest: normalized.slice(start) };
}

/** The host name as a listener name (letters, digits, `.`, `_`, `-`). */
function defaultListenName(host = hostname()): string {
  const cleaned = host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return cleaned.slice(0, 100) || 'listen';
}

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;
const FORWARD_TIMEOUT_MS = 30_000;

export function registerListenCommand(program: Command, ctx: CliContext): void {
  program
    .command('listen')
    .description(
      'print the transitions of a running Inlet as they happen and, with --forward, POST each to a local app as Replicate would (re-signed); stopped or offline, it catches up from where it stopped',
    )
    .option('--url <url>', 'the Inlet to listen to [env: INLET_URL]')
    .option(...TOKEN_FLAG)
    .option('--forward <url>', "POST each transition's original Replicate body here, signed with --secret")
    .option(
      '--events <types>',
      'comma list of transition types or patterns (prediction.completed, prediction.*)',
      '*',
    )
    .option(
      '--name <name>',
      'this listener on the server: a restart with the same name resumes where it stopped (default: the host name)',
    )
    .option(
      '--secret <secret>',
      'whsec_… secret that signs forwarded requests [env: REPLICATE_WEBHOOK_SECRET; default: a fresh one, printed]',
    )
    .option('--json', 'print each transition as a line of JSON')
    .action(async (flags: ListenFlags) => {
      await runListen(flags, ctx);
    });
}

function parseBase(flags: ListenFlags, ctx: CliContext): URL {
  const text = (flags.url ?? ctx.env.INLET_URL ?? '').trim();
  if (text === '') {
    throw new UsageError('inlet listen needs the Inlet to listen to: --url http://HOST:5000 (or INLET_URL).');
  }
  let base: URL;
  try {
    base = new URL(text.endsWith('/') ? text : `${text}/`);
  } catch {
    throw new UsageError(`--url: "${text}" is not a URL (such as http://127.0.0.1:5000).`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new UsageError(`--url must be an http:// or https:// URL; got "${text}".`);
  }
  return base;
}

function parseForward(text: string | undefined): URL | undefined {
  if (text === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `--forward: "${text}" is not a URL (such as http://localhost:3000/webhooks/replicate).`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--forward must be an http:// or https:// URL; got "${text}".`);
  }
  return url;
}

/** `--secret`, else the environment, else a fresh secret (printed, so the local app can be given it). */
function forwardSecret(flags: ListenFlags, ctx: CliContext): { secret: string; generated: boolean } {
  if (flags.secret !== undefined) {
    const [secret] = parseSecretList(flags.secret);
    if (secret === undefined) throw new UsageError('--secret is empty: pass a whsec_… secret.');
    checkSecret(secret, '--secret');
    return { secret, generated: false };
  }
  const { secrets, source } = readSecretsFromEnv(ctx.env);
  const [first] = secrets;
  if (first !== undefined && source !== undefined) {
    checkSecret(first, source);
    return { secret: first, generated: false };
  }
  return { secret: generateDestinationSecret(), generated: true };
}

function reason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

async function runListen(flags: ListenFlags, ctx: CliContext): Promise<void> {
  // Registered before anything is printed: a signal right after the first line is a clean stop.
  const stopSignal = waitForStopSignal();
  const base = parseBase(flags, ctx);
  const token = (flags.token ?? ctx.env.INLET_ADMIN_TOKEN ?? '').trim() || undefined;
  const forward = parseForward(flags.forward);
  const name = flags.name ?? defaultListenName();
  const events = (flags.events ?? '*').trim() || '*';
  const signing = forward === undefined ? undefined : forwardSecret(flags, ctx);
  const consumer = `listen:${name}`;
  const stopping = new AbortController();
  void stopSignal.then(() => stopping.abort());

  const say = (line: string) => println(ctx.stderr, line);
  if (forward !== undefined && signing !== undefined) {
    say(`Forwarding to ${forward.href}, signed with ${signing.generated ? 'a new secret' : 'your secret'}:`);
    if (signing.generated) say(`  REPLICATE_WEBHOOK_SECRET=${signing.secret}`);
  }

  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  let lastId: string | undefined;
  // Acknowledgements: at most one request at a time, always the newest handled transition.
  let acked: string | undefined;
  let acking: Promise<void> | undefined;
  const ack = (): Promise<void> => {
    if (acking !== undefined || lastId === undefined || lastId === acked) return acking ?? Promise.resolve();
    const id = lastId;
    acking = (async () => {
      try {
        const response = await fetch(new URL(`api/listeners/${encodeURIComponent(name)}/ack`, base), {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ last_event_id: id }),
        });
        await response.arrayBuffer();
        if (response.ok) acked = id;
      } catch {
        // The stream's Last-Event-ID covers a reconnect; the next acknowledgement carries this one.
      } finally {
        acking = undefined;
      }
      if (lastId !== acked && !stopping.signal.aborted) await ack();
    })();
    return acking;
  };

  const handle = async (transition: StreamTransition): Promise<void> => {
    let outcome = '';
    if (forward !== undefined && signing !== undefined) {
      outcome = await forwardOnce(transition, forward, signing.secret, consumer, stopping.signal, say);
      if (stopping.signal.aborted) return;
    }
    if (flags.json === true) {
      const { raw_body: _raw, ...shown } = transition;
      println(ctx.stdout, JSON.stringify(outcome === '' ? shown : { ...shown, forwarded: outcome }));
    } else {
      const parts = [
        transition.recorded_at,
        transition.type.padEnd(21),
        transition.object_id,
        transition.status,
      ];
      if (transition.model !== null) parts.push(transition.model);
      println(ctx.stdout, `${parts.join('  ')}${outcome === '' ? '' : `  → ${outcome}`}`);
    }
    lastId = transition.id;
    void ack();
  };

  let connectedOnce = false;
  let delayMs = RECONNECT_MIN_MS;
  while (!stopping.signal.aborted) {
    const search = new URLSearchParams({ consumer: name, events, raw: '1' });
    let response: Response;
    try {
      response = await fetch(new URL(`api/stream?${search.toString()}`, base), {
        headers: {
          ...headers,
          accept: 'text/event-stream',
          ...(lastId === undefined ? {} : { 'last-event-id': lastId }),
        },
        signal: stopping.signal,
      });
    } catch (error) {
      if (stopping.signal.aborted) break;
      if (!connectedOnce)
        throw new CommandFailedError(`Cannot reach Inlet at ${base.origin} (${reason(error)}).`);
      say(`Lost ${base.origin} (${reason(error)}); reconnecting in ${(delayMs / 1000).toFixed(1)} s.`);
      await pause(delayMs, stopping.signal);
      delayMs = Math.min(RECONNECT_MAX_MS, delayMs * 2);
      continue;
    }
    if (!response.ok) {
      const body = (await response.json().catch(() => undefined)) as
        { error?: { code?: string; message?: string } } | undefined;
      const message = body?.error?.message ?? `HTTP ${response.status}`;
      if (response.status === 401 || response.status === 403) {
        throw new UsageError(
          `${base.origin} refused the stream (${message}) — pass --token or set INLET_ADMIN_TOKEN.`,
        );
      }
      if (response.status === 400 && lastId !== undefined) {
        // The transition we stopped at is gone (pruned): resume from the server's position instead.
        lastId = undefined;
        continue;
      }
      if (response.status === 400 || response.status === 404) {
        throw new UsageError(
          response.status === 404
            ? `${base.origin} has no live stream (${message}); is it an Inlet of this version?`
            : message,
        );
      }
      if (!connectedOnce)
        throw new CommandFailedError(`Inlet at ${base.origin} answered ${response.status}: ${message}`);
      say(
        `${base.origin} answered ${response.status} (${message}); reconnecting in ${(delayMs / 1000).toFixed(1)} s.`,
      );
      await pause(delayMs, stopping.signal);
      delayMs = Math.min(RECONNECT_MAX_MS, delayMs * 2);
      continue;
    }
    // Printed once the server holds the position: from here on nothing is missed.
    if (connectedOnce) say(`Reconnected to ${base.origin}; catching up.`);
    else {
      say(
        `Listening to ${base.origin} as "${name}" (events: ${events}); a restart with --name ${name} resumes here.`,
      );
    }
    connectedOnce = true;
    delayMs = RECONNECT_MIN_MS;
    try {
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        const { events: ready, rest } = parseSse(buffered);
        buffered = rest;
        for (const event of ready) {
          if (stopping.signal.aborted) break;
          await handle(JSON.parse(event.data) as StreamTransition);
        }
      }
      if (!stopping.signal.aborted) say(`${base.origin} closed the stream; reconnecting.`);
    } catch (error) {
      if (stopping.signal.aborted) break;
      say(`Lost ${base.origin} (${reason(error)}); reconnecting in ${(delayMs / 1000).toFixed(1)} s.`);
      await pause(delayMs, stopping.signal);
    }
  }
  await Promise.race([ack(), pause(2_000)]);
  ctx.setExitCode(EXIT_OK);
}

/**
 * POSTs the transition's original body to the local app until the app answers (any status: the app
 * has seen it). While the app cannot be reached it waits and tries again, so nothing is skipped.
 */
async function forwardOnce(
  transition: StreamTransition,
  target: URL,
  secret: string,
  consumer: string,
  stopping: AbortSignal,
  say: (line: string) => void,
): Promise<string> {
  const body = transition.raw_body ?? '';
  const id = messageIdFor(consumer, transition.id);
  let delayMs = RECONNECT_MIN_MS;
  for (;;) {
    const started = performance.now();
    try {
      const signed = signWebhook(body, { secret, id, timestampSec: Math.floor(Date.now() / 1000) });
      const response = await fetch(target, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': `inlet-listen/${inletVersion()}`,
          ...signed,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([stopping, AbortSignal.timeout(FORWARD_TIMEOUT_MS)]),
      });
      await response.arrayBuffer().catch(() => undefined);
      return `${response.status} (${Math.round(performance.now() - started)} ms)`;
    } catch (error) {
      if (stopping.aborted) return '';
      say(
        `  ${target.origin} did not answer (${reason(error)}); trying ${transition.object_id} again in ${(delayMs / 1000).toFixed(1)} s.`,
      );
      await pause(delayMs, stopping);
      delayMs = Math.min(RECONNECT_MAX_MS, delayMs * 2);
    }
  }
}

/** Waits `ms`, or less when `signal` aborts; leaves no listener on the signal either way. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
