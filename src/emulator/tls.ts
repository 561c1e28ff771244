import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, isIP, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

export interface TlsPems {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM private key. */
  readonly key: string;
}

/** A listening socket that answers plain HTTP and HTTPS on the same port, and closes every connection on demand. */
export interface DualServer {
  readonly server: Server;
  destroyConnections(): void;
}

// A TLS connection opens with a handshake record (content type 22); an HTTP request with a method name.
const TLS_HANDSHAKE = 0x16;

/** One port for both schemes: the first byte of each connection says which one it speaks. */
export function createDualServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  tls: TlsPems | undefined,
): DualServer {
  const http = createHttpServer(handler);
  const https = tls === undefined ? undefined : createHttpsServer({ cert: tls.cert, key: tls.key }, handler);
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (https === undefined) {
      http.emit('connection', socket);
      return;
    }
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      (chunk[0] === TLS_HANDSHAKE ? https : http).emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  });
  return {
    server,
    destroyConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

export interface EmulatorCertificate extends TlsPems {
  /** Where the certificate is stored: what `NODE_EXTRA_CA_CERTS` takes. */
  readonly certPath: string;
  readonly keyPath: string;
  /** Whether it was made now (false: an earlier one was reused). */
  readonly created: boolean;
}

const DAY_MS = 24 * 3600 * 1000;

function covers(pem: string, key: string, names: readonly string[], nowMs: number): boolean {
  try {
    const cert = new X509Certificate(pem);
    if (Date.parse(cert.validTo) - nowMs < DAY_MS) return false;
    if (!cert.checkPrivateKey(createPrivateKey(key))) return false;
    return names.every((name) =>
      isIP(name) === 0 ? cert.checkHost(name) !== undefined : cert.checkIP(name) !== undefined,
    );
  } catch {
    return false;
  }
}

/**
 * The emulator's self-signed certificate for `names` (host names and IP addresses), kept in `dir`
 * (`emulator-cert.pem`, `emulator-key.pem`) and reused while it is valid for a day more and covers
 * every name, so a client told to trust it (`NODE_EXTRA_CA_CERTS`) keeps trusting it across restarts.
 */
export async function loadOrCreateCertificate(
  dir: string,
  names: readonly string[],
  nowMs = Date.now(),
): Promise<EmulatorCertificate> {
  const certPath = join(dir, 'emulator-cert.pem');
  const keyPath = join(dir, 'emulator-key.pem');
  const wanted = [...new Set(['localhost', '127.0.0.1', '::1', ...names])];
  try {
    const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    if (covers(cert, key, wanted, nowMs)) return { cert, key, certPath, keyPath, created: false };
  } catch {
    // none yet, or unreadable: make a new one
  }
  // Loaded only when a certificate is made (~90 ms of start-up every CLI command would pay otherwise).
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'inlet emulator' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(nowMs - DAY_MS),
    notAfterDate: new Date(nowMs + 365 * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: wanted.map((name) => (isIP(name) === 0 ? { type: 2, value: name } : { type: 7, ip: name })),
      },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Written aside then renamed: a reader never sees half a file.
  await writeFile(`${keyPath}.tmp`, pems.private, { mode: 0o600 });
  await writeFile(`${certPath}.tmp`, pems.cert, { mode: 0o644 });
  await rename(`${keyPath}.tmp`, keyPath);
  await rename(`${certPath}.tmp`, certPath);
  return { cert: pems.cert, key: pems.private, certPath, keyPath, created: true };
}
