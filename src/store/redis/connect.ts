// The connection factory, one per mode: one node, Redis Cluster, Redis Sentinel; all fail fast, all masters only.
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { redactUrl, type RedisAddress } from './address.js';
import { replyCode } from './errors.js';
import { slotOf } from './slot.js';

/** Where the data lives. */
export type RedisTarget =
  | { mode: 'single'; url: string }
  | { mode: 'cluster'; nodes: readonly RedisAddress[] }
  | { mode: 'sentinel'; name: string; sentinels: readonly RedisAddress[]; username?: string; password?: string };

export interface ConnectOptions {
  /** ACL user and password of the data nodes (every mode). */
  username?: string;
  password?: string;
  /** TLS to the data nodes (and to the sentinels in sentinel mode); options for a private CA or a client certificate. */
  tls: boolean | ConnectionOptions;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

export type Client = Redis | Cluster;

/** The name the store's connections give themselves (CLIENT SETNAME). */
export const CONNECTION_NAME = 'conflict-gate';

/** The node key of the one master in one-node and Sentinel mode. */
export const ONLY_MASTER = 'master';

/** A connection, whatever the mode: the command client, and where each key's commands go. */
export interface RedisConnection {
  readonly mode: RedisTarget['mode'];
  readonly client: Client;
  /** The master serving `key` now (`host:port`; ONLY_MASTER outside a cluster), or undefined while unknown. */
  nodeOf(key: string): string | undefined;
  /** The masters now, each with the connection to probe it on (undefined: the cluster client has none yet). */
  masters(): { node: string; client: Redis | undefined }[];
  /** Connected (cluster: the slot map is loaded). */
  ready(): boolean;
  /**
   * Sentinel: whether the node the client is connected to still says it is the master (after a
   * planned failover the old master stays up as a replica, and its connection stays open).
   */
  stillMaster?(): Promise<boolean>;
  /** For log lines: the target, without credentials. */
  readonly description: string;
}

/**
 * Reconnect quickly: a promoted master (Sentinel) or a restarted one is found within 200 ms of its
 * coming up. A refused connection costs nothing worth backing off for longer.
 */
const retry = (times: number) => Math.min(50 * times, 200);

/** node:tls options when TLS is on, else undefined. */
function tlsOf(o: ConnectOptions): ConnectionOptions | undefined {
  return o.tls === false ? undefined : o.tls === true ? {} : o.tls;
}

function common(o: ConnectOptions): RedisOptions {
  return {
    // Fail fast: nothing is queued while disconnected, nothing is retried by the client (the gate's
    // fail mode is the retry policy). Every call is bounded by the store's own deadline (the
    // batcher's per flush, `direct` for a MULTI, the probe's, the limiter facade's), not by ioredis'
    // commandTimeout, which would arm and clear one timer per command on the hot path.
    enableOfflineQueue: false,
    connectTimeout: o.connectTimeoutMs,
    maxRetriesPerRequest: 0,
    // After a refused connection the old socket never emits 'close'; do not hold shutdown for 2 s.
    disconnectTimeout: 200,
    // CLIENT LIST on a node shows the gate's connections by name (and that replicas have none).
    connectionName: CONNECTION_NAME,
    ...(o.username !== undefined ? { username: o.username } : {}),
    ...(o.password !== undefined ? { password: o.password } : {}),
  };
}

export function connect(target: RedisTarget, o: ConnectOptions): RedisConnection {
  if (target.mode === 'single') return single(target.url, o);
  if (target.mode === 'sentinel') return sentinel(target, o);
  return cluster(target.nodes, o);
}

function single(url: string, o: ConnectOptions): RedisConnection {
  // A rediss:// URL turns TLS on by itself (ioredis); `tls: true` does it for a redis:// URL.
  const tls = tlsOf(o);
  const client = new Redis(url, { ...common(o), retryStrategy: retry, ...(tls ? { tls } : {}) });
  return {
    mode: 'single',
    client,
    nodeOf: () => ONLY_MASTER,
    masters: () => [{ node: ONLY_MASTER, client }],
    ready: () => client.status === 'ready',
    description: redactUrl(url),
  };
}

function sentinel(t: Extract<RedisTarget, { mode: 'sentinel' }>, o: ConnectOptions): RedisConnection {
  const tls = tlsOf(o);
  const client = new Redis({
    ...common(o),
    sentinels: t.sentinels.map(({ host, port }) => ({ host, port })),
    name: t.name,
    // Versions, leases and limits are read from the master only: a lagging replica would give a
    // wrong 412 or a wrong allow.
    role: 'master',
    retryStrategy: retry,
    sentinelRetryStrategy: retry,
    sentinelCommandTimeout: o.commandTimeoutMs,
    // Subscribes to +switch-master: a promotion is followed at once, not at the next failed command
    // (the health probe also checks ROLE every second). Its connections do not reconnect to a
    // sentinel that went away (ioredis would print each failed attempt to stderr); the next
    // reconnect of the store subscribes afresh.
    failoverDetector: true,
    sentinelReconnectStrategy: () => null,
    // A demoted master answers writes with READONLY: reconnect (asking the sentinels for the
    // master again) instead of failing every write until the connection happens to drop.
    reconnectOnError: (err) => replyCode(err) === 'READONLY',
    ...(t.username !== undefined ? { sentinelUsername: t.username } : {}),
    ...(t.password !== undefined ? { sentinelPassword: t.password } : {}),
    ...(tls ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
  });
  return {
    mode: 'sentinel',
    client,
    nodeOf: () => ONLY_MASTER,
    masters: () => [{ node: ONLY_MASTER, client }],
    ready: () => client.status === 'ready',
    stillMaster: async () => {
      const role = (await client.role()) as unknown[];
      if (role[0] === 'master') return true;
      // Reconnect: ioredis asks the sentinels for the master again.
      client.disconnect(true);
      return false;
    },
    description: `sentinel ${t.name} via ${t.sentinels.map((a) => `${a.host}:${a.port}`).join(',')}`,
  };
}

function cluster(nodes: readonly RedisAddress[], o: ConnectOptions): RedisConnection {
  const tls = tlsOf(o);
  const options: ClusterOptions = {
    // Top level: no offline queue (ioredis' nodes keep theirs, needed while a node connects lazily).
    enableOfflineQueue: false,
    // Reads go to masters only, like writes.
    scaleReads: 'master',
    enableReadyCheck: true,
    // Follows a failover or reshard even while nothing is sent to the moved slots.
    slotsRefreshInterval: 1000,
    slotsRefreshTimeout: Math.max(o.commandTimeoutMs, 500),
    // Redirections are followed at once, a slot in mid-migration is retried quickly; the store's
    // own deadline (commandTimeout) bounds the lot. CLUSTERDOWN (a master failed, no replica has
    // taken over yet) is not retried: every call would wait out commandTimeout for an answer that
    // takes seconds to come; the fail mode applies at once instead.
    maxRedirections: 16,
    retryDelayOnMoved: 0,
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 20,
    clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
    redisOptions: { ...common(o), ...(tls ? { tls } : {}) },
    // With TLS the node certificates name hosts, not the IPs a lookup would give (managed clusters).
    ...(tls ? { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) } : {}),
  };
  const client = new Cluster(
    nodes.map(({ host, port }) => ({ host, port })),
    options,
  );
  return {
    mode: 'cluster',
    client,
    nodeOf: (key) => client.slots[slotOf(key)]?.[0],
    masters: () => {
      const seen = new Set<string>();
      for (const owners of client.slots) if (owners?.[0] !== undefined) seen.add(owners[0]);
      const pool = new Map(client.nodes('all').map((r) => [`${r.options.host}:${r.options.port}`, r]));
      return [...seen].map((node) => ({ node, client: pool.get(node) }));
    },
    ready: () => client.status === 'ready',
    description: `cluster via ${nodes.map((a) => `${a.host}:${a.port}`).join(',')}`,
  };
}
