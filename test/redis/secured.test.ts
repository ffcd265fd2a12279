// Credentials and TLS in every store mode, with the least-privilege ACL user docs/REDIS.md gives (test-owned servers).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { VersionPublisher, type RedisPublisherOptions } from '../../src/client/index.js';
import { forward, ROOT, startGate, type RunningGate } from '../helpers/gate.js';
import { uniquePrefix } from '../helpers/redis.js';
import { makeTlsFiles, startCluster, startSentinelSet, type OwnCluster, type OwnSentinelSet, type Security, type TlsFiles } from '../helpers/redis-cluster.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

const GATE_USER = 'conflict-gate';
const GATE_PASSWORD = 'gate-pw-0123';
const SENTINEL_PASSWORD = 'sentinel-pw-0123';
const ADMIN = 'secured-admin-token';

/** The ACL user of docs/REDIS.md, as written there, with this suite's password and key prefix. */
function documentedAcl(): string {
  const doc = readFileSync(join(ROOT, 'docs/REDIS.md'), 'utf8');
  const line = /^ACL SETUSER (conflict-gate .*)$/m.exec(doc)?.[1];
  if (!line) throw new Error('docs/REDIS.md has no ACL SETUSER conflict-gate line');
  expect(line).toContain('>CHANGE-ME');
  expect(line).toContain('~cg:*');
  return line.replace('>CHANGE-ME', `>${GATE_PASSWORD}`).replace('~cg:*', '~cgtest:*');
}

let dir: string;
let tls: TlsFiles;
let security: Security;
let cluster: OwnCluster;
let sentinel: OwnSentinelSet;
let key: TestKey;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cg-secured-'));
  tls = makeTlsFiles(dir);
  security = { adminPassword: 'admin-pw-0123', users: [documentedAcl()], sentinelPassword: SENTINEL_PASSWORD, tls };
  key = await makeKey('ES256');
  [cluster, sentinel] = await Promise.all([startCluster({ masters: 3, replicas: 0, security }), startSentinelSet({ replicas: 1, sentinels: 1, security })]);
}, 90_000);
afterAll(async () => {
  await Promise.all([cluster?.stop(), sentinel?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

interface Case {
  name: string;
  /** The store section's mode lines (the credentials and TLS are added by the test). */
  store: () => string;
  publisher: () => RedisPublisherOptions;
}

const cases: Case[] = [
  {
    name: 'one node, rediss:// url',
    store: () => `url: "rediss://127.0.0.1:${sentinel.nodes[0]!.port}/0"`,
    publisher: () => ({ url: `rediss://127.0.0.1:${sentinel.nodes[0]!.port}/0` }),
  },
  {
    name: 'cluster, tls: true',
    store: () => `cluster: { nodes: ${JSON.stringify(cluster.seeds.slice(0, 2))} }\n  tls: true`,
    publisher: () => ({ cluster: { nodes: cluster.seeds.slice(0, 2) } }),
  },
  {
    name: 'sentinel, tls: true, the sentinels with their own password',
    store: () => `sentinel: { name: ${sentinel.name}, sentinels: ${JSON.stringify(sentinel.sentinelAddresses)}, password: "${SENTINEL_PASSWORD}" }\n  tls: true`,
    publisher: () => ({ sentinel: { name: sentinel.name, sentinels: sentinel.sentinelAddresses, password: SENTINEL_PASSWORD } }),
  },
];

describe.each(cases)('$name, ACL user and password', (c) => {
  let g: RunningGate;
  let prefix: string;
  beforeAll(async () => {
    prefix = uniquePrefix('secured');
    g = await startGate({
      yaml: `
store:
  ${c.store()}
  username: ${GATE_USER}
  password: "\${REDIS_PASSWORD}"
  keyPrefix: "${prefix}"
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit: { onStoreError: allow, rules: [{ name: r, limit: 2, window: 60s }] }
conflict:
  onStoreError: deny
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
      files: { 'jwks.json': JSON.stringify(jwks(key)) },
      // A private CA, as an operator would give it to Node.
      env: { REDIS_PASSWORD: GATE_PASSWORD, GATE_ADMIN_TOKEN: ADMIN, NODE_EXTRA_CA_CERTS: tls.ca, LOG_LEVEL: 'warn' },
    });
    for (let i = 0; i < 200 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  });
  afterAll(() => g.stop());

  test('the gate connects, checks versions, counts limits; the client library publishes', async () => {
    const ready = await fetch(`${g.url}/readyz`);
    expect(await ready.json(), g.output()).toMatchObject({ status: 'ready', checks: { store: true } });
    const put = await fetch(`${g.adminUrl}/versions/orders:1`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: '{"version":"3"}' });
    expect(put.status).toBe(200);
    const auth = { Authorization: `Bearer ${await sign(key, { sub: `secured-${c.name}` })}` };
    expect((await forward(g.url, 'PUT', '/api/orders/1', { ...auth, 'If-Match': '"2"' })).status).toBe(412);
    const ok = await forward(g.url, 'PUT', '/api/orders/1', { ...auth, 'If-Match': '"3"' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('ratelimit')).toBe('"r";r=0;t=60');
    expect((await forward(g.url, 'GET', '/api/orders/1', auth)).status).toBe(429);

    const pub = new VersionPublisher({ redis: { ...c.publisher(), username: GATE_USER, password: GATE_PASSWORD, tls: { ca: readFileSync(tls.ca) }, keyPrefix: prefix } });
    try {
      expect(await pub.publish('orders:1', 4)).toEqual({ kind: 'published', previous: '3' });
      expect((await forward(g.url, 'PUT', '/api/orders/1', { Authorization: `Bearer ${await sign(key, { sub: 'other' })}`, 'If-Match': '"3"' })).status).toBe(412);
    } finally {
      await pub.close();
    }
    expect(g.output()).not.toContain(GATE_PASSWORD);
  });
});

describe('the documented ACL user is least-privilege', () => {
  test('it may not touch keys outside its prefix, nor run other commands', async () => {
    const { Redis } = await import('ioredis');
    const r = new Redis({ host: '127.0.0.1', port: sentinel.nodes[0]!.port, username: GATE_USER, password: GATE_PASSWORD, tls: { ca: readFileSync(tls.ca) }, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await r.connect();
      expect(await r.set('cgtest:acl-probe', '1')).toBe('OK');
      await expect(r.set('elsewhere:key', '1')).rejects.toThrow(/NOPERM/);
      await expect(r.flushall()).rejects.toThrow(/NOPERM/);
      await expect(r.keys('*')).rejects.toThrow(/NOPERM/);
      await r.del('cgtest:acl-probe');
    } finally {
      r.disconnect();
    }
  });
});
