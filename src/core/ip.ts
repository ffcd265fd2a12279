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
