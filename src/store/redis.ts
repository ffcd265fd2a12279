// The Redis adapter of the store port: one node, Cluster or Sentinel; keys from keys.ts, one round trip per call.
import type { ConnectionOptions } from 'node:tls';
import type { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { BlockedKeys } from './blocked.js';
import { keyLayout, type KeyLayout } from './keys.js';
import { limiterOf } from './limiter.js';
import { STORE_DOWN, STORE_NOT_READY, StoreError, type ClaimResult, type ClaimView, type IdempotencyBegin, type IdempotencyEnd, type IdempotencyRecord, type Limiter, type LimiterSpec, type PublishResult, type StoreErrorCode, type StoreHealth, type VersionStore } from './port.js';
import { defineIdempotency, IdempotencyOps, sendIdempotency } from './redis-idempotency.js';
import { Batcher } from './redis/batcher.js';
import { connect, ONLY_MASTER, type RedisConnection, type RedisTarget } from './redis/connect.js';
import { classify, replyCode, STORE_TIMEOUT, within, WRITE_REFUSALS } from './redis/errors.js';
import { Health } from './redis/health.js';
import { rlfClient, type RlfClient } from './redis/rlf-client.js';
import { defineScripts, type ClaimReply, type Commands, type PeekReply, type PublishReply } from './redis/scripts.js';

export type { RedisTarget };
export { STORE_TIMEOUT };

/** The few log calls the store makes (a pino logger fits). */
export interface StoreLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface RedisStoreOptions {
  /** Where the data lives; `url` is the one-node shorthand. Exactly one of the two. */
  target?: RedisTarget;
  url?: string;
  username?: string;
  password?: string;
  /** TLS in every mode (a rediss:// url turns it on too); node:tls options for a private CA or a client certificate. */
  tls?: boolean | ConnectionOptions;
  keyPrefix: string;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  log?: StoreLog;
  /** Told of connection errors (already rate-limited by ioredis' reconnect backoff). */
  onConnectionError?: (message: string) => void;
}

/** How long a CLUSTERDOWN reply keeps the store reported down, unless a command succeeds first (a TIME probe cannot tell: it has no slot). */
const CLUSTER_DOWN_MS = 2000;
/** At most one log line per kind of runtime cluster reply in this long. */
const LOG_EVERY_MS = 10_000;
/** Blocked clients kept per rate-limit rule (blocked.ts). */
const BLOCKED_PER_LIMITER = 10_000;

/** What a runtime cluster reply means, for the log line and /readyz. */
const CLUSTER_MEANING: Record<string, string> = {
  MOVED: 'slots are moving (a reshard or a failover) and a redirection could not be followed within store.commandTimeout',
  ASK: 'slots are moving (a reshard) and a redirection could not be followed within store.commandTimeout',
  TRYAGAIN: 'a slot is being migrated and a two-key command had to wait longer than store.commandTimeout',
  CLUSTERDOWN: 'the cluster refuses commands: a master is down and no replica has taken over yet (or slots are unassigned)',
  CROSSSLOT: 'a command mixed hash slots: the keys of one operation must share a hash tag (a bug: please report it)',
};

/**
 * A store that answers but must not be served from; every call is refused instead. A single-node
 * or Sentinel client that got a cluster reply is pointed at a cluster node: it would serve the keys
 * of that node's slots and fail the others. A one-node URL whose database Redis refuses to SELECT
 * would serve database 0: another application's keys, or another gate's.
 */
class Misconfigured {
  readonly error: StoreError;
  constructor(
    readonly reason: string,
    code: StoreErrorCode,
  ) {
    this.error = new StoreError(code, reason);
  }
}

export class RedisStore implements VersionStore {
  readonly kind = 'redis' as const;
  readonly connection: RedisConnection;
  private readonly keys: KeyLayout;
  private readonly batcher: Batcher;
  private readonly health_: Health;
  private readonly rlf: RlfClient;
  private readonly idem: IdempotencyOps;
  private readonly commandTimeoutMs: number;
  private readonly log: StoreLog | undefined;
  private misconfigured: Misconfigured | undefined;
  /** The URL's database was refused on the current connection (set again on every reconnect). */
  private dbRefused: Misconfigured | undefined;
  private clusterDownAt = 0;
  private readonly loggedAt = new Map<string, number>();
  /** Settles once the first connection attempt tells something: answered (and checked) or failed. */
  private readonly firstContact: Promise<void>;

  constructor(opts: RedisStoreOptions) {
    if ((opts.target === undefined) === (opts.url === undefined)) throw new TypeError('RedisStore: give exactly one of target and url');
    const target: RedisTarget = opts.target ?? { mode: 'single', url: opts.url! };
    this.keys = keyLayout(opts.keyPrefix);
    this.commandTimeoutMs = opts.commandTimeoutMs;
    this.log = opts.log;
    const conn = connect(target, {
      username: opts.username,
      password: opts.password,
      tls: opts.tls ?? false,
      commandTimeoutMs: opts.commandTimeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
    this.connection = conn;
    defineScripts(conn.client);
    // The Idempotency-Key script (redis-idempotency.ts): one key per call, so one slot.
    defineIdempotency(conn.client as Redis);
    this.health_ = new Health(conn, Math.max(opts.commandTimeoutMs, 100), {
      onChange: (node, down) => {
        const where = conn.mode === 'cluster' ? { node } : {};
        if (down !== undefined) this.log?.warn({ ...where, reason: down }, 'store: down (the reason says how); the fail modes apply at once until it serves again');
        else this.log?.info(where, 'store: serving again');
      },
      onWrites: (node, refusal) => {
        const where = conn.mode === 'cluster' ? { node } : {};
        if (refusal !== undefined) this.log?.warn({ ...where, reason: `refusing writes (${refusal})` }, 'store: refusing writes; rate-limit increments, claims and publishes meet the fail modes until it accepts them (version reads go on)');
        else this.log?.info(where, 'store: accepting writes again');
      },
    });
    this.batcher = new Batcher(conn, opts.commandTimeoutMs, {
      answered: (node, at) => this.health_.answered(node, at),
      timedOut: (node, sentAt) => this.health_.timedOut(node, sentAt),
    });
    this.rlf = rlfClient(conn.client, this.batcher, opts.commandTimeoutMs);
    this.idem = new IdempotencyOps((key, args) => this.run(key, true, () => this.batcher.run(key, (c) => sendIdempotency(c, key, args))), this.keys);

    let contact: () => void = () => undefined;
    this.firstContact = new Promise<void>((r) => (contact = r));
    // ioredis SELECTs the URL's database on each connection, before it reports ready.
    conn.client.on('connect', () => (this.dbRefused = undefined));
    conn.client.on('error', (err: Error & { lastNodeError?: Error; command?: { name?: string; args?: unknown[] } }) => {
      if (err.command?.name === 'select') this.refuseDb(String(err.command.args?.[0]), err.message);
      // A cluster that could not load its slot map says why only in the last node's error (WRONGPASS, refused…).
      opts.onConnectionError?.(err.lastNodeError ? `${err.message} (${err.lastNodeError.message})` : err.message);
      contact();
    });
    conn.client.on('end', () => contact());
    // A lost connection is the master down (logged once; 'ready' logs it serving again). In a
    // cluster the probes follow each master.
    if (conn.mode !== 'cluster') conn.client.on('close', () => this.health_.lost(ONLY_MASTER, 'not connected (the connection closed)'));
    conn.client.on('ready', () => {
      if (conn.mode !== 'cluster') this.health_.answered(ONLY_MASTER);
      // With the write check: a one-node URL at a replica, or a full Redis, is known before a write meets it.
      void this.health_.probeAll(true);
      if (conn.mode === 'single') void this.checkNotCluster().finally(contact);
      else contact();
    });
  }

  /** One-node mode: a node with cluster_enabled:1 would answer MOVED for most keys. Refuse it, say why. */
  private async checkNotCluster(): Promise<void> {
    let info: string;
    try {
      info = await this.connection.client.info('cluster');
    } catch {
      return;
    }
    const cluster = /^cluster_enabled:1\s*$/m.test(info);
    if (cluster && !this.misconfigured) this.refuseAsCluster('it reports cluster_enabled:1');
    else if (!cluster && this.misconfigured) {
      this.misconfigured = undefined;
      this.log?.info({}, 'store: store.url no longer points at a cluster node; serving again');
    }
  }

  private refuseDb(db: string, reply: string): void {
    this.dbRefused = new Misconfigured(`store.url selects database ${db}, which Redis refuses (${reply}): check its \`databases\` setting, or the URL's /db`, 'other');
    this.log?.error({ reason: this.dbRefused.reason }, 'store: refusing to serve from database 0 in place of the one store.url names');
  }

  /** Why every call is refused although the store answers, or undefined. */
  private get refused(): Misconfigured | undefined {
    return this.misconfigured ?? this.dbRefused;
  }

  private refuseAsCluster(evidence: string): void {
    this.misconfigured = new Misconfigured(`store.url points at a Redis Cluster node (${evidence}): configure store.cluster (or REDIS_CLUSTER_NODES) instead`, 'cluster');
    this.log?.error({ reason: this.misconfigured.reason }, 'store: refusing to serve from a cluster node through a one-node client (it would answer only the keys of its own slots)');
  }

  /** Why a call on `key` must not be attempted now, or undefined. */
  private refusal(key: string): StoreError | undefined {
    const refused = this.refused;
    if (refused) return refused.error;
    if (!this.connection.ready()) return STORE_NOT_READY;
    const node = this.connection.nodeOf(key);
    if (node !== undefined && this.health_.downReason(node) !== undefined) return STORE_DOWN;
    return undefined;
  }

  private fault(err: unknown, script: boolean): StoreError {
    const e = classify(err, { script, connected: this.connection.mode !== 'cluster' && this.connection.ready() });
    const reply = replyCode(err);
    if (e.code === 'cluster') this.clusterReply(reply ?? 'MOVED');
    // A node that refuses writes still answers the TIME probe: a probe with the write check, now,
    // finds which and reports it (/readyz, store_up, a log line); a replica is marked down.
    else if (reply !== undefined && WRITE_REFUSALS.has(reply)) void this.health_.probeAll(true);
    return e;
  }

  private clusterReply(code: string): void {
    if (this.connection.mode !== 'cluster') {
      if (!this.misconfigured) this.refuseAsCluster(`it answered ${code}`);
      return;
    }
    if (code === 'CLUSTERDOWN') this.clusterDownAt = Date.now();
    const last = this.loggedAt.get(code) ?? 0;
    if (Date.now() - last < LOG_EVERY_MS) return;
    this.loggedAt.set(code, Date.now());
    const meaning = CLUSTER_MEANING[code] ?? 'the cluster answered with a redirection that was not followed';
    (code === 'CROSSSLOT' ? this.log?.error : this.log?.warn)?.call(this.log, { reply: code, meaning }, `store: Redis Cluster answered ${code}; the fail modes applied to that call`);
  }

  private async run<T>(key: string, script: boolean, op: () => Promise<T>): Promise<T> {
    const refused = this.refusal(key);
    if (refused) throw refused;
    let result: T;
    try {
      result = await op();
    } catch (err) {
      throw this.fault(err, script);
    }
    // A master served a command: the cluster is no longer down (CLUSTERDOWN is cluster-wide).
    if (this.clusterDownAt !== 0) this.clusterDownAt = 0;
    return result;
  }

  /** A command outside the batcher (a MULTI), under the same deadline. */
  private direct<T>(op: () => Promise<T>): Promise<T> {
    return within(op(), this.commandTimeoutMs);
  }

  /**
   * When a claim sent now to `key`'s master stops being wanted, on that master's clock: a margin
   * before the gate stops waiting for it (commandTimeout), which covers the error of the clock
   * offset. A claim Redis runs in that margin answers 'late' and takes nothing, like a timeout.
   */
  private deadline(key: string): number {
    const margin = Math.min(50, this.commandTimeoutMs / 5);
    return Date.now() + this.commandTimeoutMs - margin + this.health_.offsetMs(this.connection.nodeOf(key) ?? ONLY_MASTER);
  }

  getVersion(key: string): Promise<string | null> {
    const ver = this.keys.version(key);
    return this.run(ver, false, () => this.batcher.run<string | null>(ver, (c) => c.get(ver)));
  }

  async claim(key: string, leaseMs: number, token: string): Promise<ClaimResult> {
    const ver = this.keys.version(key);
    const claim = this.keys.claim(key);
    const [version, state, ttl] = await this.run(ver, true, () => this.batcher.run<ClaimReply>(ver, (c) => c.cgClaim(ver, claim, leaseMs, token, this.deadline(ver))));
    if (state === 'late') {
      // Redis ran it after the deadline by its clock, yet the answer beat ours: the clock offset
      // is stale. Nothing was taken; the fail mode applies, and a probe measures the clock again.
      void this.health_.probeAll();
      throw STORE_TIMEOUT;
    }
    return {
      version: version ?? null,
      claim: state === 'held' ? { kind: 'held', remainingMs: Math.max(Number(ttl), 1) } : { kind: 'taken' },
    };
  }

  async peekClaim(key: string): Promise<ClaimView> {
    const ver = this.keys.version(key);
    const claim = this.keys.claim(key);
    const [version, ttl] = await this.run(ver, true, () => this.batcher.run<PeekReply>(ver, (c) => c.cgPeekClaim(ver, claim)));
    const remainingMs = Number(ttl);
    return { version: version ?? null, claim: remainingMs > 0 ? { kind: 'held', remainingMs } : { kind: 'free' } };
  }

  async release(key: string, token: string): Promise<void> {
    const claim = this.keys.claim(key);
    // Sent at once, not batched: the gate releases without waiting (a refused write), and the
    // lease should be gone before the next request on the resource, which may follow its answer.
    await this.run(claim, true, () => this.direct(() => (this.connection.client as unknown as Commands).cgRelease(claim, token)));
  }

  async endClaim(key: string): Promise<void> {
    const claim = this.keys.claim(key);
    await this.run(claim, false, () => this.batcher.run(claim, (c) => c.del(claim)));
  }

  async publish(key: string, version: string, ttlMs = 0): Promise<PublishResult> {
    const ver = this.keys.version(key);
    const claim = this.keys.claim(key);
    const [state, other] = await this.run(ver, true, () => this.batcher.run<PublishReply>(ver, (c) => c.cgPublish(ver, claim, version, ttlMs)));
    return state === 'stale' ? { kind: 'stale', current: other! } : { kind: 'published', previous: other ?? null };
  }

  async remove(key: string): Promise<boolean> {
    const ver = this.keys.version(key);
    const claim = this.keys.claim(key);
    // Both keys share the hash tag {<key>}: one slot, so one MULTI on one master.
    const results = await this.run(ver, false, () => this.direct(() => this.connection.client.multi().del(ver).del(claim).exec()));
    const removed = results?.[0]?.[1];
    return typeof removed === 'number' && removed > 0;
  }

  async remember(id: string, value: string, ttlMs: number): Promise<void> {
    const k = this.keys.replay(id);
    await this.run(k, false, () => this.batcher.run(k, (c) => c.set(k, value, 'PX', ttlMs)));
  }

  recall(id: string): Promise<string | null> {
    const k = this.keys.replay(id);
    return this.run(k, false, () => this.batcher.run<string | null>(k, (c: Commands) => c.get(k)));
  }

  beginIdempotent(scope: string, fingerprint: string, token: string, inFlightMs: number, ttlMs: number): Promise<IdempotencyBegin> {
    return this.idem.begin(scope, fingerprint, token, inFlightMs, ttlMs);
  }

  peekIdempotent(scope: string): Promise<IdempotencyRecord | null> {
    return this.idem.peek(scope);
  }

  endIdempotent(scope: string, forget?: boolean): Promise<IdempotencyEnd> {
    return this.idem.end(scope, forget);
  }

  rearmIdempotent(scope: string, heldBy: string, token: string, inFlightMs: number): Promise<boolean> {
    return this.idem.rearm(scope, heldBy, token, inFlightMs);
  }

  abandonIdempotent(scope: string, token: string, keep?: boolean): Promise<void> {
    return this.idem.abandon(scope, token, keep);
  }

  limiter(spec: LimiterSpec): Limiter {
    const rlf = new RateLimiterRedis({
      storeClient: this.rlf,
      keyPrefix: this.keys.rateLimit(spec.rule),
      points: spec.points,
      duration: spec.durationS,
      rejectIfRedisNotReady: true,
    });
    return limiterOf(
      rlf,
      spec.points,
      spec.durationS,
      (err) => {
        throw this.fault(err, true);
      },
      {
        // Once Redis says a client is over, answer locally until its window ends (no round trip),
        // also while Redis is down: a client known to be over stays limited through an outage.
        blocked: new BlockedKeys(BLOCKED_PER_LIMITER),
        guard: (key) => {
          const refused = this.refusal(key);
          if (refused) throw refused;
        },
        increment: (key) => this.rlf.consumeOne(key, spec.points, spec.durationS),
      },
    );
  }

  available(): boolean {
    return this.health().up;
  }

  health(): StoreHealth {
    const refused = this.refused;
    if (refused) return { up: false, reason: refused.reason };
    if (!this.connection.ready()) return { up: false, reason: this.connection.mode === 'cluster' ? 'not connected to the cluster (no slot map yet)' : 'not connected' };
    const down = this.health_.anyDown() ?? this.health_.anyRefusing();
    if (down) return { up: false, reason: this.connection.mode === 'cluster' ? `master ${down.node} ${down.why}` : down.why };
    if (this.clusterDownAt !== 0 && Date.now() - this.clusterDownAt < CLUSTER_DOWN_MS) return { up: false, reason: `cluster down (CLUSTERDOWN): ${CLUSTER_MEANING.CLUSTERDOWN}` };
    return { up: true };
  }

  async ping(): Promise<boolean> {
    // Not through run(): a probe is how a store that stopped answering is found answering again.
    if (!this.connection.ready()) return false;
    return this.health_.probeAll();
  }

  /**
   * Resolves once the first connection attempt has told something (connected and checked, or
   * failed), or after `ms`: for a boot check that must not wait on a store that is down.
   */
  async firstAnswer(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.firstContact, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /** Why the store refuses to serve although it answers (a one-node URL at a cluster node, a database Redis refuses), or undefined. */
  get refusedBecause(): string | undefined {
    return this.refused?.reason;
  }

  async close(): Promise<void> {
    this.health_.close();
    const client = this.connection.client;
    // Not connected: stop the reconnect loop now. Connected: QUIT lets queued replies arrive.
    if (client.status !== 'ready') {
      client.disconnect();
      return;
    }
    const timer = setTimeout(() => client.disconnect(), 1000);
    try {
      await client.quit();
    } catch {
      // disconnect() below
    } finally {
      clearTimeout(timer);
      // Also after a QUIT: only disconnect() stops Sentinel's failover detector, whose connections
      // to each sentinel would otherwise keep the process alive (a script using the client library).
      client.disconnect();
    }
  }
}
