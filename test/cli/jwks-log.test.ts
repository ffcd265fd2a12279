// What the log says when a JWKS fetch fails (the CLI on a socket): it tells keys never loaded from keys kept.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, startGate, type RunningGate } from '../helpers/gate.js';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server.js';
import { freePort } from '../helpers/net.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const ADMIN = 'jwks-log-admin-token-0123456789';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: () => boolean | Promise<boolean>, ms = 8000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await what()) return true;
  return false;
}

/** The JSON log lines of a gate whose message starts with `prefix`. */
const linesOf = (g: RunningGate, prefix: string) =>
  g
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; msg: string; reason?: string })
    .filter((l) => l.msg.startsWith(prefix));

const yaml = (jwksUrl: string, extra = '') => `
store: { url: memory }
auth: { jwksUrl: "${jwksUrl}", issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256]${extra} }
`;

let key: TestKey;
beforeAll(async () => {
  key = await makeKey('ES256');
});

describe('JWKS fetch failures in the log', () => {
  const gates: RunningGate[] = [];
  let server: JwksServer | undefined;
  afterAll(async () => {
    await Promise.allSettled(gates.map((g) => g.stop()));
    await server?.close();
  });

  test('unreachable at boot: no keys were ever loaded, so the line says tokens are refused, not that keys are kept', async () => {
    const g = await startGate({ yaml: yaml(`http://127.0.0.1:${await freePort()}/jwks.json`) });
    gates.push(g);
    expect(await until(() => linesOf(g, 'JWKS fetch failed').length > 0)).toBe(true);
    const [line] = linesOf(g, 'JWKS fetch failed');
    expect(line).toMatchObject({ level: 'warn', reason: 'unreachable (ECONNREFUSED)' });
    expect(line!.msg).toBe('JWKS fetch failed; no keys loaded yet: every bearer token is refused (401 invalid_token) until a fetch succeeds');
    // what it says is what happens
    const res = await forward(g.url, 'GET', '/api/x', { Authorization: `Bearer ${await sign(key)}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('signing keys are not available');
  });

  test('failing after keys loaded: the line says the keys already loaded are kept, and they are', async () => {
    server = await startJwksServer([key.jwk]);
    const g = await startGate({ yaml: yaml(server.url, ', jwksMaxAge: 300ms') });
    gates.push(g);
    expect(await until(async () => (await fetch(`${g.url}/readyz`)).status === 200)).toBe(true);
    server.setDown(true);
    expect(await until(() => linesOf(g, 'JWKS fetch failed').length > 0)).toBe(true);
    const [line] = linesOf(g, 'JWKS fetch failed');
    expect(line).toMatchObject({ level: 'warn', reason: 'HTTP 503', msg: 'JWKS fetch failed; keeping the keys already loaded' });
    expect((await forward(g.url, 'GET', '/api/x', { Authorization: `Bearer ${await sign(key)}` })).status).toBe(200);
  });

  test('a reload whose new JWKS URL is unreachable: the line says the running config keeps serving, and it does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-jwks-log-'));
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
    writeFileSync(join(dir, 'gate.yaml'), `store: { url: memory }\nauth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }\n`);
    const g = await startGate({ configFile: join(dir, 'gate.yaml'), env: { GATE_ADMIN_TOKEN: ADMIN } });
    gates.push(g);
    writeFileSync(join(dir, 'gate.yaml'), yaml(`http://127.0.0.1:${await freePort()}/jwks.json`, ', jwksTimeout: 1s'));
    const res = await fetch(`${g.adminUrl}/reload`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(422);
    expect(await until(() => linesOf(g, 'JWKS fetch failed').length > 0)).toBe(true);
    expect(linesOf(g, 'JWKS fetch failed').map((l) => l.msg)).toEqual(['JWKS fetch failed for the config being reloaded; the running config keeps serving']);
    expect((await forward(g.url, 'GET', '/api/x', { Authorization: `Bearer ${await sign(key)}` })).status).toBe(200);
  });
});
