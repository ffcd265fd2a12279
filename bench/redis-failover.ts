// `npx tsx bench/redis-failover.ts`: kill -9 the master under a bounded load, on a Redis Cluster and on a Sentinel set,
// and print the failover gap: kill → promotion, promotion → correct shared answers, requests answered by the fail mode,
// max and p99 latency, stale writes allowed. One gate process (conflict.onStoreError: deny, commandTimeout 250ms).
// Flags (or env): --rounds N (FAILOVER_ROUNDS, 1), --only cluster,sentinel (FAILOVER_ONLY), --workers N (FAILOVER_WORKERS, 6).
// Needs a built dist/ (the gate is the CLI).
import { parseArgs } from 'node:util';
import { keyLayout } from '../src/store/keys.js';
import { slotOf } from '../src/store/redis/slot.js';
import { startGate } from '../test/helpers/gate.js';
import { roleOf, startCluster, startSentinelSet } from '../test/helpers/redis-cluster.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign } from '../test/helpers/tokens.js';
import { describeFailover, runFailover, type FailoverReport } from './lib/failover.js';

const { values: f } = parseArgs({ options: { rounds: { type: 'string' }, only: { type: 'string' }, workers: { type: 'string' } } });
const ROUNDS = Math.max(1, Number(f.rounds ?? process.env.FAILOVER_ROUNDS ?? 1) || 1);
const WORKERS = Math.max(1, Number(f.workers ?? process.env.FAILOVER_WORKERS ?? 6) || 6);
const ONLY = (f.only ?? process.env.FAILOVER_ONLY ?? 'cluster,sentinel').split(',');
const ADMIN = 'failover-bench-admin';
const key = await makeKey('ES256');
const auth = { Authorization: `Bearer ${await sign(key, { sub: 'failover-bench', exp: '2h' })}` };

const yaml = (prefix: string) => `
store: { keyPrefix: "${prefix}", commandTimeout: 250ms, connectTimeout: 500ms }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit: { onStoreError: memory, rules: [{ name: shared, limit: 1000000, window: 60s }] }
conflict:
  onStoreError: deny
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`;

async function gateFor(env: Record<string, string>, prefix: string) {
  const g = await startGate({ yaml: yaml(prefix), files: { 'jwks.json': JSON.stringify(jwks(key)) }, env: { ...env, GATE_ADMIN_TOKEN: ADMIN, LOG_LEVEL: 'warn' } });
  for (let i = 0; i < 200 && (await fetch(`${g.url}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  return g;
}

const reports: { mode: string; r: FailoverReport }[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  if (ONLY.includes('cluster')) {
    const c = await startCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
    const prefix = `cgfo${round}:`;
    const g = await gateFor({ REDIS_CLUSTER_NODES: c.seeds.join(',') }, prefix);
    try {
      const masters = await c.masters();
      const byMaster = new Map<number, string[]>(masters.map((m) => [m.port, []]));
      for (let i = 0; [...byMaster.values()].some((l) => l.length < 3); i++) {
        const owner = (await c.masterOf(slotOf(keyLayout(prefix).version(`orders:f${i}`)))).port;
        const list = byMaster.get(owner)!;
        if (list.length < 3) list.push(`f${i}`);
      }
      const victim = masters[0]!;
      const [replica] = await c.replicasOf(victim);
      const r = await runFailover({
        gateUrl: g.url,
        adminUrl: g.adminUrl,
        adminToken: ADMIN,
        auth,
        victimIds: byMaster.get(victim.port)!,
        otherIds: masters.slice(1).flatMap((m) => byMaster.get(m.port)!),
        kill: () => victim.kill(),
        promoted: async () => (await roleOf(replica!)) === 'master',
        workers: WORKERS,
      });
      reports.push({ mode: 'cluster', r });
      console.log(`[round ${round}] cluster:  ${describeFailover(r)}`);
    } finally {
      await g.stop();
      await c.stop();
    }
  }
  if (ONLY.includes('sentinel')) {
    const s = await startSentinelSet({ replicas: 2, sentinels: 3, downAfterMs: 1000 });
    const g = await gateFor({ REDIS_SENTINELS: s.sentinelAddresses.join(','), REDIS_SENTINEL_NAME: s.name }, `cgfo${round}:`);
    try {
      const old = await s.master();
      const replicas = s.nodes.filter((n) => n !== old);
      const r = await runFailover({
        gateUrl: g.url,
        adminUrl: g.adminUrl,
        adminToken: ADMIN,
        auth,
        victimIds: ['s1', 's2', 's3', 's4'],
        otherIds: [],
        kill: () => old.kill(),
        promoted: async () => (await Promise.all(replicas.map((n) => roleOf(n)))).includes('master'),
        workers: WORKERS,
      });
      reports.push({ mode: 'sentinel', r });
      console.log(`[round ${round}] sentinel: ${describeFailover(r)}`);
    } finally {
      await g.stop();
      await s.stop();
    }
  }
}

console.log('\nsummary: the gap is from the promotion (a replica says role:master) to the last write on the dead master\'s keys that did not get its shared answer');
for (const mode of ['cluster', 'sentinel']) {
  const rs = reports.filter((x) => x.mode === mode).map((x) => x.r);
  if (rs.length === 0) continue;
  const fmt = (xs: number[]) => (xs.length === 1 ? String(xs[0]) : `${Math.min(...xs)}–${Math.max(...xs)}`);
  console.log(
    `${mode.padEnd(8)} kill→promotion ${fmt(rs.map((r) => r.promotedAt - r.killedAt))} ms, promotion→shared answers ${fmt(rs.map((r) => r.resumeAfterPromotionMs))} ms, ` +
      `fail-mode answers ${fmt(rs.map((r) => r.failModeAnswers))}, max latency ${fmt(rs.map((r) => r.maxLatencyMs))} ms, stale writes allowed ${fmt(rs.map((r) => r.staleAllowed))}`,
  );
}
