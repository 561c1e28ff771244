import { pino, type Logger } from 'pino';
import {
  checkSecret,
  ConfigError,
  parseSecretList,
  REJECTION_BODY_BUDGET_BYTES,
  SECRET_HELP,
  SETTING_DEFAULTS,
} from '../config.js';
import { Ingest } from '../ingest/accept.js';
import { CommitBatcher } from '../ingest/commit-batcher.js';
import { RejectionLog } from '../ingest/rejection-log.js';
import { DeferredStore } from '../store/deferred-store.js';
import { capabilitiesBeforeOpen } from '../store/dialects.js';
import { describeDatabase, openStore, parseDatabaseUrl } from '../store/index.js';
import { createFetchHandler, type FetchHandler } from './fetch-handler.js';
import { createNodeListener, type NodeListener } from './node-listener.js';
import { Runner } from '../jobs/runner.js';
import { type Handler, handlerConsumer, type HandlerOptions } from './handlers.js';
import { Receiver } from './receiver.js';

/** Options of `createInlet()`; only `secret` is required (or `insecureSkipVerify`). */
export interface CreateInletOptions {
  /**
   * Replicate's webhook signing secret(s), `whsec_…`; several during a rotation (an array, or one
   * string separated by spaces or commas).
   */
  readonly secret?: string | readonly string[] | undefined;
  /** `sqlite:PATH`, a file path, or `postgres://…`. Default `sqlite:./data/inlet.db`. */
  readonly database?: string;
  /**
   * Serve only this path (and with one trailing slash); other paths answer 404. Default: every path
   * the listener or handler is given (mount it where you like).
   */
  readonly path?: string;
  /** Allowed clock skew of `webhook-timestamp`, both directions; 0 turns the check off. Default 300. */
  readonly toleranceSec?: number;
  /** Larger bodies get 413. Default 16 MiB. */
  readonly maxBodyBytes?: number;
  /** Longest wait for a commit before answering 503. Default 5000. */
  readonly commitTimeoutMs?: number;
  /** Also accept the tutorial's `X-Replicate-Signature` scheme. Default false. */
  readonly acceptHexSignature?: boolean;
  /** Development only: accept unsigned requests. Default false. */
  readonly insecureSkipVerify?: boolean;
  /** Rejected requests kept for inspection (newest first). Default 10,000. */
  readonly maxRejections?: number;
  /** A pino logger. Default: warnings and errors, as JSON on stderr. */
  readonly logger?: Logger;
}

/** `serve`'s defaults (the settings schema's), for the options the library shares with it. */
export const LIBRARY_DEFAULTS = Object.freeze({
  database: SETTING_DEFAULTS.databaseUrl,
  toleranceSec: SETTING_DEFAULTS.toleranceSec,
  maxBodyBytes: SETTING_DEFAULTS.maxBodyBytes,
  commitTimeoutMs: SETTING_DEFAULTS.commitTimeoutMs,
  maxRejections: SETTING_DEFAULTS.maxRejections,
  rejectionBodyBudgetBytes: REJECTION_BODY_BUDGET_BYTES,
});

/** Inlet inside your own app (CONTRACT §10). */
export interface Inlet {
  /** A Node request listener: `http.createServer(inlet.listener)` or `app.post(path, inlet.listener)`. */
  readonly listener: NodeListener;
  /** A fetch-style handler: `(Request) => Promise<Response>` (Hono, Next.js route handlers). */
  readonly fetch: FetchHandler;
  /**
   * Runs `handler` for every transition whose type matches `pattern` (`prediction.completed`,
   * `prediction.*`, `*`, or a list). A handler is a consumer with a durable position: it resumes after
   * a restart, and a throw retries it on its schedule. Returns the inlet, so calls chain.
   */
  on(pattern: string | readonly string[], handler: Handler, options?: HandlerOptions): Inlet;
  /**
   * Resolves once the database is open and the handlers added so far are registered (requests before
   * then wait for the database, up to the commit timeout).
   */
  ready(): Promise<void>;
  /** Stops the handlers (letting calls in flight finish), finishes in-flight commits, closes the database. */
  close(): Promise<void>;
}

