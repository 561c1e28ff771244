import { BlockList, isIP } from 'node:net';

/**
 * `--trust-proxy CIDR[,CIDR…]`: proxies whose `X-Forwarded-For` names the real client in logs and
 * rejections. It never opens the admin API (that checks the socket's own address, and refuses any
 * request carrying a forwarding header).
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  /** Throws `RangeError` naming the first entry that is not an address or `address/prefix`. */
  constructor(spec: string) {
    const entries = spec
      .split(/[\s,]+/)
      .map((e) => e.trim())
      .filter((e) => e !== '');
    for (const entry of entries) {
      const [address = '', prefixText, extra] = entry.split('/');
      const family = isIP(address);
      const max = family === 6 ? 128 : 32;
      const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
      if (family === 0 || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
        throw new RangeError(`"${entry}" is not an IP address or CIDR range (such as 10.0.0.0/8 or ::1/128)`);
      }
      this.#list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
    }
    this.#empty = entries.length === 0;
  }

  #trusted(address: string): boolean {
    const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const family = isIP(plain);
    if (family === 0) return false;
    return this.#list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
  }

  /**
   * The client's address: the socket's, or when that is a trusted proxy, the nearest address in
   * `X-Forwarded-For` (read right to left) that is not itself a trusted proxy.
   */
  clientAddress(socketAddress: string, forwardedFor: string | string[] | undefined): string {
    if (this.#empty || forwardedFor === undefined || !this.#trusted(socketAddress)) return socketAddress;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
      .split(',')
      .map((hop) => hop.trim())
      .filter((hop) => hop !== '');
    let client = socketAddress;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) break; // A forged or garbled entry: trust nothing further left.
      client = hop;
      if (!this.#trusted(hop)) break;
    }
    return client;
  }
}
