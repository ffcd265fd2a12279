// Reload without restart: SIGHUP, POST /reload and --watch; invalid configs keep the running one.
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, ROOT, startGate, type RunningGate } from '../helpers/gate.js';
import { startOwnRedis, uniquePrefix, type OwnRedis } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const ADMIN = 'reload-admin-token-0123456789';

function yaml(limit: number, extra = ''): string {
  return `
store: { url: memory }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit:
  rules:
    - { name: r, limit: ${limit}, window: 60s }
${extra}`;
}

const reload = (g: RunningGate) => fetch(`${g.adminUrl}/reload`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` } });
const configSha = async (g: RunningGate) => /^conflict_gate_config_info\{sha256="([0-9a-f]{12})"\} 1$/m.exec(await (await fetch(`${g.adminUrl}/metrics`)).text())?.[1];
const reloads = async (g: RunningGate, result: string) => Number(new RegExp(`^conflict_gate_config_reloads_total\\{result="${result}"\\} (\\d+)`, 'm').exec(await (await fetch(`${g.adminUrl}/metrics`)).text())?.[1] ?? 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await what()) return true;
  return false;
}

let key: TestKey;
let bearer: Record<string, string>;
beforeAll(async () => {
  key = await makeKey('ES256');
  bearer = { Authorization: `Bearer ${await sign(key, { sub: 'rita' })}` };
});

describe('POST /reload and SIGHUP', () => {
  let g: RunningGate;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cg-reload-'));
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
    writeFileSync(join(dir, 'gate.yaml'), yaml(2));
    g = await startGate({ configFile: join(dir, 'gate.yaml'), env: { GATE_ADMIN_TOKEN: ADMIN } });
  });
  afterAll(() => g.stop());

  test('a valid config applies to later requests, and rate-limit counts carry on', async () => {
    expect((await forward(g.url, 'GET', '/a', bearer)).status).toBe(200);
    expect((await forward(g.url, 'GET', '/a', bearer)).status).toBe(200);
    expect((await forward(g.url, 'GET', '/a', bearer)).status).toBe(429);
    const before = await configSha(g);
    writeFileSync(join(dir, 'gate.yaml'), yaml(4));
    const res = await reload(g);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { result: string; sha256: string; changed: boolean };
    expect(body).toMatchObject({ result: 'ok', changed: true });
    expect(await configSha(g)).toBe(body.sha256);
    expect(body.sha256).not.toBe(before);
    // 3 of the new 4 are spent already (the 429 counted too): one more passes
    const r = await forward(g.url, 'GET', '/a', bearer);
    expect(r.status).toBe(200);
    expect(r.headers.get('ratelimit-policy')).toBe('"r";q=4;w=60');
    expect((await forward(g.url, 'GET', '/a', bearer)).status).toBe(429);
  });

  test('an invalid config is refused with 422 and its problems; the running one keeps serving', async () => {
    const sha = await configSha(g);
    const errors = await reloads(g, 'error');
    writeFileSync(join(dir, 'gate.yaml'), yaml(0) + 'ratelimt: {}\n');
    const res = await reload(g);
    expect(res.status).toBe(422);
    const body = (await res.json()) as { code: string; problems: string[] };
    expect(body.code).toBe('invalid_config');
    expect(body.problems).toEqual(['rateLimit.rules[0].limit: expected a number >= 1', 'ratelimt: unknown key (did you mean rateLimit?)']);
    expect(await configSha(g)).toBe(sha);
    expect(await reloads(g, 'error')).toBe(errors + 1);
    expect((await forward(g.url, 'GET', '/a', { Authorization: `Bearer ${await sign(key, { sub: 'sid' })}` })).status).toBe(200);
    expect(await until(async () => g.output().includes('config reload refused: ratelimt: unknown key'))).toBe(true);
  });

  test('a YAML alias bomb is refused with 422 (on SIGHUP too), and the next reload still applies', async () => {
    const bomb = readFileSync(join(ROOT, 'test/fixtures/config/yaml-alias-bomb.yaml'), 'utf8');
    writeFileSync(join(dir, 'gate.yaml'), bomb);
    const res = await reload(g);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { problems: string[] }).problems).toEqual([`${join(dir, 'gate.yaml')}: invalid YAML: Excessive alias count indicates a resource exhaustion attack`]);
    const errors = await reloads(g, 'error');
    g.proc.kill('SIGHUP');
    expect(await until(async () => (await reloads(g, 'error')) === errors + 1)).toBe(true);
    // logged as check prints it, once per refusal (log lines reach the output asynchronously)
    expect(await until(async () => g.output().match(/config reload refused: [^\n]*Excessive alias count/g)?.length === 2)).toBe(true);
    expect(g.output()).not.toContain('unhandled');
    writeFileSync(join(dir, 'gate.yaml'), yaml(4));
    expect((await reload(g)).status).toBe(200);
  });

  test('a change to the listeners or the store is refused: it needs a restart', async () => {
    writeFileSync(join(dir, 'gate.yaml'), yaml(4).replace('store: { url: memory }', 'store: { url: memory, keyPrefix: "other:" }'));
    const res = await reload(g);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { problems: string[] }).problems).toEqual(['store.keyPrefix: changed; this needs a restart (the running config stays)']);
    // named as the file names them (not the compiled commandTimeoutMs, nor a derived mode)
    writeFileSync(join(dir, 'gate.yaml'), yaml(4).replace('store: { url: memory }', 'store: { url: "redis://127.0.0.1:1", commandTimeout: 500ms }'));
    const other = await reload(g);
    expect(other.status).toBe(422);
    expect(((await other.json()) as { problems: string[] }).problems).toEqual([
      'store.url: changed; this needs a restart (the running config stays)',
      'store.commandTimeout: changed; this needs a restart (the running config stays)',
    ]);
  });

  test('so is a change to a server setting read only when the listeners start (idleTimeout, watchConfig)', async () => {
    writeFileSync(join(dir, 'gate.yaml'), yaml(4, 'server: { idleTimeout: 2s, watchConfig: true }'));
    const res = await reload(g);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { problems: string[] }).problems).toEqual([
      'server.idleTimeout: changed; this needs a restart (the running config stays)',
      'server.watchConfig: changed; this needs a restart (the running config stays)',
    ]);
    // A server setting read per request is taken, and applies at once: trustedProxies.
    writeFileSync(join(dir, 'gate.yaml'), yaml(4, 'server: { trustedProxies: ["10.0.0.0/8"] }'));
    expect((await reload(g)).status).toBe(200);
    expect(((await (await forward(g.url, 'GET', '/a', bearer)).json()) as { code: string }).code).toBe('untrusted_source');
    writeFileSync(join(dir, 'gate.yaml'), yaml(4));
    expect((await reload(g)).status).toBe(200);
  });

  test('SIGHUP reloads; the process keeps running, and still drains and exits 0 on SIGTERM', async () => {
    writeFileSync(join(dir, 'gate.yaml'), yaml(7));
    const oks = await reloads(g, 'ok');
    g.proc.kill('SIGHUP');
    expect(await until(async () => (await reloads(g, 'ok')) === oks + 1)).toBe(true);
    expect(g.proc.exitCode).toBeNull();
    const r = await forward(g.url, 'GET', '/a', { Authorization: `Bearer ${await sign(key, { sub: 'tom' })}` });
    expect(r.headers.get('ratelimit-policy')).toBe('"r";q=7;w=60');
  });

  test('a rotated jwksFile is picked up on reload', async () => {
    const next = await makeKey('ES256');
    const token = { Authorization: `Bearer ${await sign(next, { sub: 'ursula' })}` };
    expect((await forward(g.url, 'GET', '/a', token)).status).toBe(401);
    writeFileSync(join(dir, 'jwks.json.tmp'), JSON.stringify(jwks(next)));
    renameSync(join(dir, 'jwks.json.tmp'), join(dir, 'jwks.json'));
    expect((await reload(g)).status).toBe(200);
    expect((await forward(g.url, 'GET', '/a', token)).status).toBe(200);
    expect((await forward(g.url, 'GET', '/a', bearer)).status).toBe(401);
  });

  test('without the admin token, /reload is refused', async () => {
    expect((await fetch(`${g.adminUrl}/reload`, { method: 'POST' })).status).toBe(401);
  });
});

describe('--watch: a Kubernetes ConfigMap volume swaps a symlink', () => {
  let g: RunningGate;
  let dir: string;
  beforeAll(async () => {
    // The layout kubelet writes: gate.yaml -> ..data/gate.yaml, ..data -> ..<timestamp>/
    dir = mkdtempSync(join(tmpdir(), 'cg-watch-'));
    mkdirSync(join(dir, '..2026_12_02_v1'));
    writeFileSync(join(dir, '..2026_12_02_v1', 'gate.yaml'), yaml(2));
    writeFileSync(join(dir, '..2026_12_02_v1', 'jwks.json'), JSON.stringify(jwks(key)));
    symlinkSync('..2026_12_02_v1', join(dir, '..data'));
    symlinkSync('..data/gate.yaml', join(dir, 'gate.yaml'));
    symlinkSync('..data/jwks.json', join(dir, 'jwks.json'));
    g = await startGate({ configFile: join(dir, 'gate.yaml'), args: ['--watch'] });
  });
  afterAll(() => g.stop());

  test('the new config is applied without a signal', async () => {
    const first = await configSha(g);
    mkdirSync(join(dir, '..2026_12_02_v2'));
    writeFileSync(join(dir, '..2026_12_02_v2', 'gate.yaml'), yaml(9));
    writeFileSync(join(dir, '..2026_12_02_v2', 'jwks.json'), JSON.stringify(jwks(key)));
    symlinkSync('..2026_12_02_v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    expect(await until(async () => (await configSha(g)) !== first)).toBe(true);
    const r = await forward(g.url, 'GET', '/a', bearer);
    expect(r.headers.get('ratelimit-policy')).toBe('"r";q=9;w=60');
  });
});

describe('a request in flight during a reload finishes on the config it started with', () => {
  let g: RunningGate;
  let jwksServer: Server;
  let slow = false;
  let dir: string;
  const cfg = (scope: string) => `
store: { url: memory }
auth:
  jwksUrl: "http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json"
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
  jwksCooldown: 1ms
  requireScopes: [{ path: "/api/*", scopes: ["${scope}"] }]
`;
  let late: TestKey;
  beforeAll(async () => {
    late = await makeKey('ES256');
    jwksServer = createServer((_req, res) => {
      const send = () => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(jwks(key, late)));
      if (slow) setTimeout(send, 1500);
      else send();
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    dir = mkdtempSync(join(tmpdir(), 'cg-inflight-'));
    writeFileSync(join(dir, 'gate.yaml'), cfg('a'));
    g = await startGate({ configFile: join(dir, 'gate.yaml'), env: { GATE_ADMIN_TOKEN: ADMIN } });
    await until(async () => (await fetch(`${g.url}/readyz?strict=1`)).status === 200);
  });
  afterAll(async () => {
    await g.stop();
    jwksServer.closeAllConnections();
    jwksServer.close();
  });

  test('old scope rule for the request in flight, the new one for the next', async () => {
    // The key set the gate loaded at start had `late` too, so make the in-flight request slow a
    // different way: a kid it has never seen forces a (slow) refetch.
    const unseen = await makeKey('ES256');
    const token = `Bearer ${await sign(unseen, { sub: 'vera', scope: 'a' })}`;
    slow = true;
    const inFlight = forward(g.url, 'GET', '/api/x', { Authorization: token });
    await sleep(200);
    writeFileSync(join(dir, 'gate.yaml'), cfg('b'));
    const reloaded = reload(g);
    // The in-flight request started on the config requiring "a": its token has "a" but its key is
    // unknown, so it is a 401 whatever the reload does, and it answers (it is not dropped).
    expect((await inFlight).status).toBe(401);
    expect((await reloaded).status).toBe(200);
    slow = false;
    const known = `Bearer ${await sign(key, { sub: 'vera', scope: 'a' })}`;
    expect((await forward(g.url, 'GET', '/api/x', { Authorization: known })).status).toBe(403);
  });
});

describe('a reload during a Redis outage keeps the in-memory limits (rateLimit.onStoreError: memory)', () => {
  let redis: OwnRedis;
  let g: RunningGate;
  let dir: string;
  const prefix = uniquePrefix('reload-insurance');
  const cfg = (limit: number) => `
store: { url: "${redis.url}", keyPrefix: "${prefix}" }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit:
  onStoreError: memory
  rules:
    - { name: writes, methods: [PUT], path: "/api/*", limit: ${limit}, window: 60s }
`;
  const puts = async (n: number) => {
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) statuses.push((await forward(g.url, 'PUT', '/api/orders/1', bearer)).status);
    return statuses;
  };
  beforeAll(async () => {
    redis = await startOwnRedis();
    dir = mkdtempSync(join(tmpdir(), 'cg-reload-outage-'));
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
    writeFileSync(join(dir, 'gate.yaml'), cfg(3));
    g = await startGate({ configFile: join(dir, 'gate.yaml'), env: { GATE_ADMIN_TOKEN: ADMIN } });
    expect(await until(async () => (await fetch(`${g.url}/readyz?strict=1`)).status === 200)).toBe(true);
  });
  afterAll(async () => {
    await g?.stop();
    await redis?.stop();
  });

  test('POST /reload and SIGHUP with the file unchanged: a client over its limit stays over; a changed rule starts afresh', async () => {
    await redis.kill();
    expect(await until(async () => ((await (await fetch(`${g.url}/readyz`)).json()) as { status: string }).status === 'degraded')).toBe(true);
    expect(await puts(5)).toEqual([200, 200, 200, 429, 429]);
    const res = await reload(g);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ result: 'ok', changed: false });
    expect(await puts(2)).toEqual([429, 429]);
    const oks = await reloads(g, 'ok');
    g.proc.kill('SIGHUP');
    expect(await until(async () => (await reloads(g, 'ok')) === oks + 1)).toBe(true);
    expect(await puts(2)).toEqual([429, 429]);
    // A rule whose limit (or name, or window) changed is another rule: its in-memory count starts from zero.
    writeFileSync(join(dir, 'gate.yaml'), cfg(4));
    expect(await (await reload(g)).json()).toMatchObject({ result: 'ok', changed: true });
    expect(await puts(5)).toEqual([200, 200, 200, 200, 429]);
  });
});
