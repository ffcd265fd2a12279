// `npx tsx bench/redis-modes.ts`: the realistic mix against one gate per store mode (one node, Cluster, Sentinel),
// alternating rounds in one run; prints req/s, p50, p99 and each mode's ratio to the one-node gate.
// The mix is ../shared/bench-peers' (load.lua): 80 % GET /api/orders/<n>, 20 % PUT with If-Match (1 % of them stale),
// 1000 orders, 1000 tokens (half ES256, half RS256) with Traefik-style X-Forwarded-* headers.
// Flags (or env): --duration s (MODES_DURATION, 10), --warmup s (MODES_WARMUP, 3), --rounds (MODES_ROUNDS, 2),
// --connections (MODES_CONNECTIONS, 32), --only single,cluster,sentinel (MODES_ONLY).
// Pinning as bench/run.ts: the gate on core 0, the load generator and every redis-server on core 1. Needs a built dist/.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RedisStore } from '../src/store/redis.js';
import { parseHostPort, parseNodeAddress } from '../src/store/redis/address.js';
import type { RedisTarget } from '../src/store/redis/connect.js';
import { startCluster, startSentinelSet, type ServerProc } from '../test/helpers/redis-cluster.js';
import { startOwnRedis } from '../test/helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign } from '../test/helpers/tokens.js';
import { drive, type AcRequest, type LoadResult } from './lib/load.js';
import { distStaleness, HAVE_TASKSET, pinProcess, startGateProcess } from './lib/procs.js';
import { numberOption, round } from './lib/stats.js';

const { values: f } = parseArgs({ options: { duration: { type: 'string' }, warmup: { type: 'string' }, rounds: { type: 'string' }, connections: { type: 'string' }, only: { type: 'string' } } });
const env = process.env;
const DURATION = numberOption(f.duration, env.MODES_DURATION, 10);
const WARMUP = numberOption(f.warmup, env.MODES_WARMUP, 3);
const ROUNDS = Math.max(1, numberOption(f.rounds, env.MODES_ROUNDS, 2));
const CONNECTIONS = Math.max(1, numberOption(f.connections, env.MODES_CONNECTIONS, 32));
const ONLY = (f.only ?? env.MODES_ONLY ?? 'single,cluster,sentinel').split(',').map((s) => s.trim());
const SERVER_CPU = '0';
const LOAD_CPU = '1';
const ORDERS = 1000;
const TOKENS = 1000;
const PREFIX = 'cg:';
const version = (n: number) => (n % 97) + 1;

const stale = distStaleness();
if (stale?.includes('missing')) {
  console.error(`bench: ${stale}`);
  process.exit(1);
}
if (stale) console.log(`warning: ${stale}`);
pinProcess(process.pid, LOAD_CPU);

// Tokens and the request mix, built once (seeded, as load.lua).
const es = await makeKey('ES256', 'bench-es');
const rs = await makeKey('RS256', 'bench-rs');
const tokens: string[] = [];
for (let i = 0; i < TOKENS; i++) tokens.push(await sign(i % 2 ? rs : es, { sub: `client-${i}`, scope: 'orders:read orders:write', claims: { tenant: `t${i % 17}` }, exp: '2h' }));
let seed = 42;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const MIX: AcRequest[] = Array.from({ length: 20_000 }, (_, i) => {
  const n = 1 + Math.floor(rand() * ORDERS);
  const write = rand() < 0.2;
  const v = write && rand() < 0.01 ? version(n) - 1 : version(n);
  const ti = i % TOKENS;
  return {
    method: 'GET',
    path: '/auth',
    headers: {
      Authorization: `Bearer ${tokens[ti]}`,
      'X-Forwarded-Method': write ? 'PUT' : 'GET',
      'X-Forwarded-Uri': `/api/orders/${n}`,
      'X-Forwarded-Host': 'api.orders.test',
      'X-Forwarded-Proto': 'https',
      'X-Forwarded-Port': '443',
      'X-Forwarded-For': `10.0.${Math.floor(ti / 256)}.${ti % 256}`,
      'User-Agent': 'orders-client/2.3',
      Accept: 'application/json',
      ...(write ? { 'If-Match': `"${v}"`, 'Content-Type': 'application/json' } : {}),
    },
  };
});
const requestsFor = (conn: number) => MIX.slice((conn * 617) % MIX.length).concat(MIX.slice(0, (conn * 617) % MIX.length));

const dir = mkdtempSync(join(tmpdir(), 'cg-modes-'));
writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(es, rs)));
const configFile = join(dir, 'gate.yaml');
// bench-peers/gate-bench.yaml, with the store mode given by env.
writeFileSync(
  configFile,
  `server: { trustedProxies: ["127.0.0.0/8", "::1/128"] }
store: { keyPrefix: "${PREFIX}" }
auth:
  jwksFile: ${join(dir, 'jwks.json')}
  issuer: "${ISSUER}"
  audience: "${AUDIENCE}"
  algorithms: [RS256, ES256]
  clockTolerance: 5s
  forwardClaims: { X-Auth-Tenant: tenant }
  publicRoutes: ["GET /public/*"]
  requireScopes:
    - { methods: [GET, HEAD], path: "/api/orders/*", scopes: ["orders:read"] }
    - { methods: [POST, PUT, PATCH, DELETE], path: "/api/orders/*", scopes: ["orders:write"] }
rateLimit:
  onStoreError: memory
  rules:
    - { name: writes, methods: [POST, PUT, PATCH, DELETE], path: "/api/*", limit: 1000000, window: 60s }
    - { name: default, limit: 1000000, window: 60s }
conflict:
  onStoreError: allow
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
`,
);

