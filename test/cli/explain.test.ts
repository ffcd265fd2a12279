// `conflict-gate explain` and admin POST /explain: a trace per gate, the answer, and no change to the store.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, runCli, startGate, type RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const raw = new Redis(SHARED_REDIS_URL);
const prefix = uniquePrefix('explain');
const dir = mkdtempSync(join(tmpdir(), 'cg-explain-'));
const config = join(dir, 'gate.yaml');
let key: TestKey;
let writer: string;
let reader: string;
const ADMIN = 'explain-admin-token-0123456789';

function yaml(storeUrl = SHARED_REDIS_URL, onStoreError = 'allow'): string {
  return `
store: { url: "${storeUrl}", keyPrefix: "${prefix}", connectTimeout: 500ms }
auth:
  jwksFile: jwks.json
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
  publicRoutes: ["GET /public/*"]
  requireScopes:
    - { methods: [PUT, POST], path: "/api/*", scopes: ["orders:write"] }
rateLimit:
  rules:
    - { name: tight, path: "/api/tight/*", limit: 1, window: 60s }
    - { name: writes, methods: [PUT, POST], path: "/api/*", limit: 50, window: 60s }
conflict:
  onStoreError: ${onStoreError}
  claim: { enabled: true, lease: 30s }
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
    - { path: "/api/carts/:id", key: "carts:{id}", require: client-version }
`;
}

/** Every key under the prefix with its value and whether it expires: the store as explain must leave it. */
async function snapshot(): Promise<Record<string, [string | null, boolean]>> {
  const out: Record<string, [string | null, boolean]> = {};
  const keys = await raw.keys(`${prefix}*`);
  for (const k of keys.sort()) out[k] = [await raw.get(k), (await raw.pttl(k)) > 0];
  return out;
}

beforeAll(async () => {
  key = await makeKey('ES256');
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
  writeFileSync(config, yaml());
  writer = `Bearer ${await sign(key, { sub: 'alice', scope: 'orders:write' })}`;
  reader = `Bearer ${await sign(key, { sub: 'bob', scope: 'orders:read' })}`;
  await raw.set(`${prefix}ver:{orders:42}`, '7');
  await raw.set(`${prefix}ver:{orders:43}`, '3');
  await raw.set(`${prefix}claim:{orders:43}`, 'holder:3', 'PX', 60_000);
  await raw.set(`${prefix}ver:{carts:1}`, '2.4.1');
  await raw.set(`${prefix}rl:tight:c:alice`, '1', 'EX', 60);
});
afterAll(async () => {
  await flushPrefix(raw, prefix);
  raw.disconnect();
});

/** Tokens are signed in beforeAll, after the tables are built. */
const tokens = (args: string[]) => args.map((a) => a.replace('$WRITER', writer).replace('$READER', reader));

type Row = [name: string, args: string[], exit: number, status: number, code: string | undefined, gates: string[]];

const rows = (): Row[] => [
  ['allow: a current If-Match', ['--method', 'PUT', '--uri', '/api/orders/42', '-H', 'Authorization: $WRITER', '-H', 'If-Match: "7"'], 0, 200, undefined, ['allow', 'allow', 'allow']],
  ['a public route', ['--method', 'GET', '--uri', '/public/x'], 0, 200, undefined, ['allow', 'skip', 'skip']],
  ['missing_token', ['--method', 'GET', '--uri', '/api/orders/42'], 1, 401, 'missing_token', ['deny', 'not_reached', 'not_reached']],
  ['invalid_token', ['--method', 'GET', '--uri', '/api/orders/42', '-H', 'Authorization: Bearer a.b.c'], 1, 401, 'invalid_token', ['deny', 'not_reached', 'not_reached']],
  ['insufficient_scope', ['--method', 'PUT', '--uri', '/api/orders/42', '-H', 'Authorization: $READER', '-H', 'If-Match: "7"'], 1, 403, 'insufficient_scope', ['deny', 'not_reached', 'not_reached']],
  ['rate_limited', ['--method', 'GET', '--uri', '/api/tight/x', '-H', 'Authorization: $WRITER'], 1, 429, 'rate_limited', ['allow', 'deny', 'not_reached']],
  ['precondition_failed', ['--method', 'PUT', '--uri', '/api/orders/42', '-H', 'Authorization: $WRITER', '-H', 'If-Match: "6"'], 1, 412, 'precondition_failed', ['allow', 'allow', 'deny']],
  ['stale_client_version', ['--method', 'PUT', '--uri', '/api/carts/1', '-H', 'Authorization: $WRITER', '-H', 'Client-Version: 2.4.0'], 1, 409, 'stale_client_version', ['allow', 'allow', 'deny']],
  ['write_in_progress', ['--method', 'PUT', '--uri', '/api/orders/43', '-H', 'Authorization: $WRITER', '-H', 'If-Match: "3"'], 1, 409, 'write_in_progress', ['allow', 'allow', 'deny']],
  ['precondition_required', ['--method', 'PUT', '--uri', '/api/orders/42', '-H', 'Authorization: $WRITER'], 1, 428, 'precondition_required', ['allow', 'allow', 'deny']],
  ['bad_forward_request', ['--method', 'PUT', '--uri', '/api/orders;v=1/42', '-H', 'Authorization: $WRITER'], 1, 400, 'bad_forward_request', ['deny', 'not_reached', 'not_reached', 'not_reached']],
];

