import { timingSafeEqual } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './send-error.js';

export interface AdminAccessOptions {
  adminToken: string | undefined;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** 127.0.0.0/8 as a dotted quad, each part in decimal without leading zeros. */
const LOOPBACK_IPV4 = new RegExp(`^127\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const bare = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return bare === '::1' || LOOPBACK_IPV4.test(bare);
}

/** `::1` in any spelling, or an IPv4-mapped loopback address (`::ffff:127.0.0.1`). */
function isLoopbackIpv6(literal: string): boolean {
  if (!isIPv6(literal)) return false;
  const canonical = new URL(`http://[${literal}]/`).hostname;
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/**
 * The Host header must name a loopback address or localhost (against DNS rebinding), read strictly:
 * `localhost` or a name under `.localhost` (RFC 6761: always loopback), a 127.x.x.x address, or a
 * bracketed loopback IPv6 literal, each followed by nothing but an optional `:port`. Anything else
 * (`[::1]evil`, `localhost.evil.com`, `127.0.0.1.nip.io`, `localhost:abc`, an empty or missing Host)
 * is refused.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(host);
  if (match === null) return false;
  const [, ipv6, name, port] = match;
  if (port !== undefined && Number(port) > 65535) return false;
  if (ipv6 !== undefined) return isLoopbackIpv6(ipv6);
  const lower = name!.toLowerCase();
  return (
    lower === 'localhost' ||
    /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+localhost$/.test(lower) ||
    LOOPBACK_IPV4.test(lower)
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
        await sendError(
          reply,
          'unauthorized',
          'This endpoint needs "Authorization: Bearer <INLET_ADMIN_TOKEN>".',
          { 'www-authenticate': 'Bearer' },
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
    if (refusal !== undefined) await sendError(reply, 'forbidden', refusal);
  };
}
