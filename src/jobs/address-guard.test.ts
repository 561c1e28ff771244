import { describe, expect, it } from 'vitest';
import { classifyAddress, PrivateNetworkError } from './address-guard.js';

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'a loopback address'],
    ['127.255.1.2', 'a loopback address'],
    ['::1', 'a loopback address'],
    ['[::1]', 'a loopback address'],
    ['10.1.2.3', 'a private address'],
    ['172.16.0.1', 'a private address'],
    ['172.31.255.255', 'a private address'],
    ['192.168.1.1', 'a private address'],
    ['fc00::1', 'a private address'],
    ['fdff:1234::5', 'a private address'],
    ['169.254.1.1', 'a link-local address'],
    ['fe80::1', 'a link-local address'],
    ['fe80::1%eth0', 'a link-local address'],
    ['febf::1', 'a link-local address'],
    ['169.254.169.254', 'a cloud metadata address'],
    ['fd00:ec2::254', 'a cloud metadata address'],
    ['0.0.0.0', 'an unspecified address'],
    ['0.1.2.3', 'an unspecified address'],
    ['::', 'an unspecified address'],
    ['100.64.0.1', 'a shared (CGNAT) address'],
    ['100.127.255.255', 'a shared (CGNAT) address'],
    ['::ffff:127.0.0.1', 'a loopback address'],
    ['::ffff:7f00:1', 'a loopback address'],
    ['::ffff:10.0.0.1', 'a private address'],
    ['::ffff:169.254.169.254', 'a cloud metadata address'],
    ['::ffff:0.0.0.0', 'an unspecified address'],
    ['::127.0.0.1', 'a loopback address'],
    ['0:0:0:0:0:ffff:192.168.0.1', 'a private address'],
  ])('%s is %s', (address, what) => {
    expect(classifyAddress(address)).toBe(what);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.15.255.255',
    '172.32.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '169.253.255.255',
    '192.169.0.1',
    '2606:4700::1111',
    '2001:db8::1',
    'fec0::1',
    '::ffff:8.8.8.8',
    'not an address',
  ])('%s is not restricted', (address) => {
    expect(classifyAddress(address)).toBeUndefined();
  });
});

describe('PrivateNetworkError', () => {
  it('says what was refused and which setting allows it', () => {
    expect(new PrivateNetworkError('app', '127.0.0.1', 'a loopback address').message).toBe(
      'destination app: 127.0.0.1 is a loopback address; set allowPrivateNetwork to allow it',
    );
    expect(new PrivateNetworkError('app', '10.0.0.5', 'a private address', 'hooks.internal').message).toBe(
      'destination app: hooks.internal resolves to 10.0.0.5, a private address; set allowPrivateNetwork to allow it',
    );
  });
});
