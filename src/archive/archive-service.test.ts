import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../clock.js';
import { openStore } from '../store/index.js';
import { makeEvent } from '../store/store-contract.test-suite.js';
import type { Store } from '../store/types.js';
import { ArchiveService } from './archive-service.js';
import { FileArchiveStorage } from './file-storage.js';
import { HostAllowList } from './host-allow-list.js';

/** The job's schedule on a fake clock: a failing file is retried when due (time-scaled), then archived. */

const BYTES = Buffer.from('the bytes of an output file');

class FakeClock implements Clock {
  nowMs = 1_800_000_000_000;
  now() {
    return this.nowMs;
  }
  setTimeout() {
    return undefined;
  }
  clearTimeout() {}
}

describe('ArchiveService', () => {
  let dir: string;
  let store: Store;
  let server: Server;
  let base: string;
  let failuresLeft = 2;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inlet-archive-service-'));
    store = await openStore(`sqlite:${join(dir, 'inlet.db')}`, { mode: 'serve' });
    server = createServer((_req, res) => {
      if (failuresLeft-- > 0) res.writeHead(503).end('busy');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(BYTES);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await store.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('retries a failing download on the scaled schedule and shows the error until it succeeds', async () => {
    const clock = new FakeClock();
    const service = new ArchiveService({
      store,
      storage: new FileArchiveStorage(join(dir, 'files')),
      allowList: new HostAllowList(['127.0.0.1']),
      maxBytes: 1024,
      clock,
      timeScale: 0.5,
      random: () => 0.5,
      retryDelaysMs: [10_000, 60_000],
    });
    await store.commitEvents([
      makeEvent(
        'k1',
        { id: 'p1', model: 'acme/painter', status: 'succeeded', output: [`${base}/a.txt`] },
        { receivedAtMs: clock.nowMs },
      ),
    ]);

    expect(await service.runOnce()).toBe(1);
    let [file] = await store.recover.listArchiveFiles('p1');
    expect(file).toMatchObject({
      path: 'output[0]',
      error: 'HTTP 503 from ' + new URL(base).host,
      attempts: 1,
    });
    // 10 s × time scale 0.5, no jitter at random() = 0.5.
    expect(file!.nextAttemptAtMs).toBe(clock.nowMs + 5_000);

    clock.nowMs += 4_999;
    expect(await service.runOnce()).toBe(0);
    clock.nowMs += 1;
    expect(await service.runOnce()).toBe(1);
    [file] = await store.recover.listArchiveFiles('p1');
    expect(file).toMatchObject({ attempts: 2, nextAttemptAtMs: clock.nowMs + 30_000 });

    clock.nowMs += 30_000;
    expect(await service.runOnce()).toBe(1);
    [file] = await store.recover.listArchiveFiles('p1');
    const sha256 = createHash('sha256').update(BYTES).digest('hex');
    expect(file).toMatchObject({
      sha256,
      size: BYTES.length,
      error: null,
      nextAttemptAtMs: null,
      attempts: 3,
    });
    expect(readFileSync(join(dir, 'files', sha256)).equals(BYTES)).toBe(true);
    await service.stop();
  });
});
