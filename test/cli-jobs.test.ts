import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.js';
import { messageIdFor } from '../src/jobs/consumer.js';
import type { AttemptResult, Deliverer } from '../src/jobs/deliverer.js';
import { FakeClock, FakeTransitionLog } from '../src/jobs/fakes.test-suite.js';
import { Runner } from '../src/jobs/runner.js';
import { openStore } from '../src/store/index.js';
import { createTestInlet, tempDir } from './helpers.js';

async function inlet(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await runCli(args, {
    env: {},
    stdin: new PassThrough(),
    stdout,
    stderr,
    setExitCode: () => undefined,
  });
  return { code, stdout: out, stderr: err };
}

describe('inlet destinations / messages (the local database)', () => {
  const tmp = tempDir();
  const db = join(tmp.dir, 'jobs.db');
  const log = new FakeTransitionLog();
  let deadId = '';
  let deliveredId = '';

  beforeAll(async () => {
    const store = await openStore(`sqlite:${db}`, { mode: 'serve' });
    const clock = new FakeClock();
    const failing: Deliverer = {
      deliver: async (m): Promise<AttemptResult> =>
        m.objectId === 'p_bad'
          ? { outcome: 'retry', status: 500, error: 'HTTP 500', durationMs: 2 }
          : { outcome: 'delivered', status: 200, durationMs: 2 },
    };
    const runner = new Runner({ jobs: store.jobs, log, clock, random: () => 0.5 });
    runner.add({
      name: 'app',
      kind: 'destination',
      events: ['*'],
      ordered: true,
      maxInFlight: 4,
      retryDelaysMs: [10],
      attemptTimeoutMs: 1000,
      deliverer: failing,
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      config: { url: 'http://127.0.0.1:9/hook', events: ['*'], models: null },
    });
    await runner.idle();
    deadId = messageIdFor('app', log.append('p_bad', 'prediction.completed').id);
    deliveredId = messageIdFor('app', log.append('p_good', 'prediction.completed').id);
    await runner.idle();
    clock.advance(1000);
    await runner.idle();
    await runner.stop();
    await store.close();
  });
  afterAll(() => tmp.cleanup());

  it('lists and shows destinations, the secret included', async () => {
    const list = await inlet(['destinations', '--database', db]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/NAME\s+ENABLED\s+PENDING\s+DEAD/);
    expect(list.stdout).toMatch(/app\s+yes\s+0\s+1/);
    const show = await inlet(['destinations', 'show', 'app', '--database', db]);
    expect(JSON.parse(show.stdout)).toMatchObject({
      name: 'app',
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      dead: 1,
    });
    const missing = await inlet(['destinations', 'show', 'nope', '--database', db]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No destination "nope"');
  });

  it('lists messages by state and destination, and shows one with its attempts', async () => {
    const dead = await inlet(['messages', '--state', 'dead', '--destination', 'app', '--database', db]);
    expect(dead.code).toBe(0);
    expect(dead.stdout).toContain(deadId);
    expect(dead.stdout).not.toContain(deliveredId);
    const json = JSON.parse((await inlet(['messages', '--json', '--database', db])).stdout) as {
      data: { id: string }[];
    };
    expect(json.data.map((m) => m.id)).toEqual([deliveredId, deadId]);
    const show = JSON.parse((await inlet(['messages', 'show', deadId, '--database', db])).stdout) as {
      attempt_log: unknown[];
    };
    expect(show.attempt_log).toHaveLength(2);
    expect((await inlet(['messages', '--state', 'lost', '--database', db])).code).toBe(2);
  });

  it('retries a dead message; refuses one that is not dead', async () => {
    const notDead = await inlet(['messages', 'retry', deliveredId, '--database', db]);
    expect(notDead.code).toBe(1);
    expect(notDead.stderr).toContain('not dead');
    const retried = await inlet(['messages', 'retry', deadId, '--database', db]);
    expect(retried.code).toBe(0);
    const store = await openStore(`sqlite:${db}`, { mode: 'read' });
    expect((await store.jobs.getMessage(deadId))?.state).toBe('pending');
    await store.close();
    expect((await inlet(['messages', 'retry', '--database', db])).code).toBe(2);
    const all = await inlet(['messages', 'retry', '--all-dead', '--destination', 'app', '--database', db]);
    expect(all.stdout).toContain('Retrying 0 dead messages');
  });

  it('disables and enables a destination', async () => {
    expect((await inlet(['destinations', 'disable', 'app', '--database', db])).code).toBe(0);
    expect((await inlet(['destinations', '--database', db])).stdout).toContain(
      'no (disabled by an operator)',
    );
    expect((await inlet(['destinations', 'enable', 'app', '--database', db])).code).toBe(0);
    expect((await inlet(['destinations', '--database', db])).stdout).toMatch(/app\s+yes/);
  });

  it('never creates a database', async () => {
    const missing = await inlet(['messages', '--database', join(tmp.dir, 'none.db')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('No Inlet database');
  });
});

describe('the jobs API inside serve', () => {
  it('answers the destinations and messages routes under the admin access rule', async () => {
    const inlet = await createTestInlet({ INLET_ADMIN_TOKEN: 'tok' });
    try {
      const headers = { authorization: 'Bearer tok' };
      const destinations = await inlet.app.inject({ method: 'GET', url: '/api/destinations', headers });
      expect(destinations.json()).toEqual({ data: [] });
      const messages = await inlet.app.inject({ method: 'GET', url: '/api/messages?state=dead', headers });
      expect(messages.json()).toEqual({ data: [], next_cursor: null });
      const retry = await inlet.app.inject({ method: 'POST', url: '/api/messages/msg_x/retry', headers });
      expect(retry.statusCode).toBe(404);
      expect((await inlet.app.inject({ method: 'GET', url: '/api/destinations' })).statusCode).toBe(401);
    } finally {
      await inlet.close();
    }
  });
});
