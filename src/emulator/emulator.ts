import type { AddressInfo, Server } from 'node:net';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { secretProblem } from '../verify/index.js';
import { deploymentObject, fakeModelInfo, modelObject, versionObject, type ModelInfo } from './catalog.js';
import type {
  ApiError,
  CreateOptions,
  CreateResult,
  CreateTarget,
  EmulatorCore,
  ListFilters,
  ListPage,
} from './api-types.js';
import { createApiHandler } from './http-api.js';
import {
  FAKE_MODELS,
  findModel,
  findModelByVersion,
  trainingScript,
  type FakeModel,
  type InvalidField,
  type ModelFile,
  type ModelStep,
} from './models.js';
import {
  applyStep,
  DEFAULT_EVENTS_FILTER,
  formatTime,
  isTerminal,
  isWebhookEvent,
  THROTTLE_MS,
  toPublicObject,
  WebhookGate,
  type EmulatedKind,
  type EndStep,
  type PredictionRecord,
  type WebhookEvent,
} from './prediction.js';
import { newPredictionId, newWebhookSecret } from './random.js';
import { type RateLimitOptions, withRateLimit } from './rate-limit.js';
import { ScriptRun } from './runner.js';
import { createDualServer, type DualServer, type TlsPems } from './tls.js';
import { fileObject, type Upload } from './uploads.js';
import {
  WebhookSender,
  type DeliveryAttempt,
  type EmulatorLogger,
  type FaultOptions,
} from './webhook-sender.js';

export interface EmulatorOptions {
  /** `whsec_…`; a fresh random one per emulator when absent. */
  readonly secret?: string;
  /** Multiplies every model timing, the webhook throttle, backoff, retry window and fault delay. Default 1. */
  readonly timeScale?: number;
  /** How long the terminal webhook is retried after completion (before the time scale). Default 60000. */
  readonly retryWindowMs?: number;
  /** After this long (real time, not scaled) outputs, inputs and logs are removed. Default one hour. */
  readonly outputTtlMs?: number;
  /** Longest wait for one webhook attempt's answer (real time). Default 10000. */
  readonly attemptTimeoutMs?: number;
  readonly faults?: FaultOptions;
  /** Seeds the fault PRNG; random when absent (see `emulator.seed`). */
  readonly seed?: number;
  readonly logger?: EmulatorLogger;
  /** Called after every webhook attempt (also kept in `deliveries()`). */
  readonly onDelivery?: (attempt: DeliveryAttempt) => void;
  /** The origin clients reach the emulator at (`http://host:port`), when not the listen address. */
  readonly publicUrl?: string;
  /** Items per page of `GET /v1/predictions`. Default 100, like Replicate. */
  readonly pageSize?: number;
  /** Attempts kept for `deliveries()`, oldest dropped first. Default 10000. */
  readonly maxDeliveryLog?: number;
  /** Wall clock (epoch ms) for object times and `webhook-timestamp`. */
  readonly nowMs?: () => number;
  /** The rate-limit fault: a share of API calls answered 429 with `Retry-After`. */
  readonly rateLimit?: RateLimitOptions;
  /**
   * Also answer HTTPS, on the same port, with this certificate. Objects created over HTTPS carry
   * `https://` URLs (so `replicate.run()` wraps output files in `FileOutput`, as in production).
   */
  readonly tls?: TlsPems;
}

export const EMULATOR_DEFAULTS = {
  timeScale: 1,
  retryWindowMs: 60_000,
  outputTtlMs: 3_600_000,
  attemptTimeoutMs: 10_000,
  pageSize: 100,
  maxDeliveryLog: 10_000,
} as const;

interface Entry {
  readonly record: PredictionRecord;
  /** The origin of the request that created it: its URLs (and file URLs) use it. */
  readonly origin: string;
  readonly run: ScriptRun;
  readonly gate: WebhookGate;
  readonly files: Map<string, ModelFile>;
  readonly fileBytes: Map<string, Buffer>;
  readonly listeners: Set<(events: readonly WebhookEvent[]) => void>;
  readonly doneWaiters: (() => void)[];
  ttlTimer: NodeJS.Timeout | undefined;
}

