import { describe, expect, it } from 'vitest';
import { DestinationSchema } from './destination-config.js';
import {
  destinationConsumer,
  destinationSnapshot,
  generateDestinationSecret,
  storedDestinations,
} from './destinations.js';

describe('destinations as consumers', () => {
  it('store a snapshot without the secret that parses back to the same destination', () => {
    const config = DestinationSchema.parse({
      name: 'app',
      url: 'https://app.example.com/hook',
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      models: ['acme/*'],
      headers: { 'x-env': 'prod' },
    });
    const snapshot = destinationSnapshot(config);
    expect(JSON.stringify(snapshot)).not.toContain('whsec_');
    const [back] = storedDestinations([{ name: 'app', config: snapshot }]);
    expect(back).toEqual({ ...config, secret: undefined });
    const plain = DestinationSchema.parse({ name: 'b', url: 'http://127.0.0.1:1/x' });
    expect(storedDestinations([{ name: 'b', config: destinationSnapshot(plain) }])).toEqual([plain]);
    expect(storedDestinations([{ name: 'c', config: { url: 'ftp://nope' } }])).toEqual([]);
  });

  it('map the config to a consumer: filters, schedule, a generated secret when none is given', () => {
    const consumer = destinationConsumer(
      DestinationSchema.parse({ name: 'app', url: 'http://127.0.0.1:1/x' }),
    );
    expect(consumer).toMatchObject({
      name: 'app',
      kind: 'destination',
      events: ['prediction.completed', 'training.completed'],
      ordered: true,
      maxInFlight: 10,
    });
    expect(consumer.secret).toBeUndefined();
    expect(generateDestinationSecret()).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
  });
});
