import { describe, expect, it } from 'vitest';
import { DEFAULT_ARCHIVE_HOSTS, HostAllowList, parseHostList } from './host-allow-list.js';

describe('HostAllowList', () => {
  const replicate = new HostAllowList(DEFAULT_ARCHIVE_HOSTS);

  it('allows replicate.delivery and its subdomains by default, on any port', () => {
    expect(replicate.allows('https://replicate.delivery/pbxt/abc/out-0.png')).toBe(true);
    expect(replicate.allows('https://pbxt.replicate.delivery/abc/out-0.png')).toBe(true);
    expect(replicate.allows('https://a.b.replicate.delivery:8443/x')).toBe(true);
    expect(replicate.allows('HTTPS://PBXT.Replicate.Delivery./x')).toBe(true);
  });

  it('refuses look-alikes, other schemes, credentials and everything unlisted', () => {
    for (const url of [
      'https://replicate.delivery.evil.com/x',
      'https://evilreplicate.delivery/x',
      'https://replicate.com/x',
      'ftp://replicate.delivery/x',
      'file:///etc/passwd',
      'https://user:pw@replicate.delivery/x',
      'https://169.254.169.254/latest/meta-data',
      'http://localhost/x',
      'not a url',
    ]) {
      expect(replicate.allows(url), url).toBe(false);
    }
  });

  it('matches a wildcard on subdomains only, and IP literals exactly', () => {
    const list = new HostAllowList(['*.files.example', '127.0.0.1', '::1']);
    expect(list.allows('https://a.files.example/x')).toBe(true);
    expect(list.allows('https://files.example/x')).toBe(false);
    expect(list.allows('http://127.0.0.1:9999/x')).toBe(true);
    expect(list.allows('http://127.0.0.2/x')).toBe(false);
    expect(list.allows('http://[::1]:80/x')).toBe(true);
  });
});

describe('parseHostList', () => {
  it('splits, trims and lower-cases', () => {
    expect(parseHostList(' Replicate.Delivery , *.replicate.delivery,127.0.0.1 ')).toEqual([
      'replicate.delivery',
      '*.replicate.delivery',
      '127.0.0.1',
    ]);
  });

  it('refuses ports, paths, inner wildcards and an empty list', () => {
    expect(() => parseHostList('replicate.delivery:443')).toThrow(/port/);
    expect(() => parseHostList('https://replicate.delivery')).toThrow(/not a host name/);
    expect(() => parseHostList('a.*.example')).toThrow(/not a host name/);
    expect(() => parseHostList(' , ')).toThrow(/empty/);
  });
});
