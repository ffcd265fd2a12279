// A real Redis Cluster (3 masters + 3 replicas, test-owned): the store contract, gates, reshard and failover.
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runLostUpdate } from '../../bench/lib/lost-update-sim.js';
import { keyLayout } from '../../src/store/keys.js';
import { RedisStore } from '../../src/store/redis.js';
import { parseNodeAddress } from '../../src/store/redis/address.js';
import { slotOf } from '../../src/store/redis/slot.js';
import { forward, runCli } from '../helpers/gate.js';
import { SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { clientList, roleOf, startCluster, type OwnCluster } from '../helpers/redis-cluster.js';
import { runStoreContract } from '../store/contract.js';
import {
  adminPut,
  bearer,
  CI_SLACK_MS,
  COMMAND_TIMEOUT_MS,
  counterSum,
  describeFailover,
  exactLimitAcrossGates,
  failoverUnderLoad,
  gateYaml,
  LATENCY_BOUND_MS,
  metricsText,
  oneClaimPerVersion,
  publishesEverywhere,
  publisherLetsProcessExit,
  replayAcrossGates,
  sleep,
  spreadOverMasters,
  startGates,
  testKey,
  type Mode,
} from './harness.js';
import { jwks } from '../helpers/tokens.js';

let cluster: OwnCluster;
let raw: Cluster;
const stores: RedisStore[] = [];

beforeAll(async () => {
  cluster = await startCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
  raw = new Cluster(cluster.seeds.map((s) => parseNodeAddress(s)!), { scaleReads: 'master' });
}, 90_000);
afterAll(async () => {
  raw?.disconnect();
  await Promise.all(stores.map((s) => s.close()));
  await cluster?.stop();
});

const mode: Mode = {
  name: 'cluster',
  get env() {
    return { REDIS_CLUSTER_NODES: cluster.seeds.join(',') };
  },
  get publisher() {
    return { cluster: { nodes: cluster.seeds } };
  },
  masterOf: async (key) => (await cluster.masterOf(slotOf(key))).port,
  masters: async () => (await cluster.masters()).map((m) => m.port),
};

async function clusterStore(prefix: string, commandTimeoutMs = 1000): Promise<RedisStore> {
  const store = new RedisStore({ target: { mode: 'cluster', nodes: cluster.seeds.map((s) => parseNodeAddress(s)!) }, keyPrefix: prefix, commandTimeoutMs, connectTimeoutMs: 1000 });
  stores.push(store);
  for (let i = 0; i < 200 && !store.available(); i++) await sleep(20);
  expect(store.health()).toEqual({ up: true });
  return store;
}

const contractPrefix = uniquePrefix('cluster-contract');
runStoreContract('redis cluster (3 masters + 3 replicas)', async () => ({
  store: await clusterStore(contractPrefix),
  advance: (ms) => sleep(ms),
  rawSet: async (k, v) => void (await raw.set(keyLayout(contractPrefix).version(k), v)),
}));

async function onMasters<T>(f: (r: Redis) => Promise<T>): Promise<T[]> {
  const masters = await cluster.masters();
  return Promise.all(
    masters.map(async (m) => {
      const r = new Redis({ port: m.port, host: '127.0.0.1', lazyConnect: true });
      await r.connect();
      try {
        return await f(r);
      } finally {
        r.disconnect();
      }
    }),
  );
}

describe('cluster: slots, scripts and round trips', () => {
  test('no command or pipeline mixes slots, and each decision is one script call', async () => {
    const prefix = uniquePrefix('cluster-rt');
    const store = await clusterStore(prefix);
    const layout = keyLayout(prefix);
    const ids = [...(await spreadOverMasters(mode, 20, (i) => `rt${i}`, (id) => layout.version(id))).values()].flat();
    const limiter = store.limiter({ rule: 'rt', points: 1000, durationS: 60 });
    await Promise.all(ids.map((id) => store.publish(id, '1')));
    await onMasters((r) => r.config('RESETSTAT'));
    // Concurrent, so the batcher sees them in the same turns: one pipeline per master.
    const [claims, limits] = await Promise.all([Promise.all(ids.map((id) => store.claim(id, 5000, `t-${id}`))), Promise.all(ids.map((id) => limiter.consume(id)))]);
    expect(claims.every((c) => c.version === '1' && c.claim.kind === 'taken')).toBe(true);
    expect(limits.every((l) => l.kind === 'allowed')).toBe(true);
    const stats = await onMasters(async (r) => ({ commands: await r.info('commandstats'), errors: await r.info('errorstats') }));
    const calls = (text: string, cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    const scripts = stats.reduce((n, s) => n + calls(s.commands, 'evalsha') + calls(s.commands, 'eval'), 0);
    // One script per claim and one per rate-limit decision: nothing was redirected or re-sent.
    expect(scripts).toBe(ids.length * 2);
    for (const s of stats) expect(s.errors).not.toMatch(/errorstat_(MOVED|ASK|CROSSSLOT|TRYAGAIN)/);
  });

  test('reads and writes go to masters only: no replica ever runs a gate command', async () => {
    const store = await clusterStore(uniquePrefix('cluster-masters'));
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.getVersion(`m${i}`)));
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.claim(`m${i}`, 1000, 't')));
    const masters = await cluster.masters();
    const last = async (n: (typeof masters)[number]) => (await clientList(n)).filter((c) => c.name === 'conflict-gate').map((c) => c.cmd);
    for (const m of masters) expect(await last(m)).toEqual(expect.arrayContaining([expect.stringMatching(/^(get|evalsha|eval|time)$/)]));
    // ioredis may open an idle READONLY connection to a replica it was given as a seed; it never sends it a command.
    for (const r of (await Promise.all(masters.map((m) => cluster.replicasOf(m)))).flat()) {
      for (const cmd of await last(r)) expect(cmd).toMatch(/^(readonly|info|client\|setname|cluster\|slots|cluster\|info|ping|select)$/);
    }
  });

  test('NOSCRIPT after SCRIPT FLUSH on every master is reloaded, never an answer', async () => {
    const prefix = uniquePrefix('cluster-noscript');
    const store = await clusterStore(prefix);
    const ids = Array.from({ length: 30 }, (_, i) => `ns${i}`);
    await Promise.all(ids.map((id) => store.publish(id, '1')));
    await onMasters((r) => r.script('FLUSH'));
    const claims = await Promise.all(ids.map((id) => store.claim(id, 5000, 'a')));
    expect(claims.every((c) => c.claim.kind === 'taken')).toBe(true);
    expect(await store.limiter({ rule: 'ns', points: 5, durationS: 60 }).consume('c')).toMatchObject({ kind: 'allowed' });
  });

  test('a one-node client pointed at a cluster node refuses to serve and says why', async () => {
    const m = (await cluster.masters())[0]!;
    const store = new RedisStore({ url: `redis://127.0.0.1:${m.port}/0`, keyPrefix: uniquePrefix('misconf'), commandTimeoutMs: 500, connectTimeoutMs: 500 });
    stores.push(store);
    await store.firstAnswer(2000);
    expect(store.health()).toEqual({ up: false, reason: 'store.url points at a Redis Cluster node (it reports cluster_enabled:1): configure store.cluster (or REDIS_CLUSTER_NODES) instead' });
    await expect(store.getVersion('x')).rejects.toMatchObject({ code: 'cluster' });
    await expect(store.limiter({ rule: 'r', points: 1, durationS: 1 }).consume('c')).rejects.toMatchObject({ code: 'cluster' });
  });
});

