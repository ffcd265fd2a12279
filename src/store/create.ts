// Builds the store a compiled config names, and checks at boot that a Redis that answers is the kind configured.
import { Redis } from 'ioredis';
import type { CompiledStore } from '../config/compile.js';
import type { ConfigIssue } from '../config/primitives.js';
import { MemoryStore } from './memory.js';
import type { VersionStore } from './port.js';
import { RedisStore, type StoreLog } from './redis.js';
import type { RedisTarget } from './redis/connect.js';

/** The Redis target of a compiled store section (undefined for memory). */
export function redisTarget(s: CompiledStore): RedisTarget | undefined {
  if (s.mode === 'cluster') return { mode: 'cluster', nodes: s.cluster!.nodes };
  if (s.mode === 'sentinel') return { mode: 'sentinel', name: s.sentinel!.name, sentinels: s.sentinel!.sentinels, username: s.sentinel!.username, password: s.sentinel!.password };
  if (s.mode === 'single') return { mode: 'single', url: s.url! };
  return undefined;
}

export function createStore(s: CompiledStore, opts: { now: () => number; log?: StoreLog; onConnectionError?: (message: string) => void }): VersionStore {
  const target = redisTarget(s);
  if (!target) return new MemoryStore(opts.now);
  return new RedisStore({
    target,
    username: s.username,
    password: s.password,
    tls: s.tls,
    keyPrefix: s.keyPrefix,
    commandTimeoutMs: s.commandTimeoutMs,
    connectTimeoutMs: s.connectTimeoutMs,
    log: opts.log,
    onConnectionError: opts.onConnectionError,
  });
}

/**
 * The boot check (main.ts): a Redis that answers at boot but is not the kind the config names is a
 * config error (exit 2), never a silent half-service. A one-node `url` at a cluster node would
 * answer the keys of one node's slots and MOVED for the rest; cluster seeds that are not cluster
 * nodes would never give a slot map. A Redis that does not answer within `waitMs` is not checked
 * (down at boot is not fatal; the store keeps the same check for when it first answers).
 */
export async function bootProblem(store: VersionStore, s: CompiledStore, waitMs: number): Promise<ConfigIssue | null> {
  if (!(store instanceof RedisStore)) return null;
  if (s.mode === 'single') {
    await store.firstAnswer(waitMs);
    const why = store.refusedBecause;
    return why ? { path: 'store.url', message: why.replace(/^store\.url /, '') } : null;
  }
  if (s.mode === 'cluster') {
    const seeds = s.cluster!.nodes;
    const enabled = await Promise.all(seeds.map((seed) => clusterEnabled(seed, s, waitMs)));
    const plain = enabled.indexOf(false);
    if (plain !== -1) {
      const seed = seeds[plain]!;
      return { path: 'store.cluster.nodes', message: `${seed.host}:${seed.port} is not a cluster node (it reports cluster_enabled:0): use store.url (or REDIS_URL) for a one-node Redis` };
    }
  }
  return null;
}

/** Whether one node reports cluster_enabled:1, or undefined when it does not answer. */
async function clusterEnabled(node: { host: string; port: number }, s: CompiledStore, waitMs: number): Promise<boolean | undefined> {
  const r = new Redis({
    host: node.host,
    port: node.port,
    username: s.username,
    password: s.password,
    ...(s.tls ? { tls: {} } : {}),
    lazyConnect: true,
    connectTimeout: waitMs,
    commandTimeout: waitMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return /^cluster_enabled:1\s*$/m.test(await r.info('cluster'));
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}
