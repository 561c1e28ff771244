import type { IncomingMessage, ServerResponse } from 'node:http';
import { discardBody } from './discard-body.js';

/** How long, at most, a connection answered before its request body was read goes on reading it. */
export const LINGER_MS = 2_000;

/**
 * Makes the connection of a request answered before its body was read (with `connection: close`) close
 * without resetting while the client may still be sending that body.
 *
 * node:http closes such a connection as soon as the answer is written. If the request's body has not
 * all been read by then, closing the socket with bytes unread makes the kernel reset the connection,
 * and a client that reads its answer only once it has sent its whole body (most do) loses the answer
 * with it: it sees a reset, not the 503. Here the server sends its end of the connection at once, as
 * before, and goes on reading the body, dropping it as it arrives (none of it is held), until the
 * client closes its end, or `lingerMs` at most, then closes the socket.
 */
export function closeGently(raw: IncomingMessage, res: ServerResponse, lingerMs = LINGER_MS): void {
  const socket = res.socket;
  // inject()'s stand-in for a socket has nothing to reset.
  if (socket === null || typeof socket.destroySoon !== 'function') return;
  socket.destroySoon = () => {
    socket.end();
    const timer = setTimeout(() => socket.destroy(), lingerMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
  // Also a body whose reading stopped at the limit (chunked), which is paused.
  void discardBody(raw, { maxBytes: Infinity, timeoutMs: lingerMs, keepBytes: 0 });
}