function checkFraction(name: string, value: number | undefined): void {
  if (value !== undefined && !(value >= 0 && value <= 1))
    throw new RangeError(`${name} must be from 0 to 1; got ${value}`);
}

function checkPositive(name: string, value: number, allowZero = false): void {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new RangeError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number; got ${value}`);
  }
}

function invalid(fields: InvalidField[]): ApiError {
  return {
    status: 422,
    body: {
      title: 'Input validation failed',
      detail: fields.map((f) => `- ${f.field}: ${f.description}`).join('\n'),
      status: 422,
      invalid_fields: fields,
    },
  };
}

function notFound(detail: string): ApiError {
  return { status: 404, body: { detail, status: 404 } };
}

// What Replicate answers when a training's destination model does not exist.
const NO_DESTINATION: ApiError = {
  status: 404,
  body: { detail: 'The specified training destination does not exist', status: 404 },
};

const INVALID_VERSION: ApiError = {
  status: 422,
  body: {
    title: 'Invalid version or not permitted',
    detail: "The specified version does not exist (or perhaps you don't have permission to use it?)",
    status: 422,
  },
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * A local, offline stand-in for Replicate's HTTP API that runs fake models and sends real,
 * signed webhooks by Replicate's delivery rules. Build with `createEmulator`, then `listen()`.
 */
export class ReplicateEmulator implements EmulatorCore {
  readonly secret: string;
  readonly seed: number;
  readonly timeScale: number;
  readonly models: readonly FakeModel[] = FAKE_MODELS;
  readonly #options: EmulatorOptions;
  readonly #sender: WebhookSender;
  readonly #entries = new Map<string, Entry>();
  readonly #createdModels = new Map<string, ModelInfo>();
  readonly #uploads = new Map<string, Upload>();
  readonly #dual: DualServer;
  readonly #server: Server;
  readonly #nowMs: () => number;
  #seq = 0;
  #origin: string | undefined;
  #httpsOrigin: string | undefined;
  #closed = false;

  constructor(options: EmulatorOptions = {}) {
    this.#options = options;
    this.secret = options.secret ?? newWebhookSecret();
    const secretFault = secretProblem(this.secret);
    if (secretFault !== undefined) {
      throw new RangeError(`secret must be "whsec_" followed by base64; ${secretFault}`);
    }
    this.timeScale = options.timeScale ?? EMULATOR_DEFAULTS.timeScale;
    checkPositive('timeScale', this.timeScale);
    checkPositive('retryWindowMs', options.retryWindowMs ?? 0, true);
    checkPositive('outputTtlMs', options.outputTtlMs ?? 1);
    checkPositive('attemptTimeoutMs', options.attemptTimeoutMs ?? 1);
    checkPositive('faults.delayMs', options.faults?.delayMs ?? 0, true);
    for (const kind of ['drop', 'duplicate', 'reorder', 'delay'] as const)
      checkFraction(`faults.${kind}`, options.faults?.[kind]);
    this.seed = options.seed ?? randomInt(2 ** 31);
    this.#nowMs = options.nowMs ?? Date.now;
    if (options.publicUrl !== undefined) this.#origin = new URL(options.publicUrl).origin;
    this.#sender = new WebhookSender({
      secret: this.secret,
      timeScale: this.timeScale,
      retryWindowMs: options.retryWindowMs ?? EMULATOR_DEFAULTS.retryWindowMs,
      attemptTimeoutMs: options.attemptTimeoutMs ?? EMULATOR_DEFAULTS.attemptTimeoutMs,
      faults: options.faults ?? {},
      seed: this.seed,
      nowMs: this.#nowMs,
      maxLogEntries: options.maxDeliveryLog ?? EMULATOR_DEFAULTS.maxDeliveryLog,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.onDelivery ? { onDelivery: options.onDelivery } : {}),
    });
    checkFraction('rateLimit.fraction', options.rateLimit?.fraction);
    this.#dual = createDualServer(withRateLimit(createApiHandler(this), options.rateLimit), options.tls);
    this.#server = this.#dual.server;
  }

  /** `http://host:port` the emulator is reached at; known once listening (or given as `publicUrl`). */
  get origin(): string {
    if (this.#origin === undefined)
      throw new Error('The emulator is not listening yet: call listen() first.');
    return this.#origin;
  }

  /**
   * The API base URL, `http://host:port/v1`: what the JS client's `baseUrl` takes. Replicate's
   * Python client (and Inlet) take the origin in `REPLICATE_BASE_URL` and add `/v1` themselves.
   */
  get url(): string {
    return `${this.origin}/v1`;
  }

  /** `https://host:port` on the same port when the `tls` option is given (else `undefined`). */
  get httpsOrigin(): string | undefined {
    return this.#options.publicUrl === undefined ? this.#httpsOrigin : undefined;
  }

  /** The origin objects created through a request of that scheme carry in their URLs. */
  originFor(secure: boolean): string {
    return secure ? (this.httpsOrigin ?? this.origin) : this.origin;
  }

  get pageSize(): number {
    return this.#options.pageSize ?? EMULATOR_DEFAULTS.pageSize;
  }

  /** Starts the HTTP server; port 0 picks a free port. Resolves the API base URL. */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    if (this.#options.publicUrl === undefined) {
      const address = this.#server.address() as AddressInfo;
      let urlHost = host;
      if (host === '0.0.0.0' || host === '') urlHost = '127.0.0.1';
      else if (host === '::') urlHost = '[::1]';
      else if (host.includes(':')) urlHost = `[${host}]`;
      this.#origin = `http://${urlHost}:${address.port}`;
      if (this.#options.tls !== undefined) this.#httpsOrigin = `https://${urlHost}:${address.port}`;
    }
    return this.url;
  }

  /** Stops runs, timers and deliveries, and closes the server and its open connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sender.close();
    for (const entry of this.#entries.values()) {
      entry.run.stop();
      clearTimeout(entry.ttlTimer);
      entry.doneWaiters.splice(0).forEach((resolve) => resolve());
      entry.listeners.clear();
    }
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#dual.destroyConnections();
    });
  }

  /** Every webhook attempt so far (and messages dropped by the drop fault), oldest first. */
  deliveries(): readonly DeliveryAttempt[] {
    return this.#sender.deliveries();
  }

  /** Resolves once every prediction has ended and every webhook (retries included) is done. */
  async settled(): Promise<void> {
    for (;;) {
      const running = [...this.#entries.values()].filter((e) => !isTerminal(e.record));
      if (running.length === 0 && this.#sender.idle) return;
      if (this.#closed) return;
      await Promise.all(running.map((e) => new Promise<void>((resolve) => e.doneWaiters.push(resolve))));
      await this.#sender.whenIdle();
    }
  }

  /** Creates a prediction (or training) as the HTTP API does; the HTTP routes call this. */
  createPrediction(target: CreateTarget, body: unknown, options: CreateOptions = {}): CreateResult {
    if (!isPlainObject(body)) {
      return {
        ok: false,
        error: { status: 400, body: { detail: 'The request body must be a JSON object.', status: 400 } },
      };
    }
    const resolved = this.#resolveTarget(target, body);
    if (!resolved.ok) return resolved;
    const { model, kind, deployment } = resolved;

    const fields: InvalidField[] = [];
    let input: Record<string, unknown> = {};
    if (body.input === undefined) {
      if (kind === 'prediction')
        fields.push({ type: 'required', field: 'input', description: 'input is required' });
    } else if (!isPlainObject(body.input)) {
      fields.push({ type: 'invalid_type', field: 'input', description: 'input must be an object' });
    } else {
      input = body.input;
    }
    let webhook: string | undefined;
    if (body.webhook !== undefined && body.webhook !== null) {
      if (typeof body.webhook !== 'string' || !isHttpUrl(body.webhook)) {
        fields.push({
          type: 'invalid_url',
          field: 'webhook',
          description: 'webhook must be an http or https URL',
        });
      } else {
        webhook = body.webhook;
      }
    }
    let filter: readonly WebhookEvent[] = DEFAULT_EVENTS_FILTER;
    if (body.webhook_events_filter !== undefined && body.webhook_events_filter !== null) {
      const given = body.webhook_events_filter;
      if (!Array.isArray(given) || !given.every(isWebhookEvent)) {
        fields.push({
          type: 'invalid_value',
          field: 'webhook_events_filter',
          description: 'webhook_events_filter must be an array of start, output, logs, completed',
        });
      } else {
        filter = [...new Set(given)];
      }
    }
    let destination = '';
    if (kind === 'training') {
      if (typeof body.destination !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(body.destination)) {
        fields.push({
          type: 'invalid_value',
          field: 'destination',
          description: 'destination must be "owner/name"',
        });
      } else {
        destination = body.destination;
      }
    }
    if (fields.length === 0 && kind === 'prediction') {
      const check = model.validate(input);
      if (!check.ok) fields.push(...check.fields.map((f) => ({ ...f, field: `input.${f.field}` })));
    }
    if (fields.length > 0) return { ok: false, error: invalid(fields) };
    if (kind === 'training' && this.#findModel(destination) === undefined) {
      return { ok: false, error: NO_DESTINATION };
    }

    const id = newPredictionId();
    const createdAtMs = this.#nowMs();
    const scaledDeadline =
      options.cancelAfterMs === undefined ? null : options.cancelAfterMs * this.timeScale;
    const record: PredictionRecord = {
      id,
      kind,
      seq: ++this.#seq,
      model: model.name,
      version: model.version,
      input,
      output: null,
      logs: '',
      error: null,
      status: 'starting',
      createdAtMs,
      startedAtMs: null,
      completedAtMs: null,
      webhook,
      webhookEventsFilter: filter,
      deadlineMs: scaledDeadline === null ? null : createdAtMs + scaledDeadline,
      deployment,
      streams: kind === 'prediction' && model.streams,
      dataRemoved: false,
    };
    const origin = options.origin ?? this.origin;
    const ctx = { predictionId: id, fileUrl: (name: string) => `${origin}/files/${id}/${name}` };
    const steps = kind === 'training' ? trainingScript(destination, ctx) : model.script(input, ctx);
    const entry: Entry = {
      record,
      origin,
      run: new ScriptRun(steps, this.timeScale, (step) => this.#step(entry, step)),
      gate: new WebhookGate(filter, THROTTLE_MS * this.timeScale),
      files: new Map(),
      fileBytes: new Map(),
      listeners: new Set(),
      doneWaiters: [],
      ttlTimer: undefined,
    };
    this.#entries.set(id, entry);
    this.#options.logger?.info({ predictionId: id, kind, model: model.name }, `${kind} created`);
    entry.run.start(scaledDeadline, () => record.startedAtMs !== null);
    return { ok: true, id, prediction: toPublicObject(record, origin) };
  }

  /** The object as `GET` shows it, or `undefined` for an unknown id (of that kind). */
  getPrediction(id: string, kind: EmulatedKind = 'prediction'): Record<string, unknown> | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined || entry.record.kind !== kind) return undefined;
    return toPublicObject(entry.record, entry.origin);
  }

  /** Cancels a prediction that has not ended; an ended one is returned unchanged. */
  cancelPrediction(id: string, kind: EmulatedKind = 'prediction'): Record<string, unknown> | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined || entry.record.kind !== kind) return undefined;
    entry.run.end({ kind: 'cancel' });
    return toPublicObject(entry.record, entry.origin);
  }

  listPredictions(
    kind: EmulatedKind,
    cursor: string | undefined,
    filters: ListFilters = {},
  ): ListPage | undefined {
    const { createdAfterMs, createdBeforeMs, source } = filters;
    const all = [...this.#entries.values()]
      .filter(
        ({ record: r }) =>
          r.kind === kind &&
          (createdAfterMs === undefined || r.createdAtMs >= createdAfterMs) &&
          (createdBeforeMs === undefined || r.createdAtMs < createdBeforeMs) &&
          // Every object the emulator makes comes from its API.
          (source === undefined || source === 'api'),
      )
      .sort((a, b) => b.record.seq - a.record.seq);
    let start = 0;
    if (cursor !== undefined) {
      const before = decodeCursor(cursor);
      if (before === undefined) return undefined;
      start = all.findIndex((e) => e.record.seq < before);
      if (start === -1) start = all.length;
    }
    const size = this.pageSize;
    const page = all.slice(start, start + size);
    const last = page[page.length - 1];
    const next = start + size < all.length && last !== undefined ? encodeCursor(last.record.seq) : null;
    let previous: string | null = null;
    if (start > 0) {
      const prevStart = Math.max(0, start - size);
      previous = encodeCursor(
        prevStart === 0 ? Number.MAX_SAFE_INTEGER : (all[prevStart - 1]?.record.seq ?? 0),
      );
    }
    return { results: page.map((e) => toPublicObject(e.record, e.origin)), next, previous };
  }

  /** Every model the emulator knows: the fake models, then those created with `POST /v1/models`. */
  listModels(origin: string): Record<string, unknown>[] {
    return this.#allModels().map((m) => this.#modelObject(m, origin));
  }

  getModel(owner: string, name: string, origin: string): Record<string, unknown> | undefined {
    const model = this.#findModel(`${owner}/${name}`);
    return model === undefined ? undefined : this.#modelObject(model, origin);
  }

  /** The model's versions, newest first; `undefined` for an unknown model. */
  listVersions(owner: string, name: string): Record<string, unknown>[] | undefined {
    return this.#findModel(`${owner}/${name}`)?.versions.map(versionObject);
  }

  getVersion(owner: string, name: string, id: string): Record<string, unknown> | undefined {
    const version = this.#findModel(`${owner}/${name}`)?.versions.find((v) => v.id === id);
    return version === undefined ? undefined : versionObject(version);
  }

  /** `POST /v1/models`: a model with no version yet, a training destination. */
  createModel(
    body: unknown,
    origin: string,
  ): { ok: true; model: Record<string, unknown> } | { ok: false; error: ApiError } {
    if (!isPlainObject(body)) {
      return {
        ok: false,
        error: { status: 400, body: { detail: 'The request body must be a JSON object.', status: 400 } },
      };
    }
    const fields: InvalidField[] = [];
    for (const field of ['owner', 'name'] as const) {
      const value = body[field];
      if (typeof value !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/.test(value)) {
        fields.push({
          type: 'invalid_value',
          field,
          description: `${field} must be lower-case letters, digits, dots, dashes and underscores`,
        });
      }
    }
    const visibility = body.visibility ?? 'private';
    if (visibility !== 'public' && visibility !== 'private') {
      fields.push({
        type: 'invalid_value',
        field: 'visibility',
        description: 'visibility must be public or private',
      });
    }
    if (body.description !== undefined && body.description !== null && typeof body.description !== 'string') {
      fields.push({
        type: 'invalid_type',
        field: 'description',
        description: 'description must be a string',
      });
    }
    if (fields.length > 0) return { ok: false, error: invalid(fields) };
    const full = `${String(body.owner)}/${String(body.name)}`;
    if (this.#findModel(full) !== undefined) {
      return {
        ok: false,
        error: { status: 409, body: { detail: `A model named ${full} already exists.`, status: 409 } },
      };
    }
    const model: ModelInfo = {
      owner: String(body.owner),
      name: String(body.name),
      description: typeof body.description === 'string' ? body.description : null,
      visibility: visibility === 'public' ? 'public' : 'private',
      versions: [],
    };
    this.#createdModels.set(full, model);
    return { ok: true, model: this.#modelObject(model, origin) };
  }

  /** Any owner's deployment named after a fake model runs it (`acme/echo` → `inlet/echo`). */
  getDeployment(owner: string, name: string): Record<string, unknown> | undefined {
    const model = findModel(`inlet/${name}`);
    return model === undefined ? undefined : deploymentObject(owner, name, model);
  }

  /** Keeps an uploaded file; answers its file object. */
  createUpload(
    file: Pick<Upload, 'name' | 'contentType' | 'bytes' | 'metadata'>,
    origin: string,
  ): Record<string, unknown> {
    const upload: Upload = { ...file, id: newPredictionId(), createdAtMs: this.#nowMs(), origin };
    this.#uploads.set(upload.id, upload);
    return fileObject(upload);
  }

  getUpload(id: string): Upload | undefined {
    return this.#uploads.get(id);
  }

  /** Newest first. */
  listUploads(): Record<string, unknown>[] {
    return [...this.#uploads.values()].reverse().map(fileObject);
  }

  deleteUpload(id: string): boolean {
    return this.#uploads.delete(id);
  }

  /** Resolves when the prediction ends, or after `ms`, whichever is first. */
  waitForEnd(id: string, ms: number): Promise<void> {
    const entry = this.#entries.get(id);
    if (entry === undefined || isTerminal(entry.record) || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      entry.doneWaiters.push(done);
    });
  }

  file(
    id: string,
    name: string,
  ): { status: 'ok'; contentType: string; bytes: Buffer } | { status: 'gone' } | { status: 'missing' } {
    const entry = this.#entries.get(id);
    const file = entry?.files.get(name);
    if (entry === undefined || file === undefined) return { status: 'missing' };
    if (entry.record.dataRemoved) return { status: 'gone' };
    let bytes = entry.fileBytes.get(name);
    if (bytes === undefined) {
      bytes = file.bytes();
      entry.fileBytes.set(name, bytes);
    }
    return { status: 'ok', contentType: file.contentType, bytes };
  }

  /** Follows a prediction's changes (for the stream URL); `undefined` for an unknown id. */
  subscribe(id: string, listener: (events: readonly WebhookEvent[]) => void): (() => void) | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    entry.listeners.add(listener);
    return () => entry.listeners.delete(listener);
  }

  record(id: string): Readonly<PredictionRecord> | undefined {
    return this.#entries.get(id)?.record;
  }

  #allModels(): ModelInfo[] {
    return [...FAKE_MODELS.map(fakeModelInfo), ...this.#createdModels.values()];
  }

  #findModel(fullName: string): ModelInfo | undefined {
    const fake = findModel(fullName);
    return fake === undefined ? this.#createdModels.get(fullName) : fakeModelInfo(fake);
  }

  #modelObject(model: ModelInfo, origin: string): Record<string, unknown> {
    const full = `${model.owner}/${model.name}`;
    const runs = [...this.#entries.values()].filter((e) => e.record.model === full).length;
    return modelObject(model, origin, runs);
  }

  #resolveTarget(
    target: CreateTarget,
    body: Record<string, unknown>,
  ):
    | { ok: true; model: FakeModel; kind: EmulatedKind; deployment: string | undefined }
    | { ok: false; error: ApiError } {
    const known = FAKE_MODELS.map((m) => m.name).join(', ');
    const byName = (name: string) => {
      const model = findModel(name);
      return model === undefined ? notFound(`Model not found: ${name}. The emulator runs ${known}.`) : model;
    };
    const pick = (found: FakeModel | ApiError, kind: EmulatedKind, deployment?: string) =>
      'status' in found
        ? { ok: false as const, error: found }
        : { ok: true as const, model: found, kind, deployment };
    switch (target.type) {
      case 'model':
        return pick(byName(`${target.owner}/${target.name}`), 'prediction');
      case 'deployment': {
        // Any owner's deployment named after a fake model runs that model.
        const model = findModel(`inlet/${target.name}`);
        if (model === undefined) {
          return {
            ok: false,
            error: notFound(
              `Deployment not found: ${target.owner}/${target.name}. Name it after a model: ${known}.`,
            ),
          };
        }
        return pick(model, 'prediction', `${target.owner}/${target.name}`);
      }
      case 'training': {
        const model = byName(`${target.owner}/${target.name}`);
        if (!('status' in model) && model.version !== target.version)
          return { ok: false, error: INVALID_VERSION };
        return pick(model, 'training');
      }
      case 'version': {
        const version = body.version;
        if (typeof version !== 'string' || version === '') {
          return {
            ok: false,
            error: invalid([{ type: 'required', field: 'version', description: 'version is required' }]),
          };
        }
        const match = /^([^/:\s]+\/[^/:\s]+)(?::(.+))?$/.exec(version);
        if (match === null) {
          const model = findModelByVersion(version);
          return model === undefined ? { ok: false, error: INVALID_VERSION } : pick(model, 'prediction');
        }
        const model = byName(match[1] ?? '');
        if (!('status' in model) && match[2] !== undefined && match[2] !== model.version) {
          return { ok: false, error: INVALID_VERSION };
        }
        return pick(model, 'prediction');
      }
    }
  }

  #step(entry: Entry, step: ModelStep | EndStep): void {
    if (this.#closed) return;
    const { record } = entry;
    // Both clocks read together: the throttle runs on the monotonic one, objects show the wall clock.
    const nowMs = this.#nowMs();
    const monotonicMs = performance.now();
    const events = applyStep(record, step, nowMs);
    if (events.length === 0) return;
    if (step.kind === 'output') for (const file of step.files ?? []) entry.files.set(file.name, file);
    const terminal = isTerminal(record);
    if (record.webhook !== undefined) {
      const event = entry.gate.select(events, monotonicMs);
      if (event !== undefined) {
        this.#sender.enqueue({
          predictionId: record.id,
          url: record.webhook,
          event,
          status: record.status,
          queuedAtMs: nowMs,
          body: JSON.stringify(toPublicObject(record, entry.origin)),
        });
      }
      if (terminal) this.#sender.finish(record.id);
    }
    for (const listener of entry.listeners) listener(events);
    if (!terminal) return;
    entry.run.stop();
    this.#options.logger?.info(
      { predictionId: record.id, status: record.status, model: record.model },
      `${record.kind} ${record.status}`,
    );
    if (record.kind === 'training' && record.status === 'succeeded') this.#addTrainedVersion(record);
    entry.doneWaiters.splice(0).forEach((resolve) => resolve());
    const ttl = this.#options.outputTtlMs ?? EMULATOR_DEFAULTS.outputTtlMs;
    entry.ttlTimer = setTimeout(() => this.#removeData(entry), ttl);
    entry.ttlTimer.unref();
  }

  // A successful training pushes a new version to its destination (a created model; fake ones stay as they are).
  #addTrainedVersion(record: PredictionRecord): void {
    const output = record.output as { version?: unknown } | null;
    if (typeof output?.version !== 'string') return;
    const [destination = '', id = ''] = output.version.split(':');
    const target = this.#createdModels.get(destination);
    const base = findModel(record.model);
    if (target === undefined || base === undefined) return;
    target.versions.unshift({
      id,
      createdAt: formatTime(record.completedAtMs ?? this.#nowMs()),
      inputSchema: base.inputSchema,
      outputSchema: base.outputSchema,
    });
  }

  // Replicate deletes API predictions' inputs, outputs, files and logs after an hour.
  #removeData(entry: Entry): void {
    const { record } = entry;
    record.output = null;
    record.input = {};
    record.logs = '';
    record.dataRemoved = true;
    entry.fileBytes.clear();
  }
}

function encodeCursor(beforeSeq: number): string {
  return Buffer.from(`before:${beforeSeq}`).toString('base64url');
}

function decodeCursor(cursor: string): number | undefined {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^before:(\d+)$/.exec(text);
  return match === null ? undefined : Number(match[1]);
}

/** Builds an emulator (not yet listening): `await emulator.listen(port, host)`. */
export function createEmulator(options: EmulatorOptions = {}): ReplicateEmulator {
  return new ReplicateEmulator(options);
}
