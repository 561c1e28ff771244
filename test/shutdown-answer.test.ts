import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestInlet, prediction, signedHeaders, type TestInlet, WEBHOOK_PATH } from './helpers.js';

let inlet: TestInlet | undefined;
afterEach(async () => {
  await inlet?.close();
  inlet = undefined;
});

/** Sends raw HTTP on one keep-alive socket and resolves each answer's head and body as it arrives. */
function keepAliveClient(port: number) {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  let waiting: { resolve: (answer: string) => void } | undefined;
  const tryAnswer = () => {
    const head = received.indexOf('\r\n\r\n');
    if (waiting === undefined || head === -1) return;
    const length = Number(/content-length: (\d+)/i.exec(received.slice(0, head))?.[1] ?? 0);
    if (received.length < head + 4 + length) return;
    const answer = received.slice(0, head + 4 + length);
    received = received.slice(head + 4 + length);
    const w = waiting;
    waiting = undefined;
    w.resolve(answer);
  };
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    tryAnswer();
  });
  const send = (request: string) =>
    new Promise<string>((resolve) => {
      waiting = { resolve };
      socket.write(request);
    });
  return { socket, send };
}

describe('a request that arrives while serve is shutting down', () => {
  it('is answered 503 shutting_down with Retry-After and Connection: close, and counted', async () => {
    inlet = await createTestInlet();
    const { app, metrics } = inlet;
    let onClosing: ((answer: string) => void) | undefined;
    const whileClosing = new Promise<string>((resolve) => (onClosing = resolve));
    const body = JSON.stringify(prediction());
    const headers = { ...signedHeaders(body), host: 'x', 'content-length': String(Buffer.byteLength(body)) };
    const request =
      `POST ${WEBHOOK_PATH} HTTP/1.1\r\n` +
      Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      `\r\n${body}`;
    const connection: { client?: ReturnType<typeof keepAliveClient> } = {};
    // Runs after the app's own preClose hook, which marks it closing: the connection is still open.
    app.addHook('preClose', async () => {
      onClosing!(await connection.client!.send(request));
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const client = keepAliveClient((app.server.address() as AddressInfo).port);
    connection.client = client;
    const first = await client.send('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(first).toMatch(/^HTTP\/1\.1 200/);

    const closed = inlet.close();
    const answer = await whileClosing;
    await closed;
    inlet = undefined;
    client.socket.destroy();

    expect(answer).toMatch(/^HTTP\/1\.1 503/);
    expect(answer).toMatch(/\r\nretry-after: 2\r\n/i);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'shutting_down', message: 'Inlet is shutting down; retry in a moment.' },
    });
    expect(await metrics.text()).toContain(
      'inlet_webhook_deliveries_total{outcome="unavailable",code="shutting_down"} 1',
    );
  });
});