interface Target {
  name: string;
  env: Record<string, string>;
  target: RedisTarget;
  pids: () => (number | undefined)[];
  stop: () => Promise<void>;
}

const targets: Target[] = [];
const pinAll = (procs: ServerProc[]) => procs.forEach((p) => p.pid && pinProcess(p.pid, LOAD_CPU));
try {
  if (ONLY.includes('single')) {
    const r = await startOwnRedis();
    targets.push({ name: 'single', env: { REDIS_URL: r.url }, target: { mode: 'single', url: r.url }, pids: () => [], stop: () => r.stop() });
  }
  if (ONLY.includes('cluster')) {
    const c = await startCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
    pinAll(c.nodes);
    targets.push({ name: 'cluster', env: { REDIS_CLUSTER_NODES: c.seeds.join(',') }, target: { mode: 'cluster', nodes: c.seeds.map((s) => parseNodeAddress(s)!) }, pids: () => c.nodes.map((n) => n.pid), stop: () => c.stop() });
  }
  if (ONLY.includes('sentinel')) {
    const s = await startSentinelSet({ replicas: 2, sentinels: 3, downAfterMs: 5000 });
    pinAll([...s.nodes, ...s.sentinels]);
    targets.push({
      name: 'sentinel',
      env: { REDIS_SENTINELS: s.sentinelAddresses.join(','), REDIS_SENTINEL_NAME: s.name },
      target: { mode: 'sentinel', name: s.name, sentinels: s.sentinelAddresses.map((a) => parseHostPort(a)!) },
      pids: () => [],
      stop: () => s.stop(),
    });
  }
  // The one-node redis-server of test/helpers is not pinned by itself: pin it by its port's owner.
  for (const t of targets) {
    const store = new RedisStore({ target: t.target, keyPrefix: PREFIX, commandTimeoutMs: 2000, connectTimeoutMs: 2000 });
    for (let i = 0; i < 200 && !store.available(); i++) await new Promise((r) => setTimeout(r, 20));
    for (let n = 1; n <= ORDERS; n += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => store.publish(`orders:${n + j}`, String(version(n + j)))));
    await store.close();
  }

  console.log(`store modes under the realistic mix — node ${process.version}; ${HAVE_TASKSET ? 'gate on core 0, load generator and redis-servers on core 1' : 'taskset missing: nothing pinned'}`);
  console.log(`load: ${CONNECTIONS} connections, ${WARMUP} s warm-up + ${DURATION} s measured, ${ROUNDS} round(s) alternating ${targets.map((t) => t.name).join(' ')}\n`);
  const results = new Map<string, LoadResult[]>(targets.map((t) => [t.name, []]));
  for (let round_ = 1; round_ <= ROUNDS; round_++) {
    for (const t of targets) {
      const gate = await startGateProcess({ configFile, cpu: SERVER_CPU, logLevel: 'warn', env: t.env });
      try {
        for (let i = 0; i < 100; i++) {
          if ((await fetch(`http://127.0.0.1:${gate.port}/readyz?strict=1`)).status === 200) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        const r = await drive({ url: `http://127.0.0.1:${gate.port}`, connections: CONNECTIONS, durationS: DURATION, warmupS: WARMUP, requestsFor, serverPid: gate.pid });
        results.get(t.name)!.push(r);
        console.log(`[round ${round_}] ${t.name.padEnd(8)} ${String(r.rps).padStart(7)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  gate cpu ${r.serverCpu} % (${r.cpuUsPerReq} µs/req)  statuses ${JSON.stringify(r.statuses)}`);
      } finally {
        await gate.stop();
      }
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const base = results.get('single');
  console.log('\nsummary (mean over rounds)');
  for (const [name, rs] of results) {
    const rps = mean(rs.map((r) => r.rps));
    const ratio = base ? round(rps / mean(base.map((r) => r.rps)), 2) : NaN;
    const cpu = base ? round(mean(base.map((r) => r.cpuUsPerReq)) / mean(rs.map((r) => r.cpuUsPerReq)), 2) : NaN;
    console.log(`${name.padEnd(8)} ${String(round(rps, 0)).padStart(7)} req/s  p50 ${round(mean(rs.map((r) => r.p50)), 2)} ms  p99 ${round(mean(rs.map((r) => r.p99)), 2)} ms  ÷ one node: ${ratio} (by gate cpu per request: ${cpu})`);
  }
} finally {
  for (const t of targets) await t.stop();
  rmSync(dir, { recursive: true, force: true });
}