describe('conflict-gate explain', () => {
  test.each(rows())('%s: its exit code, the trace and the answer; the store is unchanged', async (_n, rawArgs, exit, status, code, gates) => {
    const args = tokens(rawArgs);
    const before = await snapshot();
    const r = await runCli(['explain', '--config', config, '--json', ...args], {}, dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(exit);
    const trace = JSON.parse(r.stdout) as { gates: { gate: string; result: string; code?: string; rule?: string }[]; answer: { status: number; code?: string; headers: Record<string, string> } };
    expect(trace.answer.status).toBe(status);
    expect(trace.answer.code).toBe(code);
    expect(trace.gates.map((g) => g.result)).toEqual(gates);
    if (code !== undefined && gates.includes('deny')) expect(trace.gates.find((g) => g.result === 'deny')!.code).toBe(code);
    expect(await snapshot()).toEqual(before);
  });

  test('the text form names each gate, its rule and what it read', async () => {
    const r = await runCli(['explain', '--config', config, '--method', 'PUT', '--uri', '/api/orders/42', '-H', `Authorization: ${writer}`, '-H', 'If-Match: "6"'], {}, dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^auth\s+allow\s+rule "PUT,POST \/api\/\*"/m);
    expect(r.stdout).toMatch(/^ratelimit\s+allow\s+rule "writes"/m);
    expect(r.stdout).toMatch(/^conflict\s+deny\s+rule "\/api\/orders\/:id"\s+precondition_failed/m);
    expect(r.stdout).toMatch(/key=orders:42, version=7, lease=free/);
    expect(r.stdout).toMatch(/^answer: 412 precondition_failed$/m);
    expect(r.stdout).toContain('ETag: "7"');
    expect(r.stdout).not.toContain(writer.slice(7));
  });

  test('with the store down, the trace says so and the fail mode answers (503 under deny)', async () => {
    const down = join(dir, 'down.yaml');
    writeFileSync(down, yaml('redis://127.0.0.1:1/0', 'deny'));
    const r = await runCli(['explain', '--config', down, '--json', '--method', 'PUT', '--uri', '/api/orders/42', '-H', `Authorization: ${writer}`, '-H', 'If-Match: "7"'], {}, dir);
    expect(r.code).toBe(1);
    const trace = JSON.parse(r.stdout) as { gates: { seen?: Record<string, unknown> }[]; answer: { status: number; code: string } };
    expect(trace.answer).toMatchObject({ status: 503, code: 'store_unavailable' });
    expect(trace.gates[2]!.seen).toMatchObject({ version: 'store unavailable' });
  });

  test.each<[string, string[]]>([
    ['no --uri', ['--method', 'GET']],
    ['no --method', ['--uri', '/x']],
    ['a malformed -H', ['--method', 'GET', '--uri', '/x', '-H', 'no colon']],
    ['an option of another command', ['--method', 'GET', '--uri', '/x', '--dev']],
    ['an --ip that is not an IP address', ['--method', 'GET', '--uri', '/x', '--ip', 'notanip']],
  ])('exit 2 for a usage error: %s', async (_n, args) => {
    const r = await runCli(['explain', '--config', config, ...args], {}, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^conflict-gate: /);
  });

  test('exit 2 for a bad config, with the problems as check prints them', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'auth: { secret: "x" }\nratelimit: {}\n');
    const r = await runCli(['explain', '--config', bad, '--method', 'GET', '--uri', '/x'], {}, dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ratelimit: unknown key (did you mean rateLimit?)');
  });
});

