import type { IncomingMessage } from 'node:http';

/**
 * Consumes what is left of a request body, within bounds, so the answer reaches a client still sending.
 * Returns the body's first `keepBytes` (for the rejection log) when nothing had been read before.
 */
export async function discardBody(
  raw: IncomingMessage,
  bounds: { maxBytes: number; timeoutMs: number; keepBytes: number },
): Promise<Buffer> {
  if (raw.complete || raw.destroyed) return Buffer.alloc(0);
  const fromStart = !raw.readableDidRead;
  const kept: Buffer[] = [];
  let keptBytes = 0;
  await new Promise<void>((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      raw.off('data', onData);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      if (fromStart && keptBytes < bounds.keepBytes) {
        // A copy: a slice would keep the socket's whole chunk alive as long as the rejection is queued.
        kept.push(Buffer.from(chunk.subarray(0, bounds.keepBytes - keptBytes)));
        keptBytes += Math.min(chunk.length, bounds.keepBytes - keptBytes);
      }
      seen += chunk.length;
      if (seen > bounds.maxBytes) done();
    };
    const timer = setTimeout(done, bounds.timeoutMs);
    raw.on('data', onData).once('end', done).once('error', done).once('close', done);
    raw.resume();
  });
  return Buffer.concat(kept);
}
