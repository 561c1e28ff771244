import { afterEach, describe, expect, it } from 'vitest';
import { createEmulator, type ReplicateEmulator } from '../emulator/index.js';
import { normaliseBaseUrl, parseReplicateApiConfig } from '../replicate-settings.js';
import { createRetryingFetch, parseRetryAfter, ReplicateClient } from './client.js';

describe('normaliseBaseUrl', () => {
  it('adds /v1 to an origin and keeps a base that already ends in /v1', () => {
    expect(normaliseBaseUrl(undefined)).toBe('https://api.replicate.com/v1');
    expect(normaliseBaseUrl('http://127.0.0.1:5555')).toBe('http://127.0.0.1:5555/v1');
    expect(normaliseBaseUrl('http://127.0.0.1:5555/')).toBe('http://127.0.0.1:5555/v1');
    expect(normaliseBaseUrl('http://127.0.0.1:5555/v1/')).toBe('http://127.0.0.1:5555/v1');
    expect(() => normaliseBaseUrl('ftp://x')).toThrow(/REPLICATE_BASE_URL/);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('createRetryingFetch', () => {
  it('waits Retry-After (scaled) on 429 and gives up after the last try without the client retrying', async () => {
    let calls = 0;
    const waits: number[] = [];
    const fetch = createRetryingFetch(
      async () => {
        calls++;
        return new Response('{}', { status: 429, headers: { 'retry-after': '3' } });
      },
      0.5,
      { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
      { sleep: async (ms) => void waits.push(ms) },
    );
    const init = { method: 'POST' };
    expect((await fetch('http://x/v1/predictions', init)).status).toBe(429);
    expect(calls).toBe(3);
    expect(waits).toEqual([1500, 1500]);
    // The official client calls again with the same init: answered without a request.
    expect((await fetch('http://x/v1/predictions', init)).status).toBe(429);
    expect(calls).toBe(3);
  });

  it('retries a GET after a network error, never a POST', async () => {
    let calls = 0;
    const failing = async () => {
      calls++;
      if (calls === 1) throw new TypeError('fetch failed');
      return new Response('{}', { status: 200 });
    };
    const policy = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 };
    const get = createRetryingFetch(failing, 1, policy, { sleep: async () => undefined });
    expect((await get('http://x', { method: 'GET' })).status).toBe(200);
    calls = 0;
    const post = createRetryingFetch(failing, 1, policy, { sleep: async () => undefined });
    await expect(post('http://x', { method: 'POST' })).rejects.toThrow('fetch failed');
  });
});

describe('ReplicateClient against the emulator', () => {
  let emulator: ReplicateEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });

  it('creates, fetches the raw body and the secret, honouring 429 Retry-After', async () => {
    emulator = createEmulator({ timeScale: 0.01, rateLimit: { fraction: 0.5, retryAfterSec: 2 } });
    const api = await emulator.listen(0, '127.0.0.1');
    const origin = new URL(api).origin;
    const config = parseReplicateApiConfig({
      REPLICATE_API_TOKEN: 'test',
      REPLICATE_BASE_URL: origin,
      INLET_TIME_SCALE: '0.001',
    });
    const waits: number[] = [];
    const client = new ReplicateClient(config, { onRetry: ({ waitMs }) => waits.push(waitMs) });
    const created = await client.createPrediction({
      model: 'inlet/echo',
      input: { text: 'hi' },
      webhookEventsFilter: ['completed'],
    });
    expect(created.status).toBe('starting');
    const fetched = await client.getObject('prediction', created.id);
    expect(fetched.found).toBe(true);
    if (fetched.found) {
      expect(fetched.object.id).toBe(created.id);
      expect(JSON.parse(fetched.body.toString('utf8'))).toEqual(fetched.object);
    }
    expect(await client.getObject('prediction', 'nope')).toEqual({ found: false, status: 404 });
    expect(await client.defaultWebhookSecret()).toBe(emulator.secret);
    // Half the calls were throttled; each wait was Retry-After (2 s) scaled by 0.001.
    expect(waits.length).toBeGreaterThan(0);
    expect(waits.every((w) => w === 2)).toBe(true);
  });
});
