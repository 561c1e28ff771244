import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { errorBody } from '../errors.js';
import type { CommitBatcher } from '../ingest/commit-batcher.js';
import type { Ingest } from '../ingest/accept.js';
import type { InletMetrics } from '../metrics/metrics.js';
import { registerMetricsRoute } from './metrics-route.js';
import type { Store } from '../store/types.js';
import { createAdminAccessHook } from './admin-access.js';
import { registerApiRoutes } from './api-routes.js';
import { registerFilesRoutes } from './files-routes.js';
import type { ArchiveReader } from '../archive/archive-views.js';
import { registerStreamRoutes, type StreamRoutesDeps } from './stream-routes.js';
import { registerJobsRoutes, type JobsRoutesDeps } from './jobs-routes.js';
import { InflightBytes, meterBody, type RequestReservation } from './inflight-bytes.js';
import { drainConnectionsOnClose } from './connection-drain.js';
import { closeGently } from './close-gently.js';
import { discardBody } from './discard-body.js';
import { createErrorHandler } from './error-handler.js';
import { registerHealthRoutes } from './health-routes.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { OVERLOADED, sendError, sendRefusal, SHUTTING_DOWN } from './send-error.js';
import type { TrustedProxies } from './trusted-proxies.js';
import { createWebhookIntake, registerWebhookRoute, type WebhookIntake } from './webhook-route.js';

export interface AppOptions {
  webhookPath: string;
  maxBodyBytes: number;
  adminToken: string | undefined;
  /** A client that takes longer than this to send its headers is cut off (slow clients). */
  headersTimeoutMs: number;
  /** A request (headers and body) that takes longer than this is cut off (0: never). */
  requestTimeoutMs: number;
  /** PEM certificate and key: the server speaks HTTPS (`app.server.setSecureContext` swaps them later). */
  https?: { cert: Buffer; key: Buffer };
  /** Proxies whose `X-Forwarded-For` names the client address recorded for a delivery. */
  trustProxy?: TrustedProxies;
  /** Request body bytes held in memory at once, all connections together (`--max-inflight-bytes`). */
  maxInflightBytes: number;
  /** How long `close()` waits for connections (requests in progress, clients reading) before cutting them. */
  closeTimeoutMs: number;
}

export interface AppDeps {
  store: Store;
  ingest: Ingest;
  batcher: CommitBatcher;
  logger: Logger;
  /** Served at `/metrics` and fed by every webhook answer when present. */
  metrics?: InletMetrics;
  /** What the destinations, messages and replay routes need besides the store's job store. */
  jobs?: Omit<JobsRoutesDeps, 'jobs'>;
  /** The output files archive (`--archive`), when on. */
  archive?: ArchiveReader;
  /** What `GET /api/stream` and the listeners' routes need besides the store. */
  stream?: Omit<StreamRoutesDeps, 'log' | 'jobs'>;
}

/** Idle keep-alive connections are kept this long (longer than common proxies' 60 s). */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

/** Node checks header and request timeouts on this interval; short timeouts need a shorter one. */
function connectionsCheckingIntervalMs(timeoutsMs: number[]): number {
  const shortest = Math.min(30_000, ...timeoutsMs.filter((t) => t > 0));
  return Math.max(100, Math.floor(shortest / 4));
}