describe('cluster: the gate, as processes', () => {
  test('three gates admit exactly N per client, for clients on every master', () => exactLimitAcrossGates(mode, uniquePrefix('cluster-limit')));
  test('claim mode: 20 concurrent writes admit exactly one, for resources on every master', () => oneClaimPerVersion(mode, uniquePrefix('cluster-claim')));
  test('admin API and client library publish on every master; the gate reads them', () => publishesEverywhere(mode, uniquePrefix('cluster-pub')));
  test('a script that closes its publisher exits by itself', () => publisherLetsProcessExit(mode, uniquePrefix('cluster-exit')), 20_000);
  test('the nginx replay is served by another gate, for ids on every master', () => replayAcrossGates(mode, uniquePrefix('cluster-replay')));

  test('a one-node url at a cluster node: exit 2 naming store.cluster (check stays offline: 0)', async () => {
    const m = (await cluster.masters())[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'cg-misconf-'));
    const file = join(dir, 'gate.yaml');
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(await testKey())));
    writeFileSync(file, `store: { url: "redis://127.0.0.1:${m.port}/0" }\nauth: { jwksFile: jwks.json, algorithms: [ES256] }\n`);
    const served = await runCli(['--config', file], { PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1' });
    expect(served.code).toBe(2);
    expect(served.stderr).toBe(
      `conflict-gate: invalid config ${file} (1 problem):\nstore.url: points at a Redis Cluster node (it reports cluster_enabled:1): configure store.cluster (or REDIS_CLUSTER_NODES) instead\n`,
    );
    expect((await runCli(['check', '--config', file])).code).toBe(0);
    // The other way round: cluster seeds that are one plain Redis.
    const plain = await runCli(['--config', file], { PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1', REDIS_CLUSTER_NODES: new URL(SHARED_REDIS_URL).host });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain(`store.cluster.nodes: ${new URL(SHARED_REDIS_URL).host} is not a cluster node (it reports cluster_enabled:0): use store.url (or REDIS_URL) for a one-node Redis`);
  });

  test('the lost-update simulation on the cluster: claim mode loses nothing', async () => {
    const r = await runLostUpdate({ mode: 'claim', store: `cluster:${cluster.seeds.join(',')}`, clients: 8, increments: 8, counters: 3, writeDelayMs: 10, maxAttempts: 1000, failEvery: 7 });
    expect(r.successfulWrites).toBeGreaterThan(0);
    expect(r.successfulWrites).toBe(r.clients * r.increments - r.gaveUp);
    expect(r.lost).toBe(0);
    expect(r.finalSum).toBe(r.successfulWrites);
  });
});

describe('cluster: slots moving and masters dying under load', () => {
  test('a reshard of slots holding live keys: no stale write, no second claim, errors bounded and counted', async () => {
    const prefix = uniquePrefix('cluster-reshard');
    const layout = keyLayout(prefix);
    const [from, to] = await cluster.masters();
    // The slots `redis-cli --cluster reshard` takes first from the source: its lowest ones.
    const table = (await raw.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    const low = Math.min(...table.filter(([, , m]) => m[1] === from!.port).map(([a]) => a));
    const MOVED_SLOTS = 40;
    const inRange = (key: string) => slotOf(key) >= low && slotOf(key) < low + MOVED_SLOTS;
    const ids: string[] = [];
    for (let i = 0; ids.length < 6; i++) if (inRange(layout.version(`orders:m${i}`))) ids.push(`m${i}`);
    // Filler keys in every moving slot, so the migration takes a while (and live keys move mid-load).
    for (let slot = low; slot < low + MOVED_SLOTS; slot++) {
      let tag = 0;
      while (slotOf(`f${tag}`) !== slot) tag++;
      const p = raw.pipeline();
      for (let k = 0; k < 200; k++) p.set(`${prefix}filler:{f${tag}}:${k}`, 'x'.repeat(100));
      await p.exec();
    }
    const gates = await startGates(mode, 2, gateYaml(prefix, { claim: true, conflictOnError: 'deny' }));
    try {
      const current = new Map(ids.map((id) => [id, 1]));
      for (const id of ids) expect((await adminPut(gates[0]!, `orders:${id}`, '1')).status).toBe(200);
      const auth = await bearer('reshard');
      const admitted = new Map<string, number>();
      let staleAllowed = 0;
      let unavailable = 0;
      let writes = 0;
      let stop = false;
      const writer = async (id: string, w: number) => {
        while (!stop) {
          const v = current.get(id)!;
          const stale = w === 0 && v > 1;
          const r = await forward(gates[w % 2]!.url, 'PUT', `/api/orders/${id}`, { ...auth, 'If-Match': `"${stale ? v - 1 : v}"` });
          writes++;
          if (r.status === 200) {
            if (stale) staleAllowed++;
            else {
              admitted.set(`${id}@${v}`, (admitted.get(`${id}@${v}`) ?? 0) + 1);
              // The upstream applied the write: it publishes the next version (retrying a 503), which ends the lease.
              while ((await adminPut(gates[w % 2]!, `orders:${id}`, String(v + 1))).status === 503) await sleep(20);
              current.set(id, Math.max(current.get(id)!, v + 1));
            }
          } else if (r.status === 503) unavailable++;
          await r.arrayBuffer().catch(() => undefined);
          await sleep(2);
        }
      };
      const load = Promise.all(ids.flatMap((id) => [0, 1, 2].map((w) => writer(id, w))));
      await sleep(300);
      const before = [...admitted.values()].length;
      const reshard = await cluster.reshard(from!, to!, MOVED_SLOTS);
      const during = [...admitted.values()].length - before;
      await sleep(300);
      stop = true;
      await load;
      expect(reshard.code, reshard.output.slice(-2000)).toBe(0);
      for (const id of ids) expect((await cluster.masterOf(slotOf(layout.version(`orders:${id}`)))).port).toBe(to!.port);
      expect(staleAllowed).toBe(0);
      expect([...admitted.entries()].filter(([, n]) => n > 1)).toEqual([]);
      expect(during).toBeGreaterThan(0); // writes kept being admitted while slots moved
      // Errors bounded (the migration of a slot's last keys is brief) and counted.
      expect(unavailable).toBeLessThanOrEqual(Math.max(10, writes * 0.05));
      const counted = (await Promise.all(gates.map(async (g) => counterSum(await metricsText(g), 'store_errors_total')))).reduce((a, b) => a + b, 0);
      expect(counted).toBeGreaterThanOrEqual(unavailable);
      console.log(`reshard of ${MOVED_SLOTS} slots under load: ${writes} writes, ${admitted.size} versions admitted (${during} during the move), ${unavailable} answered 503, ${counted} store errors counted`);
    } finally {
      await Promise.all(gates.map((g) => g.stop()));
    }
  }, 60_000);

  test('kill -9 a master under load: bounded latency, fail modes in the gap, shared answers within 5 s of promotion, no stale write', async () => {
    const prefix = uniquePrefix('cluster-failover');
    const layout = keyLayout(prefix);
    const byMaster = await spreadOverMasters(mode, 3, (i) => `f${i}`, (id) => layout.version(`orders:${id}`));
    const [victimPort, victimIds] = [...byMaster.entries()][0]!;
    const victim = cluster.nodes.find((n) => n.port === victimPort)!;
    const [replica] = await cluster.replicasOf(victim);
    const [g] = await startGates(mode, 1, gateYaml(prefix, { conflictOnError: 'deny', commandTimeoutMs: COMMAND_TIMEOUT_MS }));
    // What /readyz says meanwhile.
    const readiness: { status: number; body: { reason?: string } }[] = [];
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const r = await fetch(`${g!.url}/readyz`);
        readiness.push({ status: r.status, body: (await r.json()) as { reason?: string } });
        await sleep(100);
      }
    })();
    try {
      const report = await failoverUnderLoad(mode, prefix, {
        gate: g,
        victimIds,
        otherIds: [...byMaster.entries()].slice(1).flatMap(([, l]) => l),
        kill: () => victim.kill(),
        // The moment the replica takes over: it is the first to know.
        promoted: async () => (await roleOf(replica!)) === 'master',
      });
      console.log(`cluster failover: ${describeFailover(report)}`);
      expect(report.staleAllowed).toBe(0);
      expect(report.failModeAnswers).toBeGreaterThan(0);
      expect(report.resumeAfterPromotionMs).toBeLessThanOrEqual(5000);
      expect(report.maxLatencyMs).toBeLessThanOrEqual(LATENCY_BOUND_MS + CI_SLACK_MS);
      expect(report.samples.filter((s) => s.start > report.lastFailureAt && s.onVictim && s.kind === 'current').every((s) => s.status === 200)).toBe(true);
      // /readyz said why while the master was gone, and is ready again after the promotion.
      const down = readiness.filter((r) => r.status === 503);
      expect(down.length).toBeGreaterThan(0);
      // conflict.onStoreError is deny: not ready while the store does not answer, and the store says why.
      expect(down.every((r) => /^the store does not answer \((master \S+ (not connected|not reachable|not answering.*)|cluster down \(CLUSTERDOWN\).*)\) and conflict.onStoreError is deny$/.test(r.body.reason ?? ''))).toBe(true);
      expect(readiness.at(-1)!.status).toBe(200);
      // The runtime cluster reply was logged with what it means.
      expect(g!.output()).toMatch(/"reply":"CLUSTERDOWN","meaning":"the cluster refuses commands: a master is down and no replica has taken over yet[^"]*","msg":"store: Redis Cluster answered CLUSTERDOWN/);
    } finally {
      polling = false;
      await poll;
      await g!.stop();
    }
  }, 60_000);
});
