import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  EmulateSettingsSchema,
  checkSecret,
  flagOption,
  parseNumberFlag,
  readSecretsFromEnv,
} from '../config.js';
import {
  createEmulator,
  FAKE_MODELS,
  loadOrCreateCertificate,
  type EmulatorCertificate,
  type EmulatorLogger,
} from '../emulator/index.js';
import { type CliContext, EXIT_OK, UsageError, println } from './context.js';
import { waitForStopSignal } from './signals.js';

interface EmulateFlags {
  port: string;
  host: string;
  secret?: string;
  timeScale: string;
  retryWindowMs: string;
  outputTtlMs: string;
  attemptTimeoutMs: string;
  faultDrop?: string;
  faultDuplicate?: string;
  faultReorder?: string;
  faultDelay?: string;
  faultDelayMs?: string;
  seed?: string;
  faultRateLimit?: string;
  faultRetryAfter?: string;
  publicUrl?: string;
  tls: boolean;
  tlsDir?: string;
  quiet?: boolean;
}

/** Where the generated certificate is kept between runs: `$XDG_CACHE_HOME/inlet/emulator`. */
function defaultTlsDir(env: NodeJS.ProcessEnv): string {
  const cache =
    env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== ''
      ? env.XDG_CACHE_HOME
      : join(homedir(), '.cache');
  return join(cache, 'inlet', 'emulator');
}

/** Human lines for the terminal: `HH:MM:SS.mmm message key=value …`. */
function lineLogger(ctx: CliContext): EmulatorLogger {
  const write = (fields: object, message: string) => {
    const time = new Date().toISOString().slice(11, 23);
    const pairs = Object.entries(fields)
      .filter(([, v]) => v !== undefined && v !== null && v !== false)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
    println(ctx.stdout, [time, message, ...pairs].join(' '));
  };
  return { info: write, warn: write };
}

const E = EmulateSettingsSchema.shape;

export function registerEmulateCommand(program: Command, ctx: CliContext): void {
  const command = program
    .command('emulate')
    .description('run a local Replicate API emulator that sends real, signed webhooks (docs/emulator.md)')
    .option(...flagOption(E.port))
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option(
      '--secret <whsec>',
      'webhook signing secret (default: REPLICATE_WEBHOOK_SECRET, else a fresh random one)',
    );
  // The other number flags, in the schema's order.
  for (const schema of Object.values(E)) if (schema !== E.port) command.option(...flagOption(schema));
  command
    .option('--public-url <url>', 'origin clients reach the emulator at, when not http://HOST:PORT')
    .option('--no-tls', 'answer plain HTTP only (no HTTPS on the same port, no certificate)')
    .option(
      '--tls-dir <dir>',
      'where the self-signed certificate is made and kept (default: $XDG_CACHE_HOME/inlet/emulator, else ~/.cache/inlet/emulator)',
    )
    .option('--quiet', 'do not log each webhook attempt')
    .action(async (flags: EmulateFlags) => {
      await runEmulate(flags, ctx);
    });
}

