// VersionPublisher: an upstream publishes the version of each resource it wrote, through Redis or the admin API.
import type { ConnectionOptions } from 'node:tls';
import { isResourceKey, publishableVersion, RESOURCE_KEY_MAX, VERSION_RULE } from '../core/versions.js';
import { idempotencyScope, type KeyOwner } from '../gates/idempotency/scope.js';
import { parseHostPort, parseNodeAddress, redisUrlProblem, type RedisAddress } from '../store/redis/address.js';
import { RedisStore, type RedisTarget } from '../store/redis.js';
import type { IdempotencyEnd, PublishResult } from '../store/port.js';

export type { IdempotencyEnd, KeyOwner, PublishResult };

/**
 * The gate's Redis, in any of the gate's three store modes: exactly one of `url` (one node),
 * `cluster` (seed nodes) or `sentinel` (master name and sentinels), as in the gate's `store`
 * config. `username` / `password` / `tls` apply in every mode, as there.
 */
export interface RedisPublisherOptions {
  /** `redis://…` or `rediss://…`: one node. */
  url?: string;
  /** Redis Cluster: seed nodes, `host:port` or `redis://host:port`. */
  cluster?: { nodes: string[] };
  /** Redis Sentinel: the master's name and the sentinels (`host:port`); their own ACL user and password if they need one. */
  sentinel?: { name: string; sentinels: string[]; username?: string; password?: string };
  username?: string;
  password?: string;
  /** TLS (a rediss:// url or node turns it on too); node:tls options for a private CA, e.g. `{ ca: readFileSync('ca.pem') }`. */
  tls?: boolean | ConnectionOptions;
  /** The gate's store.keyPrefix (default "cg:"). */
  keyPrefix?: string;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** The gate's `conflict.versionTtl`, in ms (the admin API applies the gate's own). */
  versionTtlMs?: number;
}

/** Where the publisher writes: the version cache in Redis directly, or the gate's admin API. */
export type PublisherTarget = { redis: RedisPublisherOptions } | { admin: { url: string; token: string; timeoutMs?: number } };

export class PublishError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PublishError';
  }
}

interface Backend {
  publish(key: string, version: string): Promise<PublishResult>;
  endIdempotency(owner: KeyOwner, key: string, forget: boolean): Promise<IdempotencyEnd>;
  release(key: string): Promise<void>;
  get(key: string): Promise<string | null>;
  remove(key: string): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Publishes resource versions with publish-if-newer, the same atomic rule as the admin API: an
 * ordered version (`12`, `2.4.1`) never replaces a higher one, so replicas that publish out of
 * order never move a version backwards. Publishing also ends any claim lease on the resource.
 *
 * ```ts
 * const versions = new VersionPublisher({ redis: { url: process.env.REDIS_URL!, keyPrefix: 'cg:' } });
 * // or { redis: { cluster: { nodes: ['10.0.0.1:6379', '10.0.0.2:6379'] }, password } }
 * // or { redis: { sentinel: { name: 'mymaster', sentinels: ['10.0.0.1:26379'] }, password } }
 * await db.update(order);                                  // the write succeeded
 * await versions.publish(`orders:${order.id}`, String(order.version));
 * ```
 *
 * A write that failed ends the lease with `release(key)`, so the next writer need not wait for it.
 */
export class VersionPublisher {
  private readonly backend: Backend;

  constructor(target: PublisherTarget) {
    this.backend = 'redis' in target ? redisBackend(target.redis) : adminBackend(target.admin);
  }

  /**
   * Publish-if-newer. `{ kind: 'stale', current }` when a higher ordered version is already there.
   * The version is what the admin API takes: a non-negative safe integer, or a string of 1 to 256
   * visible ASCII characters but `"`; anything else rejects with a TypeError, as does a resource key
   * that is empty, over 512 characters or holds a control character.
   */
  publish(resourceKey: string, version: string | number): Promise<PublishResult> {
    const v = publishableVersion(version);
    if (v === null) return Promise.reject(new TypeError(`VersionPublisher: version: expected a non-negative safe integer or ${VERSION_RULE}`));
    return keyed(resourceKey, (k) => this.backend.publish(k, v));
  }

  /** The cached version, or null. */
  get(resourceKey: string): Promise<string | null> {
    return keyed(resourceKey, (k) => this.backend.get(k));
  }

  /**
   * Ends the resource's claim lease without changing its version (after an upstream write failed),
   * so the next writer need not wait for the lease to expire. Through Redis this is one atomic
   * command. Through the admin API it re-publishes the cached version (a PUT releases the lease),
   * or, for a resource with no version, DELETEs it (which drops the lease too).
   */
  release(resourceKey: string): Promise<void> {
    return keyed(resourceKey, (k) => this.backend.release(k));
  }

  /**
   * Ends the in-flight state of a request with an Idempotency-Key once the upstream has stored its
   * result, so a retry of it passes the gate at once instead of getting 409 until `inFlight` runs
   * out. `owner` is whose key it is: `{ client }` = the token's client id (auth.clientIdClaim,
   * `sub` by default, which the gate sends as X-Auth-Subject), `{ ip }` on a public route; `key`
   * is X-Idempotency-Key. With `forget: true` the key is freed instead (the upstream stored
   * nothing, e.g. its own precondition refused the write, and the client may reuse the key).
   * `missing` when the gate has no record of it.
   */
  endIdempotency(owner: KeyOwner, key: string, opts: { forget?: boolean } = {}): Promise<IdempotencyEnd> {
    return this.backend.endIdempotency(owner, key, opts.forget === true);
  }

