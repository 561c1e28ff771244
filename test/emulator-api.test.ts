/* eslint-disable @typescript-eslint/no-explicit-any -- parsed JSON bodies, checked by expect() */
import Replicate from 'replicate';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulator, findModel, type EmulatorOptions } from '../src/emulator/index.js';
import { startReceiver, within } from './emulator-receiver.js';

const AUTH = { authorization: 'Bearer test-token', 'content-type': 'application/json' };

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function start(options: EmulatorOptions = {}) {
  const emulator = createEmulator({ timeScale: 0.05, ...options });
  const url = await emulator.listen(0);
  cleanups.push(() => emulator.close());
  return { emulator, url };
}

async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = AUTH) {
  const res = await fetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function until<T>(get: () => Promise<T>, done: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await get();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const echoVersion = findModel('inlet/echo')!.version;

describe('the HTTP API', () => {
  it('requires a bearer token, with Replicate’s 401 body', async () => {
    const { url } = await start();
    for (const headers of [{}, { authorization: 'Bearer ' }, { authorization: 'Basic abc' }] as Record<
      string,
      string
    >[]) {
      const res = await call('GET', `${url}/predictions`, undefined, headers);
      expect(res.status).toBe(401);
      expect(res.json).toEqual({
        title: 'Unauthenticated',
        detail: 'You did not pass an authentication token',
        status: 401,
      });
    }
  });

  it('creates predictions by model, by owner/name:version, by bare version and by deployment', async () => {
    const { url } = await start();
    const input = { text: 'hi' };
    const byModel = await call('POST', `${url}/models/inlet/echo/predictions`, { input });
    const byRef = await call('POST', `${url}/predictions`, { version: `inlet/echo:${echoVersion}`, input });
    const byName = await call('POST', `${url}/predictions`, { version: 'inlet/echo', input });
    const byVersion = await call('POST', `${url}/predictions`, { version: echoVersion, input });
    const byDeployment = await call('POST', `${url}/deployments/acme/echo/predictions`, { input });
    for (const res of [byModel, byRef, byName, byVersion, byDeployment]) {
      expect(res.status).toBe(201);
      expect(res.json).toMatchObject({
        model: 'inlet/echo',
        version: echoVersion,
        input,
        status: 'starting',
        output: null,
        logs: '',
        error: null,
        data_removed: false,
        started_at: null,
        completed_at: null,
        source: 'api',
      });
      expect(res.json.id).toMatch(/^[a-z0-9]{26}$/);
      expect(res.headers.get('location')).toBe(`${url}/predictions/${res.json.id}`);
      expect(res.json.urls).toMatchObject({
        get: `${url}/predictions/${res.json.id}`,
        cancel: `${url}/predictions/${res.json.id}/cancel`,
      });
      expect(res.json.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    expect(byDeployment.json.deployment).toBe('acme/echo');
  });

  it('answers unknown models 404 and bad input 422 in Replicate’s error shape', async () => {
    const { url } = await start();
    const unknown = await call('POST', `${url}/models/nobody/nothing/predictions`, { input: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ status: 404 });
    expect(unknown.json.detail).toMatch(/nobody\/nothing/);
    expect((await call('POST', `${url}/predictions`, { version: 'nobody/nothing', input: {} })).status).toBe(
      404,
    );
    expect((await call('POST', `${url}/deployments/acme/nothing/predictions`, { input: {} })).status).toBe(
      404,
    );
    expect((await call('POST', `${url}/predictions`, { version: 'f'.repeat(64), input: {} })).status).toBe(
      422,
    );
    expect(
      (await call('POST', `${url}/predictions`, { version: `inlet/echo:${'f'.repeat(64)}`, input: {} }))
        .status,
    ).toBe(422);

    const missing = await call('POST', `${url}/models/inlet/echo/predictions`, { input: {} });
    expect(missing.status).toBe(422);
    expect(missing.json).toMatchObject({ title: 'Input validation failed', status: 422 });
    expect(missing.json.invalid_fields).toEqual([
      { type: 'required', field: 'input.text', description: 'text is required' },
    ]);
    const wrongType = await call('POST', `${url}/models/inlet/image/predictions`, {
      input: { prompt: 'x', n: 9 },
    });
    expect(wrongType.status).toBe(422);
    expect(wrongType.json.detail).toMatch(/n must be an integer from 1 to 4/);
    for (const body of [
      { input: { text: 'x' }, webhook: 'not a url' },
      { input: { text: 'x' }, webhook: 'ftp://example.test/x' },
      { input: { text: 'x' }, webhook_events_filter: ['finished'] },
      { input: 'text' },
      {},
    ]) {
      expect((await call('POST', `${url}/models/inlet/echo/predictions`, body)).status).toBe(422);
    }
    expect((await call('POST', `${url}/predictions`, { input: { text: 'x' } })).status).toBe(422);
    const badJson = await call('POST', `${url}/models/inlet/echo/predictions`, '{"input":');
    expect(badJson.status).toBe(400);
    expect(badJson.json).toMatchObject({ status: 400 });
    expect((await call('GET', `${url}/predictions/nope`)).json).toEqual({
      detail: 'Not found.',
      status: 404,
    });
    expect((await call('DELETE', `${url}/predictions`)).status).toBe(405);
    expect((await call('GET', `${url}/nothing-here`)).status).toBe(404);
  });

  it('Prefer: wait holds the answer until the prediction ends, or N seconds', async () => {
    const { url } = await start();
    const done = await call(
      'POST',
      `${url}/models/inlet/echo/predictions`,
      { input: { text: 'hi' } },
      { ...AUTH, prefer: 'wait=5' },
    );
    expect(done.status).toBe(201);
    expect(done.json).toMatchObject({ status: 'succeeded', output: 'hi' });

    const t0 = Date.now();
    const slow = await call(
      'POST',
      `${url}/models/inlet/slow/predictions`,
      { input: { seconds: 600 } },
      { ...AUTH, prefer: 'wait=1' },
    );
    const waited = Date.now() - t0;
    expect(slow.status).toBe(201);
    expect(slow.json.status).toBe('processing');
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(3000);
    await call('POST', `${url}/predictions/${slow.json.id}/cancel`);

    for (const prefer of ['wait=0', 'wait=61', 'wait=x']) {
      const bad = await call(
        'POST',
        `${url}/models/inlet/echo/predictions`,
        { input: { text: 'hi' } },
        { ...AUTH, prefer },
      );
      expect(bad.status).toBe(400);
    }
  });

  it('Cancel-After aborts a prediction that has not started and cancels one that is running', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const { emulator, url } = await start();
    // × 0.05: deadline 250 ms, boot 500 ms
    const queued = await call(
      'POST',
      `${url}/models/inlet/slow/predictions`,
      { input: { seconds: 1, boot_seconds: 10 }, webhook: receiver.url },
      { ...AUTH, 'cancel-after': '5s' },
    );
    expect(queued.json.deadline).toMatch(/Z$/);
    // deadline 250 ms, running after 15 ms
    const running = await call(
      'POST',
      `${url}/models/inlet/slow/predictions`,
      { input: { seconds: 100 }, webhook: receiver.url },
      { ...AUTH, 'cancel-after': '5s' },
    );
    await within(emulator.settled(), 10_000, 'deadlines');
    const aborted = (await call('GET', `${url}/predictions/${queued.json.id}`)).json;
    expect(aborted).toMatchObject({ status: 'aborted', started_at: null });
    expect(aborted.completed_at).not.toBeNull();
    const canceled = (await call('GET', `${url}/predictions/${running.json.id}`)).json;
    expect(canceled.status).toBe('canceled');
    expect(canceled.started_at).not.toBeNull();
    expect(receiver.received.map((r) => r.json.status).sort()).toEqual(['aborted', 'canceled']);

    for (const value of ['soon', '0s', '-1s', '4.9s', '4999ms', '4']) {
      const bad = await call(
        'POST',
        `${url}/models/inlet/echo/predictions`,
        { input: { text: 'x' } },
        { ...AUTH, 'cancel-after': value },
      );
      expect(bad.status).toBe(400);
    }
  });

  it('cancels a running prediction once, sending the completed webhook', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const { emulator, url } = await start();
    const p = await call('POST', `${url}/models/inlet/slow/predictions`, {
      input: { seconds: 600 },
      webhook: receiver.url,
    });
    const canceled = await call('POST', `${url}/predictions/${p.json.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.json).toMatchObject({ id: p.json.id, status: 'canceled' });
    const again = await call('POST', `${url}/predictions/${p.json.id}/cancel`);
    expect(again.json.completed_at).toBe(canceled.json.completed_at);
    expect((await call('POST', `${url}/predictions/nope/cancel`)).status).toBe(404);
    await within(emulator.settled(), 5_000, 'webhook');
    expect(receiver.received.map((r) => r.json.status)).toEqual(['canceled']);
    expect(receiver.received[0]!.body).toBe((await call('GET', `${url}/predictions/${p.json.id}`)).text);
  });

  it('lists predictions newest first with cursor pages', async () => {
    const { url } = await start({ pageSize: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(
        (await call('POST', `${url}/models/inlet/echo/predictions`, { input: { text: `${i}` } })).json.id,
      );
    const pages: any[] = [];
    let next: string | null = `${url}/predictions`;
    while (next !== null && pages.length < 10) {
      const page: any = (await call('GET', next)).json;
      pages.push(page);
      next = page.next;
    }
    expect(pages.map((p) => p.results.length)).toEqual([2, 2, 1]);
    expect(pages.flatMap((p) => p.results.map((r: any) => r.id))).toEqual([...ids].reverse());
    expect(pages[0].previous).toBeNull();
    expect(pages[1].next).toMatch(new RegExp(`^${url}/predictions\\?cursor=`));
    const back = (await call('GET', pages[2].previous)).json;
    expect(back.results.map((r: any) => r.id)).toEqual(pages[1].results.map((r: any) => r.id));
    expect((await call('GET', `${url}/predictions?cursor=garbage`)).status).toBe(400);
  });

  it('removes outputs, inputs, logs and files after the output TTL', async () => {
    const { emulator, url } = await start({ outputTtlMs: 300 });
    const p = await call('POST', `${url}/models/inlet/image/predictions`, { input: { prompt: 'x' } });
    await within(emulator.settled(), 5_000, 'run');
    const done = (await call('GET', `${url}/predictions/${p.json.id}`)).json;
    expect(done.data_removed).toBe(false);
    const fileUrl = done.output[0] as string;
    expect((await fetch(fileUrl)).status).toBe(200);
    const removed = await until(
      async () => (await call('GET', `${url}/predictions/${p.json.id}`)).json,
      (o) => o.data_removed === true,
      3_000,
    );
    expect(removed).toMatchObject({ output: null, input: {}, data_removed: true, status: 'succeeded' });
    expect((await fetch(fileUrl)).status).toBe(410);
    expect((await fetch(`${url.replace(/\/v1$/, '')}/files/${p.json.id}/nope.png`)).status).toBe(404);
  });

  it('runs trainings whose output is {version, weights}', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const { emulator, url } = await start();
    const missing = await call('POST', `${url}/models/inlet/echo/versions/${echoVersion}/trainings`, {
      destination: 'me/my-echo',
      input: {},
    });
    // Replicate's answer: the destination must exist (created with POST /v1/models).
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({
      detail: 'The specified training destination does not exist',
      status: 404,
    });
    expect((await call('POST', `${url}/models`, { owner: 'me', name: 'my-echo' })).status).toBe(201);
    const created = await call('POST', `${url}/models/inlet/echo/versions/${echoVersion}/trainings`, {
      destination: 'me/my-echo',
      input: { epochs: 3 },
      webhook: receiver.url,
    });
    expect(created.status).toBe(201);
    expect(created.json.urls.get).toBe(`${url}/trainings/${created.json.id}`);
    await within(emulator.settled(), 5_000, 'training');
    const training = (await call('GET', `${url}/trainings/${created.json.id}`)).json;
    expect(training.status).toBe('succeeded');
    expect(Object.keys(training.output).sort()).toEqual(['version', 'weights']);
    expect(training.output.version).toMatch(/^me\/my-echo:[0-9a-f]{64}$/);
    expect((await fetch(training.output.weights)).status).toBe(200);
    expect(receiver.received[receiver.received.length - 1]!.json).toEqual(training);
    expect((await call('GET', `${url}/predictions/${created.json.id}`)).status).toBe(404);
    expect((await call('GET', `${url}/trainings`)).json.results).toHaveLength(1);
    // The trained version is the destination's latest.
    const destination = (await call('GET', `${url}/models/me/my-echo`)).json;
    expect(`me/my-echo:${destination.latest_version.id}`).toBe(training.output.version);

    const wrongVersion = await call('POST', `${url}/models/inlet/echo/versions/${'0'.repeat(64)}/trainings`, {
      destination: 'me/x',
    });
    expect(wrongVersion.status).toBe(422);
    const noDestination = await call('POST', `${url}/models/inlet/echo/versions/${echoVersion}/trainings`, {
      input: {},
    });
    expect(noDestination.status).toBe(422);
  });

  it('serves the webhook signing secret', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const { url } = await start({ secret });
    expect((await call('GET', `${url}/webhooks/default/secret`)).json).toEqual({ key: secret });
  });
});

describe('the official replicate client against the emulator', () => {
  it('creates, gets, lists, cancels, runs, waits, streams and paginates', async () => {
    const { url, emulator } = await start({ pageSize: 3 });
    const replicate = new Replicate({ auth: 'x', baseUrl: url });

    const created = await replicate.predictions.create({
      model: 'inlet/echo',
      input: { text: 'via client' },
    });
    expect(created.status).toBe('starting');
    const got = await replicate.predictions.get(created.id);
    expect(got.id).toBe(created.id);
    const waited = await replicate.wait(got, { interval: 20 });
    expect(waited).toMatchObject({ status: 'succeeded', output: 'via client' });

    const list = await replicate.predictions.list();
    expect(list.results.map((p) => p.id)).toContain(created.id);

    const slow = await replicate.predictions.create({
      version: findModel('inlet/slow')!.version,
      input: { seconds: 600 },
    });
    const canceled = await replicate.predictions.cancel(slow.id);
    expect(canceled.status).toBe('canceled');

    expect(await replicate.run('inlet/echo', { input: { text: 'run by name' } })).toBe('run by name');
    expect(await replicate.run(`inlet/echo:${echoVersion}`, { input: { text: 'run by version' } })).toBe(
      'run by version',
    );
    expect(
      await replicate.run('inlet/stream', {
        input: { prompt: 'p', max_tokens: 3 },
        wait: { mode: 'poll', interval: 20 },
      }),
    ).toEqual(['You', ' said:', ' p.']);
    await expect(replicate.run('inlet/fail', { input: { message: 'nope' } })).rejects.toThrow(
      /Prediction failed: nope/,
    );

    const tokens: string[] = [];
    for await (const event of replicate.stream('inlet/stream', { input: { prompt: 'sse', max_tokens: 5 } })) {
      if (event.event === 'output') tokens.push(String(event.data));
    }
    expect(tokens.join('')).toBe('You said: sse. That is');

    const ids: string[] = [];
    for await (const page of replicate.paginate(() => replicate.predictions.list()))
      ids.push(...page.map((p) => p.id));
    expect(ids.length).toBeGreaterThan(3);
    expect(new Set(ids).size).toBe(ids.length);

    await replicate.models.create('me', 'model', { visibility: 'private', hardware: 'cpu' });
    const training = await replicate.trainings.create('inlet', 'echo', echoVersion, {
      destination: 'me/model',
      input: {},
    });
    await within(emulator.settled(), 5_000, 'training');
    expect((await replicate.trainings.get(training.id)).output).toHaveProperty('weights');
    expect(await replicate.webhooks.default.secret.get()).toEqual({ key: emulator.secret });
  });
});