async function runEmulate(flags: EmulateFlags, ctx: CliContext): Promise<void> {
  const number = (schema: (typeof E)[keyof typeof E], text: string | undefined): number =>
    parseNumberFlag(schema, text) ?? 0;
  const port = number(E.port, flags.port);
  const host = flags.host.trim();
  if (host === '') throw new UsageError('--host must not be empty.');
  const timeScale = number(E.timeScale, flags.timeScale);
  const retryWindowMs = number(E.retryWindowMs, flags.retryWindowMs);
  const outputTtlMs = number(E.outputTtlMs, flags.outputTtlMs);
  const attemptTimeoutMs = number(E.attemptTimeoutMs, flags.attemptTimeoutMs);
  const faults = {
    drop: number(E.faultDrop, flags.faultDrop),
    duplicate: number(E.faultDuplicate, flags.faultDuplicate),
    reorder: number(E.faultReorder, flags.faultReorder),
    delay: number(E.faultDelay, flags.faultDelay),
    delayMs: number(E.faultDelayMs, flags.faultDelayMs),
  };
  const seed = parseNumberFlag(E.seed, flags.seed);
  let publicUrl: string | undefined;
  if (flags.publicUrl !== undefined) {
    try {
      const url = new URL(flags.publicUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
      publicUrl = url.origin;
    } catch {
      throw new UsageError(`--public-url must be an http(s) URL; got "${flags.publicUrl}".`);
    }
  }
  let secret = flags.secret;
  let secretSource = secret === undefined ? 'generated' : '--secret';
  if (secret === undefined) {
    const fromEnv = readSecretsFromEnv(ctx.env);
    if (fromEnv.secrets[0] !== undefined && fromEnv.source !== undefined) {
      secret = fromEnv.secrets[0];
      secretSource = fromEnv.source;
    }
  }
  if (secret !== undefined) checkSecret(secret, secretSource);

  let certificate: EmulatorCertificate | undefined;
  if (flags.tls) {
    const tlsDir = flags.tlsDir ?? defaultTlsDir(ctx.env);
    const names = host === '0.0.0.0' || host === '::' ? [] : [host];
    try {
      certificate = await loadOrCreateCertificate(tlsDir, names);
    } catch (error) {
      throw new UsageError(
        `Cannot make or read the emulator's certificate in ${tlsDir} (${(error as Error).message}); choose another --tls-dir, or --no-tls.`,
      );
    }
  }

  const emulator = createEmulator({
    ...(secret === undefined ? {} : { secret }),
    timeScale,
    retryWindowMs,
    outputTtlMs,
    attemptTimeoutMs,
    faults,
    rateLimit: {
      fraction: number(E.faultRateLimit, flags.faultRateLimit),
      retryAfterSec: number(E.faultRetryAfter, flags.faultRetryAfter),
    },
    ...(seed === undefined ? {} : { seed }),
    ...(publicUrl === undefined ? {} : { publicUrl }),
    ...(certificate === undefined ? {} : { tls: { cert: certificate.cert, key: certificate.key } }),
    ...(flags.quiet === true ? {} : { logger: lineLogger(ctx) }),
  });
  let url: string;
  try {
    url = await emulator.listen(port, host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new UsageError(`Port ${port} is already in use on ${host}; choose another with --port.`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
      throw new UsageError(`Cannot listen on ${host}:${port} (${code}); check --host and --port.`);
    }
    throw error;
  }

  // Before the first line: a stop signal right after it must find the handler (see serve).
  const stopSignal = waitForStopSignal();
  println(ctx.stdout, `Replicate emulator listening on ${url}`);
  const httpsOrigin = emulator.httpsOrigin;
  if (httpsOrigin !== undefined && certificate !== undefined) {
    println(
      ctx.stdout,
      `and on ${httpsOrigin}/v1 (same port; certificate ${certificate.created ? 'made' : 'reused'}: ${certificate.certPath})`,
    );
  }
  if (secretSource === 'generated' || secretSource === '--secret')
    println(ctx.stdout, `secret: ${emulator.secret}`);
  else println(ctx.stdout, `secret: the one in ${secretSource}`);
  // Replicate's Python client and Inlet read REPLICATE_BASE_URL as the origin and add /v1.
  println(ctx.stdout, `Use it with: REPLICATE_API_TOKEN=anything REPLICATE_BASE_URL=${emulator.origin}`);
  if (httpsOrigin !== undefined && certificate !== undefined) {
    println(
      ctx.stdout,
      `JS client: new Replicate({ auth: 'anything', baseUrl: '${httpsOrigin}/v1' }), run with NODE_EXTRA_CA_CERTS=${certificate.certPath}`,
    );
  } else {
    println(ctx.stdout, `JS client: new Replicate({ auth: 'anything', baseUrl: '${url}' })`);
  }
  if (secretSource === 'generated' || secretSource === '--secret') {
    println(ctx.stdout, `Receive with: REPLICATE_WEBHOOK_SECRET=${emulator.secret} inlet serve`);
  }
  println(ctx.stdout, `models: ${FAKE_MODELS.map((m) => m.name).join(', ')}`);
  println(
    ctx.stdout,
    `try: curl -s -X POST -H 'Authorization: Bearer anything' -H 'Content-Type: application/json' ` +
      `-d '{"input":{"text":"hi"},"webhook":"http://127.0.0.1:5000/replicate-webhook","webhook_events_filter":["start","output","logs","completed"]}' ` +
      `${url}/models/inlet/echo/predictions`,
  );
  if (timeScale !== 1) println(ctx.stdout, `time scale: ${timeScale}`);
  if (faults.drop + faults.duplicate + faults.reorder + faults.delay > 0) {
    println(
      ctx.stdout,
      `faults: drop=${faults.drop} duplicate=${faults.duplicate} reorder=${faults.reorder} delay=${faults.delay} ` +
        `(delay ${faults.delayMs} ms) seed=${emulator.seed}`,
    );
  }

  const signal = await stopSignal;
  await emulator.close();
  println(ctx.stdout, `stopped (${signal})`);
  ctx.setExitCode(EXIT_OK);
}
