// Redis node addresses as the config and the client library write them: `host:port` or a redis(s):// URL.

/** One node: host, port, and whether its URL asked for TLS (`rediss://`). */
export interface RedisAddress {
  host: string;
  port: number;
  tls: boolean;
}

const HOST_PORT_RE = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/;

/** `host:port` (IPv6 as `[::1]:6379`), or null when malformed. */
export function parseHostPort(text: string): RedisAddress | null {
  const m = HOST_PORT_RE.exec(text.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2]!, port, tls: false };
}

/** `host:port`, `redis://host:port` or `rediss://host:port` (no credentials, path or query: those go in their own fields). */
export function parseNodeAddress(text: string): RedisAddress | null {
  const m = /^(rediss?):\/\/([^/?#@]+)\/?$/.exec(text.trim());
  if (!m) return parseHostPort(text);
  const hp = parseHostPort(m[2]!.includes(':') && !m[2]!.endsWith(']') ? m[2]! : `${m[2]!}:6379`);
  return hp && { ...hp, tls: m[1] === 'rediss' };
}

/** The highest database index Redis can be configured with (`databases` is an int). */
const MAX_DB = 2 ** 31 - 1;

/**
 * Why a one-node URL (`redis://[user:password@]host[:port][/db]`, `rediss://…`) cannot be used,
 * or undefined when it can. ioredis would take a malformed one as it comes: an unparsable URL
 * throws when the store is created, a database that is no integer is SELECTed and refused while
 * the connection serves database 0 anyway, and a query string overrides the store's own options.
 */
export function redisUrlProblem(text: string): string | undefined {
  if (!/^rediss?:\/\//.test(text)) return 'expected a redis:// or rediss:// URL';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL (expected redis://[user:password@]host[:port][/db])';
  }
  if (url.hostname === '') return 'no host (expected redis://[user:password@]host[:port][/db])';
  if (url.port === '0') return 'port 0: expected 1-65535';
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    return 'the user or password has a malformed %-escape';
  }
  if (url.search !== '' || url.hash !== '') return 'no query or fragment: the options have their own fields';
  const db = /^\/?$|^\/(\d+)$/.exec(url.pathname);
  if (!db || (db[1] !== undefined && Number(db[1]) > MAX_DB)) return 'the path is the database index: /0, /1, ...';
  return undefined;
}

/** A URL or address fit for a log line: the password (and user) are never printed. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)[^@/]*@/, '$1***@');
}