describe('admin POST /explain', () => {
  let g: RunningGate;
  beforeAll(async () => {
    g = await startGate({ configFile: config, env: { GATE_ADMIN_TOKEN: ADMIN } });
    for (let i = 0; i < 50 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  });
  afterAll(() => g.stop());

  const post = (body: unknown, token: string | null = ADMIN) =>
    fetch(`${g.adminUrl}/explain`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });

  test('answers the same trace as the CLI, and changes nothing', async () => {
    const before = await snapshot();
    const res = await post({ method: 'PUT', uri: '/api/orders/43', headers: { Authorization: writer, 'If-Match': '"3"' }, ip: '203.0.113.9' });
    expect(res.status).toBe(200);
    const viaApi = await res.json();
    const cli = await runCli(['explain', '--config', config, '--json', '--method', 'PUT', '--uri', '/api/orders/43', '-H', `Authorization: ${writer}`, '-H', 'If-Match: "3"', '--ip', '203.0.113.9'], {}, dir);
    const viaCli = JSON.parse(cli.stdout) as Record<string, unknown>;
    // the remaining lease time may have ticked between the two
    const norm = (t: unknown) => JSON.parse(JSON.stringify(t).replace(/held \d+s/g, 'held Ns').replace(/"Retry-After":"\d+"/g, '"Retry-After":"N"').replace(/"retryAfter":\d+/g, '"retryAfter":"N"'));
    expect(norm(viaApi)).toEqual(norm(viaCli));
    expect(await snapshot()).toEqual(before);
  });

  test("nginx's first call: the status /auth sends (403, so nginx keeps the body), and the one its replay answers", async () => {
    const headers = { Authorization: writer, 'If-Match': '"6"', 'X-Auth-Replay': 'first', 'X-Request-Id': 'explain-first-1' };
    const live = await forward(g.url, 'PUT', '/api/orders/42', headers);
    expect(live.status).toBe(403);
    const liveBody = await live.json();
    const trace = (await (await post({ method: 'PUT', uri: '/api/orders/42', headers: { ...headers, 'X-Request-Id': 'explain-first-2' } })).json()) as { answer: { status: number; code: string; replayStatus?: number; body: unknown } };
    expect(trace.answer).toMatchObject({ status: 403, code: 'precondition_failed', replayStatus: 412, body: liveBody });
    const cli = await runCli(['explain', '--config', config, '--method', 'PUT', '--uri', '/api/orders/42', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`])], {}, dir);
    expect(cli.stdout).toMatch(/^answer: 403 precondition_failed {2}\(nginx's first call: the replay answers 412\)$/m);
    // A replay of an allow: 503, as /auth answers it (nginx would hand a 2xx to the client unproxied).
    const replayed = { Authorization: writer, 'X-Auth-Replay': '412', 'X-Request-Id': 'explain-replay-1' };
    const liveReplay = await forward(g.url, 'GET', '/api/orders/42', replayed);
    expect(liveReplay.status).toBe(503);
    const explained = (await (await post({ method: 'GET', uri: '/api/orders/42', headers: { ...replayed, 'X-Request-Id': 'explain-replay-2' } })).json()) as { answer: { status: number; code: string } };
    expect(explained.answer).toMatchObject({ status: 503, code: 'store_unavailable' });
    // Without the marker nothing changes.
    const plain = (await (await post({ method: 'PUT', uri: '/api/orders/42', headers: { Authorization: writer, 'If-Match': '"6"' } })).json()) as { answer: Record<string, unknown> };
    expect(plain.answer.status).toBe(412);
    expect(plain.answer).not.toHaveProperty('replayStatus');
  });

  test('a method or URI the gate would refuse is explained as that refusal, by the CLI and the API alike', async () => {
    for (const [method, uri] of [['G T', '/api/orders/42'], ['GET', 'no-slash']] as const) {
      const res = await post({ method, uri });
      expect(res.status).toBe(200);
      const viaApi = (await res.json()) as { answer: { status: number; code: string } };
      expect(viaApi.answer).toMatchObject({ status: 400, code: 'bad_forward_request' });
      const cli = await runCli(['explain', '--config', config, '--json', '--method', method, '--uri', uri], {}, dir);
      expect(cli.code).toBe(1);
      expect(JSON.parse(cli.stdout)).toEqual(viaApi);
    }
  });

  test('needs the admin token; a bad body is a 400', async () => {
    expect((await post({ method: 'GET', uri: '/x' }, null)).status).toBe(401);
    expect((await post({ method: 'GET', uri: '/x' }, 'wrong')).status).toBe(401);
    const bad = await post({ method: 'GET' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'bad_request' });
    const badIp = await post({ method: 'GET', uri: '/x', ip: 'bad' });
    expect(badIp.status).toBe(400);
    expect(await badIp.json()).toMatchObject({ code: 'bad_request', detail: expect.stringContaining('ip: expected an IP address') });
  });
});
