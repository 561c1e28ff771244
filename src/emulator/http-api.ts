import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ApiError, CreateTarget, EmulatorCore, ListFilters } from './api-types.js';
import { MIN_CANCEL_AFTER_MS, parseDuration, parsePreferWait } from './headers.js';
import { isTerminal, type EmulatedKind } from './prediction.js';
import { fileObject, MAX_UPLOAD_BYTES, parseUpload } from './uploads.js';

const MAX_BODY_BYTES = 16 * 1024 * 1024;

class HttpProblem extends Error {
  constructor(readonly problem: ApiError) {
    super(problem.body.detail);
  }
}

function problem(status: number, detail: string, title?: string): HttpProblem {
  return new HttpProblem({
    status,
    body: title === undefined ? { detail, status } : { title, detail, status },
  });
}

interface Request {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  /** The origin (scheme included) this request reached the emulator at. */
  readonly origin: string;
}

interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly pattern: RegExp;
  readonly auth: boolean;
  readonly handle: (request: Request, core: EmulatorCore) => Promise<void> | void;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw problem(413, `The request body is larger than ${maxBytes} bytes.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = (await readBody(req, MAX_BODY_BYTES)).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw problem(400, 'The request body is not valid JSON.');
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

async function create(request: Request, core: EmulatorCore, target: CreateTarget): Promise<void> {
  const { req, res } = request;
  const wait = parsePreferWait(header(req, 'prefer'));
  if (!wait.ok) throw problem(400, wait.detail);
  let cancelAfterMs: number | undefined;
  const cancelAfter = header(req, 'cancel-after');
  if (cancelAfter !== undefined) {
    const parsed = parseDuration(cancelAfter);
    if (!parsed.ok) throw problem(400, `Invalid Cancel-After header: ${parsed.detail}`);
    // Replicate: "The minimum allowed duration is 5 seconds." (checked before the time scale)
    if (parsed.value < MIN_CANCEL_AFTER_MS) {
      throw problem(
        400,
        `Invalid Cancel-After header "${cancelAfter}": the minimum allowed duration is 5 seconds.`,
      );
    }
    cancelAfterMs = parsed.value;
  }
  const body = await readJson(req);
  const result = core.createPrediction(target, body, {
    origin: request.origin,
    ...(cancelAfterMs === undefined ? {} : { cancelAfterMs }),
  });
  if (!result.ok) throw new HttpProblem(result.error);
  const kind: EmulatedKind = target.type === 'training' ? 'training' : 'prediction';
  let object = result.prediction;
  if (wait.value !== undefined) {
    await core.waitForEnd(result.id, wait.value * 1000);
    object = core.getPrediction(result.id, kind) ?? object;
  }
  const urls = object.urls as { get: string };
  sendJson(res, 201, object, { location: urls.get });
}

function getOne(kind: EmulatedKind) {
  return ({ res, params }: Request, core: EmulatorCore) => {
    const object = core.getPrediction(params[0] ?? '', kind);
    if (object === undefined) throw problem(404, 'Not found.');
    sendJson(res, 200, object);
  };
}

function cancelOne(kind: EmulatedKind) {
  return ({ res, params }: Request, core: EmulatorCore) => {
    const object = core.cancelPrediction(params[0] ?? '', kind);
    if (object === undefined) throw problem(404, 'Not found.');
    sendJson(res, 200, object);
  };
}

function parseTimeFilter(query: URLSearchParams, name: string): number | undefined {
  const text = query.get(name);
  if (text === null || text === '') return undefined;
  // ISO 8601 date-time (or date), as Replicate takes it.
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw problem(400, `Invalid ${name} "${text}": use an ISO 8601 date-time.`);
  return ms;
}

function parseListFilters(query: URLSearchParams): ListFilters {
  const createdAfterMs = parseTimeFilter(query, 'created_after');
  const createdBeforeMs = parseTimeFilter(query, 'created_before');
  const source = query.get('source');
  if (source !== null && source !== '' && source !== 'api' && source !== 'web')
    throw problem(400, `Invalid source "${source}": use api or web.`);
  return {
    ...(createdAfterMs === undefined ? {} : { createdAfterMs }),
    ...(createdBeforeMs === undefined ? {} : { createdBeforeMs }),
    ...(source === 'api' || source === 'web' ? { source } : {}),
  };
}

function list(kind: EmulatedKind) {
  return ({ res, query, origin }: Request, core: EmulatorCore) => {
    const cursor = query.get('cursor') ?? undefined;
    const page = core.listPredictions(kind, cursor === '' ? undefined : cursor, parseListFilters(query));
    if (page === undefined) throw problem(400, 'Invalid cursor.');
    // Page links keep the filters.
    const pageUrl = (c: string | null) => {
      if (c === null) return null;
      const params = new URLSearchParams();
      for (const name of ['created_after', 'created_before', 'source']) {
        const value = query.get(name);
        if (value !== null && value !== '') params.set(name, value);
      }
      params.set('cursor', c);
      return `${origin}/v1/${kind}s?${params.toString()}`;
    };
    sendJson(res, 200, { previous: pageUrl(page.previous), next: pageUrl(page.next), results: page.results });
  };
}

/** One page holding everything: the emulator's catalogs are small. */
function onePage(results: readonly Record<string, unknown>[]) {
  return { previous: null, next: null, results };
}

async function uploadFile({ req, res, origin }: Request, core: EmulatorCore): Promise<void> {
  const body = await readBody(req, MAX_UPLOAD_BYTES);
  const parsed = await parseUpload(body, header(req, 'content-type'));
  if (!parsed.ok) throw problem(400, parsed.detail);
  const { name, contentType, bytes, metadata } = parsed;
  sendJson(res, 201, core.createUpload({ name, contentType, bytes, metadata }, origin));
}

function sseWrite(res: ServerResponse, id: number, event: string, data: string): void {
  const lines = data.split('\n').map((line) => `data: ${line}`);
  res.write(`event: ${event}\nid: ${id}\n${lines.join('\n')}\n\n`);
}

// Server-sent events like Replicate's stream URLs: `output`, `logs`, then `error` and/or `done`.
function stream({ req, res, params }: Request, core: EmulatorCore): void {
  const id = params[0] ?? '';
  if (core.record(id) === undefined) throw problem(404, 'Not found.');
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  let eventId = 0;
  let outputSent = 0;
  let logsSent = 0;
  let ended = false;
  const flush = () => {
    const record = core.record(id);
    if (record === undefined || ended) return;
    const { output } = record;
    if (Array.isArray(output)) {
      for (; outputSent < output.length; outputSent++) {
        const item: unknown = output[outputSent];
        sseWrite(res, ++eventId, 'output', typeof item === 'string' ? item : JSON.stringify(item));
      }
    } else if (typeof output === 'string' && output.length > outputSent) {
      sseWrite(res, ++eventId, 'output', output.slice(outputSent));
      outputSent = output.length;
    }
    if (record.logs.length > logsSent) {
      sseWrite(res, ++eventId, 'logs', record.logs.slice(logsSent).replace(/\n$/, ''));
      logsSent = record.logs.length;
    }
    if (isTerminal(record)) {
      if (record.status === 'failed')
        sseWrite(res, ++eventId, 'error', JSON.stringify({ detail: record.error }));
      const reason =
        record.status === 'succeeded' || record.status === 'failed' ? {} : { reason: record.status };
      sseWrite(res, ++eventId, 'done', JSON.stringify(reason));
      ended = true;
      unsubscribe?.();
      res.end();
    }
  };
  const unsubscribe = core.subscribe(id, flush);
  req.on('close', () => unsubscribe?.());
  flush();
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function webPage({ res, params }: Request, core: EmulatorCore): void {
  const id = params[0] ?? '';
  const object = core.getPrediction(id, 'prediction') ?? core.getPrediction(id, 'training');
  if (object === undefined) throw problem(404, 'Not found.');
  const html =
    `<!doctype html><meta charset="utf-8"><title>${escapeHtml(id)}</title>` +
    `<h1>${escapeHtml(String(object.model))} · ${escapeHtml(String(object.status))}</h1>` +
    `<pre>${escapeHtml(JSON.stringify(object, null, 2))}</pre>`;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(html);
}

function serveFile({ res, params }: Request, core: EmulatorCore): void {
  const found = core.file(params[0] ?? '', params[1] ?? '');
  if (found.status === 'missing') throw problem(404, 'Not found.');
  if (found.status === 'gone')
    throw problem(410, 'This file was removed: outputs expire (see --output-ttl-ms).');
  res.writeHead(200, { 'content-type': found.contentType, 'content-length': found.bytes.length });
  res.end(found.bytes);
}

const SEG = '([^/]+)';

const ROUTES: readonly Route[] = [
  {
    method: 'POST',
    pattern: /^\/v1\/predictions$/,
    auth: true,
    handle: (r, c) => create(r, c, { type: 'version' }),
  },
  { method: 'GET', pattern: /^\/v1\/predictions$/, auth: true, handle: list('prediction') },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/predictions/${SEG}$`),
    auth: true,
    handle: getOne('prediction'),
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/predictions/${SEG}/cancel$`),
    auth: true,
    handle: cancelOne('prediction'),
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/models/${SEG}/${SEG}/predictions$`),
    auth: true,
    handle: (r, c) => create(r, c, { type: 'model', owner: r.params[0] ?? '', name: r.params[1] ?? '' }),
  },
  {
    method: 'GET',
    pattern: /^\/v1\/models$/,
    auth: true,
    handle: ({ res, origin }, core) => sendJson(res, 200, onePage(core.listModels(origin))),
  },
  {
    method: 'POST',
    pattern: /^\/v1\/models$/,
    auth: true,
    handle: async ({ req, res, origin }, core) => {
      const result = core.createModel(await readJson(req), origin);
      if (!result.ok) throw new HttpProblem(result.error);
      sendJson(res, 201, result.model);
    },
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/models/${SEG}/${SEG}$`),
    auth: true,
    handle: ({ res, params, origin }, core) => {
      const model = core.getModel(params[0] ?? '', params[1] ?? '', origin);
      if (model === undefined) throw problem(404, `Model not found: ${params[0]}/${params[1]}.`);
      sendJson(res, 200, model);
    },
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/models/${SEG}/${SEG}/versions$`),
    auth: true,
    handle: ({ res, params }, core) => {
      const versions = core.listVersions(params[0] ?? '', params[1] ?? '');
      if (versions === undefined) throw problem(404, `Model not found: ${params[0]}/${params[1]}.`);
      sendJson(res, 200, onePage(versions));
    },
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/models/${SEG}/${SEG}/versions/${SEG}$`),
    auth: true,
    handle: ({ res, params }, core) => {
      const version = core.getVersion(params[0] ?? '', params[1] ?? '', params[2] ?? '');
      if (version === undefined) throw problem(404, 'Not found.');
      sendJson(res, 200, version);
    },
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/deployments/${SEG}/${SEG}$`),
    auth: true,
    handle: ({ res, params }, core) => {
      const deployment = core.getDeployment(params[0] ?? '', params[1] ?? '');
      if (deployment === undefined) throw problem(404, 'Not found.');
      sendJson(res, 200, deployment);
    },
  },
  { method: 'POST', pattern: /^\/v1\/files$/, auth: true, handle: uploadFile },
  {
    method: 'GET',
    pattern: /^\/v1\/files$/,
    auth: true,
    handle: ({ res }, core) => sendJson(res, 200, onePage(core.listUploads())),
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/files/${SEG}$`),
    auth: true,
    handle: ({ res, params }, core) => {
      const upload = core.getUpload(params[0] ?? '');
      if (upload === undefined) throw problem(404, 'Not found.');
      sendJson(res, 200, fileObject(upload));
    },
  },
  {
    method: 'DELETE',
    pattern: new RegExp(`^/v1/files/${SEG}$`),
    auth: true,
    handle: ({ res, params }, core) => {
      if (!core.deleteUpload(params[0] ?? '')) throw problem(404, 'Not found.');
      res.writeHead(204);
      res.end();
    },
  },
  // Replicate's download URL also carries owner, expiry and signature; the emulator needs none.
  {
    method: 'GET',
    pattern: new RegExp(`^/v1/files/${SEG}/download$`),
    auth: false,
    handle: ({ res, params }, core) => {
      const upload = core.getUpload(params[0] ?? '');
      if (upload === undefined) throw problem(404, 'Not found.');
      res.writeHead(200, { 'content-type': upload.contentType, 'content-length': upload.bytes.length });
      res.end(upload.bytes);
    },
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/deployments/${SEG}/${SEG}/predictions$`),
    auth: true,
    handle: (r, c) => create(r, c, { type: 'deployment', owner: r.params[0] ?? '', name: r.params[1] ?? '' }),
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/models/${SEG}/${SEG}/versions/${SEG}/trainings$`),
    auth: true,
    handle: (r, c) =>
      create(r, c, {
        type: 'training',
        owner: r.params[0] ?? '',
        name: r.params[1] ?? '',
        version: r.params[2] ?? '',
      }),
  },
  { method: 'GET', pattern: /^\/v1\/trainings$/, auth: true, handle: list('training') },
  { method: 'GET', pattern: new RegExp(`^/v1/trainings/${SEG}$`), auth: true, handle: getOne('training') },
  {
    method: 'POST',
    pattern: new RegExp(`^/v1/trainings/${SEG}/cancel$`),
    auth: true,
    handle: cancelOne('training'),
  },
  {
    method: 'GET',
    pattern: /^\/v1\/webhooks\/default\/secret$/,
    auth: true,
    handle: ({ res }, core) => sendJson(res, 200, { key: core.secret }),
  },
  { method: 'GET', pattern: new RegExp(`^/stream/${SEG}$`), auth: false, handle: stream },
  { method: 'GET', pattern: new RegExp(`^/files/${SEG}/${SEG}$`), auth: false, handle: serveFile },
  { method: 'GET', pattern: new RegExp(`^/p/${SEG}$`), auth: false, handle: webPage },
  {
    method: 'GET',
    pattern: /^\/$/,
    auth: false,
    handle: ({ res, origin }, core) =>
      sendJson(res, 200, {
        emulator: 'inlet',
        api: `${origin}/v1`,
        models: core.models.map((m) => m.name),
      }),
  },
];

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw problem(404, 'Not found.');
  }
}

function authorized(req: IncomingMessage): boolean {
  const value = header(req, 'authorization') ?? '';
  return /^(Bearer|Token)\s+\S+/i.test(value);
}

/** The emulator's request handler: Replicate's routes under `/v1`, plus files, streams and web pages. */
export function createApiHandler(core: EmulatorCore): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://emulator');
        const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
        let pathMatched = false;
        for (const route of ROUTES) {
          const match = route.pattern.exec(path);
          if (match === null) continue;
          pathMatched = true;
          if (route.method !== req.method && !(route.method === 'GET' && req.method === 'HEAD')) continue;
          if (route.auth && !authorized(req)) {
            throw problem(401, 'You did not pass an authentication token', 'Unauthenticated');
          }
          const params = match.slice(1).map(decodeSegment);
          const origin = core.originFor((req.socket as Partial<TLSSocket>).encrypted === true);
          await route.handle({ req, res, params, query: url.searchParams, origin }, core);
          return;
        }
        if (pathMatched) throw problem(405, `Method "${req.method ?? ''}" not allowed.`);
        throw problem(404, 'Not found.');
      } catch (error) {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (error instanceof HttpProblem) {
          sendJson(res, error.problem.status, error.problem.body);
          return;
        }
        sendJson(res, 500, { detail: `Emulator error: ${String(error)}`, status: 500 });
      }
    })();
  };
}
