import { describe, expect, it } from 'vitest';
import { TrustedProxies } from './trusted-proxies.js';

describe('TrustedProxies', () => {
  const proxies = new TrustedProxies('10.0.0.0/8, 127.0.0.1,::1/128');

  it('takes the client from X-Forwarded-For only when the socket is a trusted proxy', () => {
    expect(proxies.clientAddress('10.1.2.3', '203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.clientAddress('::ffff:127.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.clientAddress('::1', '2001:db8::1')).toBe('2001:db8::1');
    expect(proxies.clientAddress('198.51.100.9', '203.0.113.7')).toBe('198.51.100.9');
    expect(proxies.clientAddress('10.1.2.3', undefined)).toBe('10.1.2.3');
  });

  it('reads right to left through trusted hops, and never past a hop it cannot trust', () => {
    // A client can write anything at the left: only the hop the trusted proxy appended counts.
    expect(proxies.clientAddress('10.0.0.1', '1.1.1.1, 203.0.113.7, 10.0.0.2')).toBe('203.0.113.7');
    expect(proxies.clientAddress('10.0.0.1', ['1.1.1.1', '203.0.113.7'])).toBe('203.0.113.7');
    expect(proxies.clientAddress('10.0.0.1', 'evil, 10.0.0.2')).toBe('10.0.0.2');
    expect(proxies.clientAddress('10.0.0.1', '')).toBe('10.0.0.1');
  });

  it('trusts nobody when empty, and refuses entries that are not addresses or ranges', () => {
    expect(new TrustedProxies('').clientAddress('127.0.0.1', '203.0.113.7')).toBe('127.0.0.1');
    expect(() => new TrustedProxies('10.0.0.0/33')).toThrow(/"10.0.0.0\/33" is not an IP address or CIDR/);
    expect(() => new TrustedProxies('proxy.local')).toThrow(/proxy.local/);
    expect(() => new TrustedProxies('10.0.0.0/8/1')).toThrow(RangeError);
  });
});
