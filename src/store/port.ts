// The store port: what the gates, the admin API and the replay need of the shared state, whatever backs it.

/**
 * Why a store call failed:
 * - `timeout`: no answer within store.commandTimeout;
 * - `not_ready`: not connected (nothing is queued while disconnected);
 * - `down`: not attempted, because the health check already knows the store is down or hung;
 * - `cluster`: a MOVED / ASK / CROSSSLOT / CLUSTERDOWN reply that was not followed (a one-node
 *   client pointed at a cluster, or a cluster reconfiguring);
 * - `script`: a Lua script failed (NOSCRIPT that could not be reloaded, a script error);
 * - `other`: anything else.
 */
export type StoreErrorCode = 'timeout' | 'not_ready' | 'down' | 'cluster' | 'script' | 'other';

/** An infrastructure fault: caught in each gate's shell, counted, turned into the gate's fail mode. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** One instance for "not connected": an outage must not cost an Error (and its stack) per request. */
export const STORE_NOT_READY = new StoreError('not_ready', 'store is not connected');
/** One instance for "the health check says it is down": the call is not even attempted. */
export const STORE_DOWN = new StoreError('down', 'store is down (health check)');

/** The code of a store call's rejection (the port rejects with StoreErrors; anything else is `other`). */
export function storeErrorCode(err: unknown): StoreErrorCode {
  return err instanceof StoreError ? err.code : 'other';
}

/** The version seen and whether this write now holds the resource's lease. */
export interface ClaimResult {
  version: string | null;
  /** `taken`: this caller holds the lease; otherwise the remaining lease of the holder. */
  claim: { kind: 'taken' } | { kind: 'held'; remainingMs: number };
}

/** What a claim would find, without taking anything (explain). */
export interface ClaimView {
  version: string | null;
  claim: { kind: 'free' } | { kind: 'held'; remainingMs: number };
}

export type PublishResult = { kind: 'published'; previous: string | null } | { kind: 'stale'; current: string };

/** An Idempotency-Key record: the request it was first used for, and how long it stays in flight. */
export interface IdempotencyRecord {
  /** The fingerprint the first request recorded (gates/idempotency/decide.ts). */
  fingerprint: string;
  /** Time left in flight, ms; 0 once the upstream ended it or inFlight ran out. */
  inFlightMs: number;
  /** The upstream ended it (admin API, client library): it has the answer to a retry. */
  ended: boolean;
  /** The request that holds it: the one that made it, or re-armed it last. */
  token: string;
}

/** `recorded`: this request made the record (and holds it in flight); `exists`: another request did. */
export type IdempotencyBegin = { kind: 'recorded' } | { kind: 'exists'; record: IdempotencyRecord };

/** What ending a record's in-flight state found: `ended` it, it had `already_ended`, or it is `missing`. */
export type IdempotencyEnd = 'ended' | 'already_ended' | 'missing';

export interface LimiterSpec {
  /** The rule's name: the adapter builds the rule's keys from it (store/keys.ts). */
  rule: string;
  points: number;
  durationS: number;
}

/** One rate-limit answer: whether the point was granted, what is left, and when the window resets. */
export type LimitResult = { kind: 'allowed'; remaining: number; resetMs: number } | { kind: 'limited'; resetMs: number };

/** A rule's shared budget per client. Store failures reject with a StoreError. */
export interface Limiter {
  /** Takes one point for `client`. */
  consume(client: string): Promise<LimitResult>;
  /** What `consume` would answer now, without taking a point (explain). */
  peek(client: string): Promise<LimitResult>;
  /** Gives one point back (a write the conflict gate refused, when so configured). */
  refund(client: string): Promise<void>;
}

export interface StoreHealth {
  /** The store answered a recent health ping. */
  up: boolean;
  /** Why it is not up, in an operator's words (`not connected`, `not answering`, `…is a cluster node`). */
  reason?: string;
}

/**
 * Both adapters (redis.ts, memory.ts) implement exactly these semantics; test/store/contract.ts
 * runs one suite against each. Every method rejects with a StoreError when the store fails, and at
 * once (`down` / `not_ready`) while it is known to be down.
 */
export interface VersionStore {
  readonly kind: 'redis' | 'memory';
  /** The cached version, or null when the resource is unknown. */
  getVersion(resourceKey: string): Promise<string | null>;
  /**
   * Atomically reads the version and takes the lease unless another holds it on this same
   * version. A lease bound to an older version is void: publishing a version frees the resource.
   */
  claim(resourceKey: string, leaseMs: number, token: string): Promise<ClaimResult>;
  /** What `claim` would find, taking nothing. */
  peekClaim(resourceKey: string): Promise<ClaimView>;
  /** Gives the lease back if `token` still holds it. */
  release(resourceKey: string, token: string): Promise<void>;
  /** Ends whatever lease the resource has (an upstream whose write failed; it holds no token). */
  endClaim(resourceKey: string): Promise<void>;
  /**
   * Publish-if-newer (ordered versions never move backwards); also ends any lease. With `ttlMs`
   * the version expires unless published again within it (conflict.versionTtl).
   */
  publish(resourceKey: string, version: string, ttlMs?: number): Promise<PublishResult>;
  /** Forgets the version (and lease); true when there was a version. */
  remove(resourceKey: string): Promise<boolean>;
  /**
   * Idempotency-Key, atomically: when `scope` has no record, records `fingerprint` in flight for
   * `inFlightMs`, kept `ttlMs`, tagged with `token` (answers `recorded`); else answers the record.
   */
  beginIdempotent(scope: string, fingerprint: string, token: string, inFlightMs: number, ttlMs: number): Promise<IdempotencyBegin>;
  /** The record, taking nothing (explain). */
  peekIdempotent(scope: string): Promise<IdempotencyRecord | null>;
  /** Ends the in-flight state early (the upstream finished); with `forget`, deletes the record. */
  endIdempotent(scope: string, forget?: boolean): Promise<IdempotencyEnd>;
  /**
   * Puts a record whose in-flight time ran out without the upstream ending it back in flight for
   * `inFlightMs`, held by `token`, if `heldBy` still holds it (a retry of a request whose outcome the
   * gate does not know). False when another retry re-armed it first, or it is in flight or ended.
   */
  rearmIdempotent(scope: string, heldBy: string, token: string, inFlightMs: number): Promise<boolean>;
  /**
   * A request the conflict gate refused gives its hold back, if `token` holds the record: deletes
   * the record it made, or (`keep`, a re-armed record) puts it back out of flight.
   */
  abandonIdempotent(scope: string, token: string, keep?: boolean): Promise<void>;
  /** Keeps a small value for `ttlMs` (denials awaiting a proxy's replay). */
  remember(id: string, value: string, ttlMs: number): Promise<void>;
  recall(id: string): Promise<string | null>;
  /** The shared budget of one rate-limit rule. */
  limiter(spec: LimiterSpec): Limiter;
  /** No round trip: connected and answering its health pings. The hot path fails fast when false. */
  available(): boolean;
  /** What /readyz and the metrics report. */
  health(): StoreHealth;
  /** A round trip: true when the store answered. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