function secretList(secret: CreateInletOptions['secret']): string[] {
  if (secret === undefined) return [];
  return typeof secret === 'string' ? parseSecretList(secret) : secret.flatMap((s) => parseSecretList(s));
}

/**
 * Receives Replicate webhooks inside your own app with the same core as `inlet serve`: verify, store
 * durably, dedupe, fold. Throws `ConfigError` on unusable options.
 */
export function createInlet(options: CreateInletOptions): Inlet {
  const secrets = secretList(options.secret);
  secrets.forEach((s) => checkSecret(s, 'secret'));
  if (secrets.length === 0 && options.insecureSkipVerify !== true) {
    throw new ConfigError(
      'secret',
      `createInlet: no secret given. Pass { secret: process.env.REPLICATE_WEBHOOK_SECRET }. ${SECRET_HELP}`,
    );
  }
  const logger = options.logger ?? pino({ level: 'warn' });
  const databaseUrl = options.database ?? LIBRARY_DEFAULTS.database;
  const target = parseDatabaseUrl(databaseUrl);
  const store = new DeferredStore(
    target.dialect,
    describeDatabase(target),
    () => openStore(target, { mode: 'serve', logger }),
    logger,
    capabilitiesBeforeOpen(target.dialect),
  );
  const connecting = store.connect();

  const batcher = new CommitBatcher(store, {
    commitTimeoutMs: options.commitTimeoutMs ?? LIBRARY_DEFAULTS.commitTimeoutMs,
    logger,
  });
  const rejections = new RejectionLog(
    store,
    {
      maxRows: options.maxRejections ?? LIBRARY_DEFAULTS.maxRejections,
      maxBodyBytes: LIBRARY_DEFAULTS.rejectionBodyBudgetBytes,
    },
    logger,
  );
  const ingest = new Ingest(
    {
      secrets,
      toleranceSec: options.toleranceSec ?? LIBRARY_DEFAULTS.toleranceSec,
      acceptHexSignature: options.acceptHexSignature === true,
      insecureSkipVerify: options.insecureSkipVerify === true,
    },
    batcher,
    rejections,
    logger,
  );
  const runner = new Runner({ jobs: store.jobs, log: store.transitions, logger });
  // Each commit that applied a change wakes the handlers at once.
  batcher.onTransitions(() => runner.wake());
  const receiver = new Receiver(
    ingest,
    { path: options.path, maxBodyBytes: options.maxBodyBytes ?? LIBRARY_DEFAULTS.maxBodyBytes },
    // A new transition may be waiting: the runner looks now rather than at its next poll.
    () => runner.wake(),
  );

  let closing: Promise<void> | undefined;
  let starting: Promise<void> | undefined;
  const startHandlers = () => {
    starting ??= connecting.then(async () => {
      if (closing !== undefined) return;
      try {
        await runner.start();
      } catch (error) {
        // The runner registers the handlers again on each pass until the store answers.
        logger.warn({ err: (error as Error).message }, 'handlers could not start yet; retrying');
      }
    });
  };

  const inlet: Inlet = {
    listener: createNodeListener(receiver, logger),
    fetch: createFetchHandler(receiver, logger),
    on(pattern, handler, handlerOptions) {
      if (closing !== undefined) throw new Error('inlet.on(): this Inlet is closed.');
      const definition = handlerConsumer(pattern, handler, handlerOptions);
      try {
        runner.add(definition);
      } catch {
        const name = definition.name.slice('handler:'.length);
        throw new TypeError(
          `inlet.on(): a handler named "${name}" is already registered; give this one its own { name }.`,
        );
      }
      startHandlers();
      return inlet;
    },
    async ready() {
      await connecting;
      // Handlers added before now are registered (at the end of the log) before ready resolves, so a
      // delivery accepted after it always reaches them.
      await starting;
      if (!store.connected) {
        throw new Error(
          `The database at ${store.location} could not be opened (retrying in the background).`,
        );
      }
    },
    close() {
      closing ??= (async () => {
        await starting;
        await batcher.drain();
        await runner.stop();
        await rejections.flush();
        await store.close();
      })();
      return closing;
    },
  };
  return inlet;
}
