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

/** A URL or address fit for a log line: the password (and user) are never printed. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)[^@/]*@/, '$1***@');
}
