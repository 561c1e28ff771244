import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from '../errors.js';

export interface AdminAccessOptions {
  adminToken: string | undefined;
}

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const bare = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/** The Host header must name a loopback address or localhost (against DNS rebinding). */
function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  const lower = name.toLowerCase();
  return (
    LOOPBACK_HOSTNAMES.has(lower) ||
    lower.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(lower)
  );
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? '');
  if (match?.[1] === undefined) return false;
  const given = Buffer.from(match[1].trim());
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CONTRACT §5: with a token, every request needs it; without one, loopback only, no proxy headers
 * (a reverse proxy on this host must not open the API), a loopback Host, and no foreign Origin on writes.
 */
export function createAdminAccessHook(options: AdminAccessOptions) {
  return async function adminAccess(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (options.adminToken !== undefined) {
      if (!tokenMatches(request.headers.authorization, options.adminToken)) {
        await reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send(
            errorBody('unauthorized', 'This endpoint needs "Authorization: Bearer <INLET_ADMIN_TOKEN>".'),
          );
      }
      return;
    }
    const viaProxy =
      request.headers.forwarded !== undefined || request.headers['x-forwarded-for'] !== undefined;
    const host = request.headers.host;
    let refusal: string | undefined;
    if (viaProxy || !isLoopbackAddress(request.socket.remoteAddress)) {
      refusal =
        'The admin API answers loopback clients only; set INLET_ADMIN_TOKEN to reach it from elsewhere.';
    } else if (!isLoopbackHost(host)) {
      refusal =
        'The Host header must name localhost or a loopback address; set INLET_ADMIN_TOKEN to use another name.';
    } else if (!SAFE_METHODS.has(request.method)) {
      const origin = request.headers.origin;
      if (origin !== undefined && origin !== `http://${host}` && origin !== `https://${host}`) {
        refusal = 'Cross-origin changes are refused.';
      }
    }
    if (refusal !== undefined) await reply.code(403).send(errorBody('forbidden', refusal));
  };
}
