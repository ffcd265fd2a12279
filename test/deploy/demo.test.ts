// The docker-compose demo without Docker: the same two processes compose runs (dev-issuer = the bin
// with --dev; conflict-gate = the bin with deploy/gate.yaml and compose's environment), called the way
// Traefik calls /auth with traefik/dynamic.yml's middleware. Follows the walkthrough in docs/DEPLOY.md.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEV_SEEDED } from '../../src/dev.js';
import { startGate, type RunningGate } from '../helpers/gate.js';
import { freePort } from '../helpers/net.js';
import { ROOT, composeEnv, composeInterpolate, yamlDoc } from './files.js';

const ADMIN_TOKEN = 'demo-admin-token';
const compose = composeInterpolate(yamlDoc('docker-compose.yml'), {});
const gateEnv = composeEnv(compose.services['conflict-gate']);
const forwardAuth = Object.values(yamlDoc('traefik/dynamic.yml').http.middlewares as Record<string, any>).find((m) => m.forwardAuth).forwardAuth;
const copied = (forwardAuth.authResponseHeaders as string[]).map((h) => h.toLowerCase());
/** Headers of any HTTP response that are not the gate's to give: they never reach the upstream anyway. */
const TRANSPORT = ['content-type', 'content-length', 'transfer-encoding', 'date', 'connection', 'keep-alive'];

let issuer: RunningGate;
let gate: RunningGate;
let token: string;
/** compose's JWKS_URL, with the dev-issuer service's host replaced by the loopback port it listens on here. */
let jwksUrl: string;

/** What Traefik sends to the address with trustForwardHeader: false, for a client request to localhost:8000. */
function viaTraefik(method: string, uri: string, clientHeaders: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gate.url}/auth`, {
    headers: {
      ...clientHeaders,
      'X-Forwarded-Method': method,
      'X-Forwarded-Proto': 'http',
      'X-Forwarded-Host': 'localhost:8000',
      'X-Forwarded-Port': '8000',
      'X-Forwarded-Uri': uri,
      'X-Forwarded-For': '203.0.113.7',
    },
  });
}

/** Traefik on a 2xx: each authResponseHeaders name is deleted from the client request, then set from the answer. */
function upstreamRequest(clientHeaders: Record<string, string>, auth: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(clientHeaders)) if (!copied.includes(k.toLowerCase())) out[k.toLowerCase()] = v;
  for (const name of copied) {
    const v = auth.headers.get(name);
    if (v !== null) out[name] = v;
  }
  return out;
}

const bearer = () => ({ Authorization: `Bearer ${token}` });

beforeAll(async () => {
  issuer = await startGate({ args: ['--dev'], env: { LOG_LEVEL: 'warn' } });
  for (let i = 0; i < 100 && !/export TOKEN=/.test(issuer.output()); i++) await new Promise((r) => setTimeout(r, 50));
  token = /export TOKEN=(\S+)/.exec(issuer.output())![1]!;
  // compose's JWKS_URL names the dev-issuer service; here it listens on a loopback port.
  const jwks = new URL(gateEnv.JWKS_URL!);
  jwks.host = `127.0.0.1:${issuer.port}`;
  jwksUrl = jwks.toString();
  gate = await startGate({
    configFile: `${ROOT}/deploy/gate.yaml`,
    // The memory store keeps the run independent of any Redis; the wiring under test is auth and headers.
    env: { ...gateEnv, JWKS_URL: jwksUrl, REDIS_URL: 'memory', GATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'warn', METRICS_PORT: String(await freePort()) },
  });
  for (let i = 0; i < 100 && (await fetch(`${gate.adminUrl}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
});

afterAll(async () => {
  await gate?.stop();
  await issuer?.stop();
});

describe('the compose demo, as Traefik calls the gate', () => {
  test("the gate loads the demo issuer's keys from compose's JWKS_URL and turns ready", async () => {
    expect((await fetch(`${gate.adminUrl}/readyz`)).status).toBe(200);
  });

  test('a public route passes without a token', async () => {
    expect((await viaTraefik('GET', '/public/hello')).status).toBe(200);
  });

  test('a protected route without a token gets 401 missing_token, with WWW-Authenticate', async () => {
    const res = await viaTraefik('GET', '/api/orders/42');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(((await res.json()) as { code: string }).code).toBe('missing_token');
  });

  test("the demo token passes; the upstream gets the gate's identity headers, never the client's spoofed ones", async () => {
    const client = { ...bearer(), 'X-Auth-Subject': 'admin', 'X-Auth-Tenant': 'evil' };
    const res = await viaTraefik('GET', '/api/orders/42', client);
    expect(res.status).toBe(200);
    expect(upstreamRequest(client, res)).toMatchObject({ 'x-auth-subject': 'dev-user', 'x-auth-tenant': 'acme', 'x-auth-scopes': 'orders:read orders:write' });
  });

  test.each([
    ['GET', '/api/orders/42'],
    ['GET', '/public/hello'],
    ['POST', '/api/items'],
  ])('every header the gate answers %s %s with is one the middleware copies', async (method, uri) => {
    const res = await viaTraefik(method, uri, bearer());
    expect(res.status).toBe(200);
    const names: string[] = [];
    res.headers.forEach((_value, name) => {
      if (!TRANSPORT.includes(name)) names.push(name);
    });
    expect(names).toContain('x-auth-subject');
    expect(names.filter((h) => !copied.includes(h))).toEqual([]);
  });

  test('a write to an order without If-Match gets 428 (require: if-match)', async () => {
    expect((await viaTraefik('PUT', '/api/orders/42', bearer())).status).toBe(428);
  });

  test('after the upstream publishes version 8, a stale If-Match gets 412 and the current one passes', async () => {
    const key = DEV_SEEDED.key; // orders:42, the key of /api/orders/42 in deploy/gate.yaml too
    const pub = await fetch(`${gate.adminUrl}/versions/${key}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ version: '8' }),
    });
    expect(pub.status).toBe(200);
    const stale = await viaTraefik('PUT', '/api/orders/42', { ...bearer(), 'If-Match': '"7"' });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('etag')).toBe('"8"');
    const current = await viaTraefik('PUT', '/api/orders/42', { ...bearer(), 'If-Match': '"8"' });
    expect(current.status).toBe(200);
    expect(upstreamRequest(bearer(), current)).toMatchObject({ 'x-resource-key': key, 'x-resource-version': '8' });
  });

  test('the 21st write in a minute gets 429 from the "writes" rule', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 21; i++) codes.push((await viaTraefik('POST', '/api/items', bearer())).status);
    // Earlier tests spent some of the 20 writes; the limit is reached within this loop either way.
    expect(codes).toContain(429);
    expect(codes.slice(0, codes.indexOf(429)).every((c) => c === 200)).toBe(true);
  });
});

test('with compose\'s default (empty) GATE_ADMIN_TOKEN, the admin API refuses everyone', async () => {
  const bare = await startGate({
    configFile: `${ROOT}/deploy/gate.yaml`,
    env: { ...gateEnv, JWKS_URL: jwksUrl, REDIS_URL: 'memory', LOG_LEVEL: 'warn', METRICS_PORT: String(await freePort()) },
  });
  try {
    expect(gateEnv.GATE_ADMIN_TOKEN).toBe('');
    const res = await fetch(`${bare.adminUrl}/versions/orders:1`, { method: 'PUT', headers: { Authorization: 'Bearer ' }, body: '{"version":"1"}' });
    expect(res.status).toBe(403);
  } finally {
    await bare.stop();
  }
});
