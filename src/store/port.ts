// The store port: what the gates and the admin API need from the version cache, whatever backs it.
import type { RateLimiterAbstract } from 'rate-limiter-flexible';

/** An infrastructure fault: caught in each gate's shell, counted, turned into the gate's fail mode. */
export class StoreError extends Error {
  constructor(
    readonly code: 'timeout' | 'not_ready' | 'script' | 'other',
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** One instance for "not connected": an outage must not cost an Error (and its stack) per request. */
export const STORE_NOT_READY = new StoreError('not_ready', 'store is not connected');

/** Turns a client failure (ioredis, rate-limiter-flexible) into a StoreError; never leaks the raw message. */
export function toStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/timed out/i.test(msg)) return new StoreError('timeout', 'store command timed out');
  if (/enableOfflineQueue|not ready|Connection is closed|writeable/i.test(msg)) return new StoreError('not_ready', 'store is not connected');
  if (/ERR|NOSCRIPT|script/i.test(msg)) return new StoreError('script', 'store script error');
  return new StoreError('other', 'store error');
}

/** The version seen and whether this write now holds the resource's lease. */
export interface ClaimResult {
  version: string | null;
  /** `taken`: this caller holds the lease; otherwise the remaining lease of the holder. */
  claim: { kind: 'taken' } | { kind: 'held'; remainingMs: number };
}

export type PublishResult = { kind: 'published'; previous: string | null } | { kind: 'stale'; current: string };

export interface LimiterSpec {
  keyPrefix: string;
  points: number;
  durationS: number;
}

/**
 * Both adapters (redis.ts, memory.ts) implement exactly these semantics; test/store/contract.ts
 * runs one suite against each.
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
  /** Gives the lease back if `token` still holds it. */
  release(resourceKey: string, token: string): Promise<void>;
  /** Ends whatever lease the resource has (an upstream whose write failed; it holds no token). */
  endClaim(resourceKey: string): Promise<void>;
  /** Publish-if-newer (ordered versions never move backwards); also ends any lease. */
  publish(resourceKey: string, version: string): Promise<PublishResult>;
  /** Forgets the version (and lease); true when there was a version. */
  remove(resourceKey: string): Promise<boolean>;
  /** Keeps a small value for `ttlMs` (denials awaiting a proxy's replay). */
  remember(id: string, value: string, ttlMs: number): Promise<void>;
  recall(id: string): Promise<string | null>;
  /** A rate limiter backed by this store (rate-limiter-flexible). */
  rateLimiter(spec: LimiterSpec): RateLimiterAbstract;
  /** The connection is up (no round trip: what the hot path checks before calling the store). */
  isReady(): boolean;
  /** The store answered a recent health ping (what /readyz reports: connected is not answering). */
  isHealthy(): boolean;
  /** A round trip: true when the store answered. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
