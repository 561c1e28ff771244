import { describe, expect, it } from 'vitest';
import { webhookPathHint } from './path-hint.js';

const PATH = '/replicate-webhook';

describe('webhookPathHint', () => {
  it('names what is wrong with a path close to the webhook path', () => {
    expect(webhookPathHint('/replicate-webhook//', PATH)).toBe(
      'Inlet receives webhooks at /replicate-webhook, with one trailing slash at most; this path has 2.',
    );
    expect(webhookPathHint('/prod/replicate-webhook', PATH)).toContain('adds the prefix /prod');
    expect(webhookPathHint('/webhook', '/hooks/webhook')).toContain('lacks its beginning (/hooks)');
    expect(webhookPathHint('/Replicate-Webhook', PATH)).toContain('case-sensitive');
    expect(webhookPathHint('/replicate-webhooks', PATH)).toContain('did you mean /replicate-webhook?');
    expect(webhookPathHint('/replicate_webhok', PATH)).toContain('did you mean');
  });

  it('only says where webhooks go for anything else', () => {
    expect(webhookPathHint('/wp-login.php', PATH)).toBe('Inlet receives webhooks at /replicate-webhook.');
    expect(webhookPathHint('/', PATH)).toBe('Inlet receives webhooks at /replicate-webhook.');
  });
});
