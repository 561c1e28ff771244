import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from './admin-access.js';

describe('isLoopbackHost (against DNS rebinding)', () => {
  it('accepts localhost and loopback addresses, with an optional port', () => {
    for (const host of [
      'localhost',
      'localhost:5000',
      'LOCALHOST',
      'LocalHost:80',
      'app.localhost:5000',
      '127.0.0.1',
      '127.0.0.1:5000',
      '127.255.255.254:65535',
      '[::1]',
      '[::1]:5000',
      '[0:0:0:0:0:0:0:1]:5000',
      '[::ffff:127.0.0.1]:5000',
    ]) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
  });

  it('refuses every other form', () => {
    for (const host of [
      undefined,
      '',
      ' ',
      '[::1]evil',
      '[::1]evil.com:5000',
      '[::1].evil.com',
      '[::1]:5000evil',
      '[::1]:',
      '[::1]:abc',
      '[::1',
      '::1',
      '[::2]',
      '[fe80::1%25lo]',
      '[::ffff:10.0.0.1]',
      'localhost.evil.com',
      'localhost.evil.com:5000',
      'evil.com',
      'evillocalhost',
      '127.0.0.1.nip.io',
      '127.0.0.1.nip.io:5000',
      '127.0.0.1evil',
      '127.1',
      '127.0.0.256',
      '127.0.0.01',
      '128.0.0.1',
      '0.0.0.0',
      'localhost:abc',
      'localhost:',
      'localhost:5000:5000',
      'localhost:99999',
      'localhost ',
      'localhost/',
      'user@localhost',
      'localhost\u0000.evil.com',
      '-.localhost',
      '.localhost',
    ]) {
      expect(isLoopbackHost(host), JSON.stringify(host)).toBe(false);
    }
  });
});
