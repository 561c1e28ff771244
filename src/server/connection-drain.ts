import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';

/** A keep-alive connection silent for this long while closing is ended (a request sent in it is answered). */
const DRAIN_IDLE_GRACE_MS = 250;

export interface ConnectionDrainOptions {
  /** After this long, connections still open (a stalled upload, a slow reader) are cut. */
  maxMs: number;
  idleGraceMs?: number;
  logger?: Logger;
}

interface Connection {
  /** Requests received and not yet answered (or aborted). */
  active: number;
  /** `bytesRead` at the last sweep, or -1 when the connection was busy since. */
  seenBytes: number;
}

/**
 * Makes `server.close()` drain keep-alive connections instead of destroying the idle ones at once.
 *
 * Node's `close()` destroys every connection between two requests, but "between requests" includes a
 * client whose next request is on the wire or already in the kernel's buffer: that request gets a reset
 * instead of an answer. Here the listener still closes at once, requests in progress finish, and a
 * request arriving on an open connection is answered (the app says `Connection: close` while closing).
 * A connection is ended only once it has received nothing for a whole `idleGraceMs` (checked again after
 * pending I/O is read, so bytes that arrived while the event loop was busy count); everything left after
 * `maxMs` is cut, so a stalled client cannot hold the process.
 */
export function drainConnectionsOnClose(server: HttpServer, options: ConnectionDrainOptions): void {
  const graceMs = options.idleGraceMs ?? DRAIN_IDLE_GRACE_MS;
  const connections = new Map<Socket, Connection>();
  // Over TLS the requests arrive on the TLS socket, not the TCP one `connection` gives.
  const opened = server instanceof TlsServer ? 'secureConnection' : 'connection';
  server.on(opened, (socket: Socket) => {
    connections.set(socket, { active: 0, seenBytes: -1 });
    socket.once('close', () => connections.delete(socket));
  });
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const connection = connections.get(request.socket);
    if (connection === undefined) return;
    connection.active++;
    connection.seenBytes = -1;
    response.once('close', () => {
      connection.active--;
      connection.seenBytes = -1;
    });
  });

  const quiet = (socket: Socket, connection: Connection) =>
    connection.active === 0 && connection.seenBytes === socket.bytesRead;
  const sweep = () => {
    const candidates = [...connections].filter(([socket, connection]) => quiet(socket, connection));
    for (const [socket, connection] of connections) {
      if (connection.active === 0) connection.seenBytes = socket.bytesRead;
    }
    // Timers run before the poll phase: let it read what arrived meanwhile, then look again.
    setImmediate(() => {
      for (const [socket, connection] of candidates) {
        if (quiet(socket, connection) && !socket.destroyed) socket.destroy();
      }
    });
  };

  let draining = false;
  // `http.Server.close()` calls this to destroy idle connections; it starts the drain instead.
  server.closeIdleConnections = () => {
    if (draining) return;
    draining = true;
    const startedAt = Date.now();
    for (const [socket, connection] of connections) {
      if (connection.active === 0) connection.seenBytes = socket.bytesRead;
    }
    const sweeps = setInterval(sweep, graceMs).unref();
    const deadline = setTimeout(() => {
      options.logger?.warn(
        { connections: connections.size, waitedMs: Date.now() - startedAt },
        'shutting down: cutting the connections still open',
      );
      for (const socket of connections.keys()) socket.destroy();
    }, options.maxMs).unref();
    server.once('close', () => {
      clearInterval(sweeps);
      clearTimeout(deadline);
    });
  };
}
