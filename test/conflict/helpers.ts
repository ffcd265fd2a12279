// Shared by the conflict tests: a gate (the real CLI) on real Redis, and /auth calls the way each proxy makes them.
import { request } from 'node:http';
import { Redis } from 'ioredis';
import { startGate, type RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

export const ADMIN_TOKEN = 'conflict-tests-admin-token';

export interface Fixture {
  raw: Redis;
  key: TestKey;
  bearer(sub?: string, scope?: string): Promise<Record<string, string>>;
  /** Starts the CLI with `store` on the shared Redis (a fresh prefix), `auth` on a test key, and `sections` as written. */
  gate(sections: string, env?: Record<string, string>): Promise<{ g: RunningGate; prefix: string }>;
  close(): Promise<void>;
}

export async function fixture(): Promise<Fixture> {
  const raw = new Redis(SHARED_REDIS_URL);
  const key = await makeKey('ES256');
  const prefixes: string[] = [];
  const gates: RunningGate[] = [];
  return {
    raw,
    key,
    bearer: async (sub = 'alice', scope = '') => ({ Authorization: `Bearer ${await sign(key, { sub, scope })}` }),
    async gate(sections, env = {}) {
      const prefix = uniquePrefix('conflict2');
      prefixes.push(prefix);
      // commandTimeout 2s: these suites test decisions, not timeouts; a gate process stalled 250 ms (the
      // default) on a loaded machine would answer by its fail mode.
      const g = await startGate({
        yaml: `store: { url: "${SHARED_REDIS_URL}", keyPrefix: "${prefix}", commandTimeout: 2s }\n${sections.includes('auth:') ? '' : `auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }\n`}${sections}`,
        files: { 'jwks.json': JSON.stringify(jwks(key)) },
        env: { GATE_ADMIN_TOKEN: ADMIN_TOKEN, ...env },
      });
      gates.push(g);
      // Strict: the store answers (plain /readyz is 200 in a fail-open mode before Redis is connected).
      for (let i = 0; i < 100 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
      return { g, prefix };
    },
    async close() {
      await Promise.all(gates.map((g) => g.stop()));
      for (const p of prefixes) await flushPrefix(raw, p);
      raw.disconnect();
    },
  };
}

/** The JWKS auth block for sections that need more than the default (publicRoutes...). */
export const authBlock = (extra = '') => `auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256]${extra ? `, ${extra}` : ''} }\n`;

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  header(name: string): string | undefined;
  body: string;
  json(): Record<string, unknown>;
}

/**
 * GET /auth as a proxy sends it: the original request in X-Forwarded-*, the client's headers, and,
 * with `body`, the body too, as Traefik's forwardBody does (GET with the client's Content-Length).
 */
export function auth(url: string, method: string, uri: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Answer> {
  const u = new URL('/auth', url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method: 'GET',
        path: '/auth',
        agent: false,
        headers: { 'X-Forwarded-Method': method, 'X-Forwarded-Uri': uri, ...headers, ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            header: (n) => {
              const v = res.headers[n.toLowerCase()];
              return Array.isArray(v) ? v.join(', ') : v;
            },
            body: text,
            json: () => JSON.parse(text) as Record<string, unknown>,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** An admin API call with the test token. */
export async function admin(g: RunningGate, method: string, path: string, body?: unknown, token = ADMIN_TOKEN): Promise<Response> {
  return fetch(`${g.adminUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** The value of one metric sample, 0 when absent. */
export async function metric(g: RunningGate, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${g.adminUrl}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