  /** Forgets the version (a deleted resource). */
  remove(resourceKey: string): Promise<boolean> {
    return keyed(resourceKey, (k) => this.backend.remove(k));
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

/** Runs `op` on a well-formed resource key; a TypeError (rejected) for one the admin API would refuse too. */
function keyed<T>(key: string, op: (key: string) => Promise<T>): Promise<T> {
  if (!isResourceKey(key)) return Promise.reject(new TypeError(`VersionPublisher: resource key: expected 1 to ${RESOURCE_KEY_MAX} characters, no control characters`));
  return op(key);
}

/** The publisher's Redis target; a TypeError for a target that names no mode, two modes, or a bad address (misuse, at creation). */
function targetOf(o: RedisPublisherOptions): RedisTarget {
  const modes = (['url', 'cluster', 'sentinel'] as const).filter((m) => o[m] !== undefined);
  if (modes.length !== 1) throw new TypeError(`VersionPublisher: give exactly one of redis.url, redis.cluster, redis.sentinel${modes.length > 1 ? ` (got ${modes.join(', ')})` : ''}`);
  const addresses = (list: string[], parse: (s: string) => RedisAddress | null, field: string): RedisAddress[] => {
    if (!Array.isArray(list) || list.length === 0) throw new TypeError(`VersionPublisher: ${field} needs at least one address`);
    return list.map((text) => {
      const a = parse(text);
      if (!a) throw new TypeError(`VersionPublisher: ${field}: "${text}" is not host:port`);
      return a;
    });
  };
  if (o.cluster) return { mode: 'cluster', nodes: addresses(o.cluster.nodes, parseNodeAddress, 'redis.cluster.nodes') };
  if (o.sentinel) {
    if (!o.sentinel.name) throw new TypeError('VersionPublisher: redis.sentinel.name is required');
    return { mode: 'sentinel', name: o.sentinel.name, sentinels: addresses(o.sentinel.sentinels, parseHostPort, 'redis.sentinel.sentinels'), username: o.sentinel.username, password: o.sentinel.password };
  }
  const problem = typeof o.url === 'string' ? redisUrlProblem(o.url) : 'expected a redis:// or rediss:// URL';
  if (problem) throw new TypeError(`VersionPublisher: redis.url: ${problem}`);
  return { mode: 'single', url: o.url! };
}

function redisBackend(o: RedisPublisherOptions): Backend {
  const target = targetOf(o);
  const connectMs = o.connectTimeoutMs ?? 2000;
  const store = new RedisStore({
    target,
    username: o.username,
    password: o.password,
    tls: o.tls ?? ((target.mode === 'cluster' && target.nodes.some((n) => n.tls)) || false),
    keyPrefix: o.keyPrefix ?? 'cg:',
    commandTimeoutMs: o.commandTimeoutMs ?? 1000,
    connectTimeoutMs: connectMs,
  });
  // The store fails fast while it is not connected; a publisher first waits for the connection.
  const ready = async () => {
    const until = Date.now() + connectMs;
    while (!store.available()) {
      if (store.refusedBecause) throw new PublishError(store.refusedBecause);
      if (Date.now() >= until) throw new PublishError(`redis is not connected: ${store.health().reason ?? 'not answering'}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    publish: async (k, v) => (await ready(), store.publish(k, v, o.versionTtlMs)),
    endIdempotency: async (owner, key, forget) => (await ready(), store.endIdempotent(idempotencyScope(owner, key), forget)),
    release: async (k) => (await ready(), store.endClaim(k)),
    get: async (k) => (await ready(), store.getVersion(k)),
    remove: async (k) => (await ready(), store.remove(k)),
    close: () => store.close(),
  };
}

function adminBackend(o: { url: string; token: string; timeoutMs?: number }): Backend {
  const base = o.url.replace(/\/+$/, '');
  const call = async (method: string, key: string, body?: unknown): Promise<Response> => {
    const res = await fetch(`${base}/versions/${encodeURIComponent(key)}`, {
      method,
      headers: { Authorization: `Bearer ${o.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(o.timeoutMs ?? 2000),
    });
    return res;
  };
  const fail = async (res: Response): Promise<never> => {
    const problem = (await res.json().catch(() => ({}))) as { code?: string; detail?: string };
    throw new PublishError(`admin API answered ${res.status}${problem.code ? ` ${problem.code}` : ''}`, res.status);
  };
  const backend: Backend = {
    endIdempotency: async (owner, key, forget) => {
      const res = await fetch(`${base}/idempotency/end`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${o.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...('client' in owner ? { client: owner.client } : { ip: owner.ip }), key, ...(forget ? { forget: true } : {}) }),
        signal: AbortSignal.timeout(o.timeoutMs ?? 2000),
      });
      if (res.status === 200) return ((await res.json()) as { ended: boolean }).ended ? 'ended' : 'already_ended';
      if (res.status === 404) return 'missing';
      return fail(res);
    },
    release: async (key) => {
      const current = await backend.get(key);
      if (current === null) await backend.remove(key);
      else await backend.publish(key, current);
    },
    publish: async (key, version) => {
      const res = await call('PUT', key, { version });
      if (res.status === 200) return { kind: 'published', previous: ((await res.json()) as { previous: string | null }).previous };
      if (res.status === 409) return { kind: 'stale', current: ((await res.json()) as { currentVersion: string }).currentVersion };
      return fail(res);
    },
    get: async (key) => {
      const res = await call('GET', key);
      if (res.status === 200) return ((await res.json()) as { version: string }).version;
      if (res.status === 404) return null;
      return fail(res);
    },
    remove: async (key) => {
      const res = await call('DELETE', key);
      if (res.status === 204) return true;
      if (res.status === 404) return false;
      return fail(res);
    },
    close: async () => {},
  };
  return backend;
}
