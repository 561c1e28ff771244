import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { drainConnectionsOnClose } from './connection-drain.js';

const REQUEST = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi';

/** A server that answers `ok`, with `Connection: close` once it is closing (as the app does). */
async function startServer(options: { maxMs?: number; idleGraceMs?: number } = {}) {
  let closing = false;
  const server = createServer((request, response) => {
    request.resume();
    request.once('end', () => {
      if (closing) response.setHeader('connection', 'close');
      response.end('ok');
    });
  });
  drainConnectionsOnClose(server, { maxMs: options.maxMs ?? 5_000, idleGraceMs: options.idleGraceMs ?? 100 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () => {
    closing = true;
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { server, port: (server.address() as AddressInfo).port, close };
}

/** A raw keep-alive client: whatever the server sends, and how the connection ended. */
function client(port: number) {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  const waiters: { count: number; resolve: () => void }[] = [];
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString();
    const answers = received.split('\r\n\r\nok').length - 1;
    for (const w of waiters.filter((w) => answers >= w.count)) w.resolve();
  });
  const ended = new Promise<string>((resolve) => {
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    socket.once('end', () => resolve('end'));
  });
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const answers = (count: number) =>
    new Promise<void>((resolve, reject) => {
      waiters.push({ count, resolve });
      if (received.split('\r\n\r\nok').length - 1 >= count) resolve();
      void ended.then((how) => reject(new Error(`connection ended (${how}) before answer ${count}`)));
    });
  return { socket, connected, answers, ended, received: () => received };
}

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  sockets.splice(0).forEach((s) => s.destroy());
  servers.splice(0).forEach((s) => s.closeAllConnections());
});

describe('drainConnectionsOnClose', { timeout: 5_000 }, () => {
  it('answers a request sent on an idle keep-alive connection just after close()', async () => {
    const { server, port, close } = await startServer({ idleGraceMs: 200 });
    servers.push(server);
    const c = client(port);
    sockets.push(c.socket);
    c.socket.write(REQUEST);
    await c.answers(1);
    const closed = close();
    c.socket.write(REQUEST);
    await c.answers(2);
    expect(c.received().split('\r\n\r\n')[2]).toMatch(/^ok/);
    expect(c.received()).toMatch(/connection: close/i);
    expect(await c.ended).toBe('end');
    await closed;
  });

  it('ends a silent connection (FIN, not a reset) once it has been quiet for the grace', async () => {
    const { server, port, close } = await startServer({ idleGraceMs: 100 });
    servers.push(server);
    const idle = client(port);
    const neverSent = client(port);
    sockets.push(idle.socket, neverSent.socket);
    idle.socket.write(REQUEST);
    await Promise.all([idle.answers(1), neverSent.connected]);
    const startedAt = Date.now();
    await close();
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(100);
    expect(await idle.ended).toBe('end');
    expect(await neverSent.ended).toBe('end');
  });

  it('answers request bytes that arrived while the event loop was blocked past the grace', async () => {
    const { server, port, close } = await startServer({ idleGraceMs: 50 });
    servers.push(server);
    const c = client(port);
    sockets.push(c.socket);
    c.socket.write(REQUEST);
    await c.answers(1);
    const closed = close();
    // Send, then block past the first sweep: the request sits in the kernel's buffer when the sweep's
    // timer runs (timers run before the poll phase reads sockets).
    await new Promise((resolve) => setTimeout(resolve, 20));
    // From the check phase, so the next loop iteration starts with the timers.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        c.socket.write(REQUEST);
        const until = Date.now() + 150;
        while (Date.now() < until);
        resolve();
      }),
    );
    await c.answers(2);
    expect(await c.ended).toBe('end');
    await closed;
  });

  it('cuts a stalled request after maxMs so close() ends', async () => {
    const { server, port, close } = await startServer({ idleGraceMs: 50, maxMs: 300 });
    servers.push(server);
    const c = client(port);
    sockets.push(c.socket);
    await c.connected;
    c.socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhi');
    await new Promise<void>((resolve) => server.once('request', () => resolve()));
    const startedAt = Date.now();
    await close();
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
    expect(['end', 'ECONNRESET']).toContain(await c.ended);
  });
});
