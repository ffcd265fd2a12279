// IP addresses as rate-limit buckets. Pure.

/** The 8 groups of an IPv6 address (`::` expanded, an embedded IPv4 tail converted), or null. */
function ipv6Groups(ip: string): number[] | null {
  let s = ip;
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const b = v4.slice(1).map(Number);
    s = s.slice(0, v4.index) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const parts = [...head, ...Array<string>(Math.max(fill, 0)).fill('0'), ...tail];
  if (parts.length !== 8) return null;
  const groups = parts.map((p) => (/^[0-9a-fA-F]{1,4}$/.test(p) ? parseInt(p, 16) : NaN));
  return groups.some(Number.isNaN) ? null : groups;
}

/**
 * The bucket an address counts in: an IPv4 address as it is; an IPv6 address as its `/prefix`
 * network (`2001:db8:1:2::/64`), because one host usually holds a whole /64 and could otherwise
 * mint a fresh bucket per request.
 */
export function ipBucket(ip: string, v6Prefix: number): string {
  if (!ip.includes(':') || v6Prefix >= 128) return ip;
  const groups = ipv6Groups(ip);
  if (groups === null) return ip;
  let bits = v6Prefix;
  const kept = groups.map((g) => {
    const take = Math.max(0, Math.min(16, bits));
    bits -= 16;
    return take === 16 ? g : take === 0 ? 0 : g & (0xffff << (16 - take)) & 0xffff;
  });
  return `${kept.map((g) => g.toString(16)).join(':')}/${v6Prefix}`;
}

/** A dotted-quad IPv4 address as an unsigned 32-bit number, or null (leading zeros refused, as `net.isIPv4` does). */
export function ipv4Number(s: string): number | null {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return null; // a leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return null;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return n * 256 + part;
}

/** IPv4 CIDRs as (network, mask) pairs, matched with two integer operations each. */
export function ipv4Ranges(cidrs: readonly { ip: string; prefix: number }[]): (ip: number) => boolean {
  const ranges = cidrs.map(({ ip, prefix }) => {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return [(ipv4Number(ip)! & mask) >>> 0, mask] as const;
  });
  return (ip) => {
    for (const [net, mask] of ranges) if (((ip & mask) >>> 0) === net) return true;
    return false;
  };
}