/** A raw HTTP answer for errors Node raises before Fastify sees a request (bad syntax, huge headers, too slow). */
function clientErrorResponse(status: 400 | 408, message: string): string {
  const body = JSON.stringify(errorBody('bad_request', message));
  const reason = status === 408 ? 'Request Timeout' : 'Bad Request';
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** Builds the HTTP app without listening (tests use `inject()`). */
export function buildApp(options: AppOptions, deps: AppDeps): FastifyInstance {
  const { headersTimeoutMs, requestTimeoutMs } = options;
  const loggerInstance: FastifyBaseLogger = deps.logger;
  const serverOptions = {
    connectionsCheckingInterval: connectionsCheckingIntervalMs([headersTimeoutMs, requestTimeoutMs]),
  };
  // The webhook path is served on node:http directly, ahead of Fastify (which serves everything else):
  // routing, hooks and the reply object cost about an eighth of a delivery's CPU (docs/benchmarks.md).
  // `front.webhook` is set below, once the intake is built (the factory runs inside Fastify()).
  const front: { webhook?: WebhookIntake } = {};
  const serverFactory = (fastify: (req: IncomingMessage, res: ServerResponse) => void) => {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const webhook = front.webhook;
      if (webhook?.isWebhookUrl(req.url) === true) webhook.handle(req, res);
      else fastify(req, res);
    };
    const server =
      options.https === undefined
        ? createHttpServer(serverOptions, handler)
        : (createHttpsServer({ ...serverOptions, ...options.https }, handler) as unknown as Server);
    // What Fastify sets on a server it creates itself.
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.requestTimeout = requestTimeoutMs;
    server.setTimeout(0);
    return server;
  };
  const app = Fastify({
    serverFactory,
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBodyBytes,
    // Errors raised before routing (a URL that does not decode): still the one error shape.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      void sendError(reply, 'bad_request', error.message);
    },
    clientErrorHandler: (error, socket) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ECONNRESET' || socket.destroyed) return;
      if (!socket.writable) {
        socket.destroy(error);
      } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        // A client too slow to send its request (headers or body timeout) is cut off.
        socket.end(clientErrorResponse(408, 'The request took too long to arrive.'));
      } else {
        const what = code === 'HPE_HEADER_OVERFLOW' ? 'headers too large' : 'malformed';
        socket.end(clientErrorResponse(400, `The request is not valid HTTP (${what}).`));
      }
    },
    // Requests that arrive while closing get the contract's 503 from the hook below.
    return503OnClosing: false,
    // Idle keep-alive connections are not destroyed on close: drainConnectionsOnClose ends them.
    forceCloseConnections: false,
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 1000 },
  });
  // Node wants headersTimeout <= requestTimeout (requestTimeout 0 means none).
  app.server.headersTimeout =
    requestTimeoutMs > 0 ? Math.min(headersTimeoutMs, requestTimeoutMs) : headersTimeoutMs;

  // While closing, answers in flight still go out, each on a connection that then closes, so
  // keep-alive clients cannot hold the process open after SIGTERM. A request that arrives on an open
  // connection meanwhile is answered 503 (never reset), and an idle connection is ended only after a
  // grace (docs/deployment.md#stopping).
  let closing = false;
  drainConnectionsOnClose(app.server, {
    maxMs: options.closeTimeoutMs,
    logger: deps.logger,
  });
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
  app.addHook('onRequest', async (request, reply) => {
    // The webhook handler answers its own requests while closing.
    if (!closing || isWebhookUrl(request.url)) return;
    // Read the body first: closing a connection with unread bytes resets it, answer and all.
    await discardBody(request.raw, { maxBytes: 4 * options.maxBodyBytes, timeoutMs: 5_000, keepBytes: 0 });
    return sendRefusal(reply, SHUTTING_DOWN);
  });

  // Bodies are read whole before a signature can be checked, so without a bound anyone could make Inlet
  // hold gigabytes. Every request with a body, on any route, reserves its Content-Length before a byte
  // of it is read (a body of unknown length, chunk by chunk as it arrives) and gives it back when the
  // request is over, however it ends (answered, aborted, timed out: the response closes in every case).
  const inflight = new InflightBytes(options.maxInflightBytes);
  deps.metrics?.watchInflight(() => inflight.held);
  const reservations = new WeakMap<IncomingMessage, RequestReservation>();
  let lastRefusalLogMs = 0;
  let refusedSinceLog = 0;
  /** Every refusal at the limit, on either door: counted, logged, its connection closed gently. */
  const noteOverload = (raw: IncomingMessage, res: ServerResponse) => {
    closeGently(raw, res);
    deps.metrics?.inflightRefused();
    // One line a second at most: under the floods this guards against, a line per request is I/O on
    // the request path (the metric counts every refusal).
    refusedSinceLog++;
    const nowMs = Date.now();
    if (nowMs - lastRefusalLogMs >= 1000) {
      deps.logger.warn(
        { held: inflight.held, limit: inflight.limit, refused: refusedSinceLog },
        'request bodies in memory at the limit (--max-inflight-bytes): answering 503 before reading the body',
      );
      lastRefusalLogMs = nowMs;
      refusedSinceLog = 0;
    }
  };
  const overloaded = (request: FastifyRequest, reply: FastifyReply) => {
    noteOverload(request.raw, reply.raw);
    return sendRefusal(reply, OVERLOADED);
  };
  const intake = createWebhookIntake(options, {
    ...deps,
    inflight,
    closing: () => closing,
    noteOverload,
  });
  const isWebhookUrl = intake.isWebhookUrl;
  front.webhook = intake;
  app.setNotFoundHandler(intake.notFound);
  app.setErrorHandler(
    createErrorHandler({
      maxBodyBytes: options.maxBodyBytes,
      logger: deps.logger,
      overloaded,
    }),
  );
  app.addHook('onRequest', async (request, reply) => {
    // The webhook handler reserves its own.
    if (isWebhookUrl(request.url)) return;
    const headers = request.raw.headers;
    const declared = headers['content-length'];
    if (headers['transfer-encoding'] === undefined && (declared === undefined || declared === '0')) return;
    const reservation = inflight.openRequest(headers, reply.raw, options.maxBodyBytes);
    if (reservation === undefined) return overloaded(request, reply);
    reservations.set(request.raw, reservation);
  });
  app.addHook('preParsing', async (request, _reply, payload) => {
    const reservation = reservations.get(request.raw);
    if (reservation === undefined || request.raw.headers['content-length'] !== undefined) return payload;
    return meterBody(payload, reservation);
  });

  registerWebhookRoute(app, intake, {
    maxBodyBytes: options.maxBodyBytes,
    reservationFor: (raw) => reservations.get(raw) ?? inflight.forRequest(),
  });
  registerHealthRoutes(app, deps.batcher);
  registerDashboardRoutes(app, { webhookPaths: intake.paths });

  void app.register(
    async (scope) => {
      scope.addHook('onRequest', createAdminAccessHook({ adminToken: options.adminToken }));
      registerApiRoutes(scope, deps.store, deps.archive);
      registerFilesRoutes(scope, deps.store, deps.archive);
      registerJobsRoutes(scope, { log: undefined, ...deps.jobs, jobs: deps.store.jobs });
      if (deps.stream !== undefined) {
        registerStreamRoutes(scope, { ...deps.stream, log: deps.store.transitions, jobs: deps.store.jobs });
      }
    },
    { prefix: '/api' },
  );
  if (deps.metrics !== undefined) registerMetricsRoute(app, deps.metrics, { adminToken: options.adminToken });

  return app;
}
