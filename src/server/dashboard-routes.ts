import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { sendError } from './send-error.js';

/** The built dashboard: `dist/dashboard` beside `dist/server` (the package), or from the source tree. */
const CANDIDATE_DIRS = ['../dashboard/', '../../dist/dashboard/'].map((path) =>
  fileURLToPath(new URL(path, import.meta.url)),
);

function findDashboardDir(): string | undefined {
  return CANDIDATE_DIRS.find((dir) => existsSync(join(dir, 'index.html')));
}

/** The SPA's own routes: each answers index.html, and the page reads the path (CONTRACT §12). */
const DASHBOARD_PAGES = ['/', '/predictions/*', '/rejections', '/destinations'] as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

// The page loads only its own files and talks only to its own origin; images may come from the
// prediction's output URLs (any https host) or from the archive through blob: URLs.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob: https: http:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

export interface DashboardRoutesOptions {
  /** Paths the webhook is served at: never shadowed by a page. */
  webhookPaths: readonly string[];
  /** Where the built files are (tests); found beside the code otherwise. */
  dir?: string;
}

/**
 * The dashboard's static files (CONTRACT §12): they hold no data and need no token; every byte of
 * data comes from `/api`. Files are read from disk on request (a few, small, cached by the browser).
 * Without a build (a source checkout before `npm run build`) the pages answer 404 with a hint.
 */
export function registerDashboardRoutes(app: FastifyInstance, options: DashboardRoutesOptions): void {
  const dir = options.dir ?? findDashboardDir();
  const root = dir === undefined ? undefined : resolve(dir);

  const send = async (reply: FastifyReply, relative: string, immutable: boolean) => {
    if (root === undefined) {
      return sendError(reply, 'not_found', 'The dashboard is not built here; run `npm run build` first.');
    }
    const path = resolve(root, relative);
    if (!path.startsWith(root + sep)) return sendError(reply, 'not_found', 'No such file.');
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      return sendError(reply, 'not_found', `No dashboard file /${relative}.`);
    }
    return reply
      .type(TYPES[extname(path)] ?? 'application/octet-stream')
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .send(bytes);
  };

  for (const page of DASHBOARD_PAGES) {
    if (options.webhookPaths.includes(page)) continue;
    app.get(page, async (_request, reply) => send(reply, 'index.html', false));
  }
  // Vite names built files by their content hash: cached for good.
  app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) =>
    send(reply, join('assets', request.params['*']), true),
  );
  if (!options.webhookPaths.includes('/favicon.svg')) {
    app.get('/favicon.svg', async (_request, reply) => send(reply, 'favicon.svg', false));
  }
}
