import { describe, expect, it } from 'vitest';
import { describeTarget, parseBrokerUrl } from './broker-url.js';
import { DestinationSchema } from './destination-config.js';
import { createDeliverer } from './create-deliverer.js';
import { streamNameFor } from './nats-deliverer.js';

describe('broker URLs', () => {
  it('parse nats and redis targets', () => {
    expect(parseBrokerUrl('nats://127.0.0.1:4222/inlet.events')).toEqual({
      ok: true,
      target: { scheme: 'nats', host: '127.0.0.1', port: 4222, subject: 'inlet.events' },
    });
    expect(parseBrokerUrl('nats://u:p%40ss@broker/inlet')).toMatchObject({
      ok: true,
      target: { port: 4222, user: 'u', pass: 'p@ss', subject: 'inlet' },
    });
    expect(parseBrokerUrl('redis://:pw@[::1]:6380/inlet:events?db=2')).toEqual({
      ok: true,
      target: { scheme: 'redis', host: '::1', port: 6380, db: 2, stream: 'inlet:events', password: 'pw' },
    });
    const parsed = parseBrokerUrl('redis://:secret@[::1]:6380/s');
    expect(parsed.ok && describeTarget(parsed.target)).toBe('redis://[::1]:6380/s');
  });

  it('refuse what cannot be published to', () => {
    expect(parseBrokerUrl('nats://h:4222/a.*')).toMatchObject({ ok: false });
    expect(parseBrokerUrl('nats://h:4222/')).toMatchObject({ ok: false });
    expect(parseBrokerUrl('redis://h:6379/')).toMatchObject({ ok: false });
    expect(parseBrokerUrl('redis://h:6379/s?db=x')).toMatchObject({ ok: false });
  });

  it('are destination URLs, checked by the config schema', () => {
    const problems = (url: string) =>
      DestinationSchema.safeParse({ name: 'a', url }).error?.issues.map((issue) => issue.message);
    expect(problems('nats://127.0.0.1:4222/inlet.events')).toBeUndefined();
    expect(problems('redis://127.0.0.1:6379/inlet')).toBeUndefined();
    expect(problems('https://app.example.com/hook')).toBeUndefined();
    expect(problems('nats://127.0.0.1:4222/a.>')?.[0]).toMatch(/subject/);
    expect(problems('redis://127.0.0.1:6379/')?.[0]).toMatch(/stream/);
    expect(problems('ftp://example.com/x')?.[0]).toMatch(/nats:\/\//);
  });

  it('name created streams after their subject', () => {
    expect(streamNameFor('inlet.events')).toBe('INLET_EVENTS');
    expect(streamNameFor('a-b_c')).toBe('A-B_C');
  });
});

describe('createDeliverer', () => {
  const base = {
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    headers: {},
    timeoutMs: 1000,
    maxInFlight: 1,
    allowPrivateNetwork: false,
  };
  it('picks the deliverer by scheme', async () => {
    const made = [
      createDeliverer({ ...base, name: 'h', url: 'https://example.com/x' }),
      createDeliverer({ ...base, name: 'n', url: 'nats://127.0.0.1:4222/x' }),
      createDeliverer({ ...base, name: 'r', url: 'redis://127.0.0.1:6379/x' }),
    ];
    expect(made.map((d) => d.constructor.name)).toEqual(['HttpDeliverer', 'NatsDeliverer', 'RedisDeliverer']);
    for (const d of made) await d.close?.();
    expect(() => createDeliverer({ ...base, name: 'n', url: 'nats://127.0.0.1:4222/' })).toThrow(/subject/);
  });
});
