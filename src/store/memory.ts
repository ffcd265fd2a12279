// In-memory store (dev mode, `store.url: memory`, and the tests' fake-clock twin of redis.ts).
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { dropOldest, makeRoom } from '../core/bounded.js';
import { isPublishAllowed } from '../core/versions.js';
import { keyLayout } from './keys.js';
import type { ClaimResult, ClaimView, IdempotencyBegin, IdempotencyEnd, IdempotencyRecord, Limiter, LimiterSpec, LimitResult, PublishResult, StoreHealth, VersionStore } from './port.js';

interface Lease {
  token: string;
  boundTo: string | null;
  untilMs: number;
}

const MAX_KEPT = 10_000;
/** Idempotency records kept at most (the oldest go first): one replica's memory, not a database. */
const MAX_IDEMPOTENT = 100_000;

interface IdemRecord {
  fingerprint: string;
  token: string;
  inFlightUntil: number;
  untilMs: number;
}
const KEYS = keyLayout('');

export class MemoryStore implements VersionStore {
  readonly kind = 'memory' as const;
  private readonly versions = new Map<string, { value: string; untilMs: number }>();
  private readonly leases = new Map<string, Lease>();
  private readonly kept = new Map<string, { value: string; untilMs: number }>();
  private readonly counters = new Map<string, RateLimiterMemory>();
  private readonly idempotent = new Map<string, IdemRecord>();

  constructor(private readonly now: () => number = Date.now) {}

  private current(key: string): string | null {
    const v = this.versions.get(key);
    if (v === undefined) return null;
    if (v.untilMs <= this.now()) {
      this.versions.delete(key);
      return null;
    }
    return v.value;
  }

  private liveLease(key: string, version: string | null): Lease | undefined {
    const lease = this.leases.get(key);
    return lease && lease.untilMs > this.now() && lease.boundTo === version ? lease : undefined;
  }

  async getVersion(key: string): Promise<string | null> {
    return this.current(key);
  }

  async claim(key: string, leaseMs: number, token: string): Promise<ClaimResult> {
    const version = this.current(key);
    const held = this.liveLease(key, version);
    if (held) return { version, claim: { kind: 'held', remainingMs: held.untilMs - this.now() } };
    this.leases.set(key, { token, boundTo: version, untilMs: this.now() + leaseMs });
    return { version, claim: { kind: 'taken' } };
  }

  async peekClaim(key: string): Promise<ClaimView> {
    const version = this.current(key);
    const held = this.liveLease(key, version);
    return { version, claim: held ? { kind: 'held', remainingMs: held.untilMs - this.now() } : { kind: 'free' } };
  }

  async release(key: string, token: string): Promise<void> {
    if (this.leases.get(key)?.token === token) this.leases.delete(key);
  }

  async endClaim(key: string): Promise<void> {
    this.leases.delete(key);
  }

  async publish(key: string, version: string, ttlMs?: number): Promise<PublishResult> {
    const previous = this.current(key);
    if (!isPublishAllowed(version, previous)) return { kind: 'stale', current: previous! };
    this.versions.set(key, { value: version, untilMs: ttlMs === undefined ? Infinity : this.now() + ttlMs });
    this.leases.delete(key);
    return { kind: 'published', previous };
  }

  async remove(key: string): Promise<boolean> {
    this.leases.delete(key);
    const had = this.current(key) !== null;
    this.versions.delete(key);
    return had;
  }

  private idem(scope: string): IdemRecord | undefined {
    const r = this.idempotent.get(scope);
    if (r && r.untilMs <= this.now()) {
      this.idempotent.delete(scope);
      return undefined;
    }
    return r;
  }

  private view(r: IdemRecord): IdempotencyRecord {
    return { fingerprint: r.fingerprint, inFlightMs: Math.max(0, r.inFlightUntil - this.now()), ended: r.inFlightUntil === 0, token: r.token };
  }

  async beginIdempotent(scope: string, fingerprint: string, token: string, inFlightMs: number, ttlMs: number): Promise<IdempotencyBegin> {
    const r = this.idem(scope);
    if (r) return { kind: 'exists', record: this.view(r) };
    // One at a time (a record may be in flight): this store serves dev mode and tests only.
    dropOldest(this.idempotent, this.idempotent.size - MAX_IDEMPOTENT + 1);
    const now = this.now();
    this.idempotent.set(scope, { fingerprint, token, inFlightUntil: now + inFlightMs, untilMs: now + ttlMs });
    return { kind: 'recorded' };
  }

  async peekIdempotent(scope: string): Promise<IdempotencyRecord | null> {
    const r = this.idem(scope);
    return r ? this.view(r) : null;
  }

  async endIdempotent(scope: string, forget = false): Promise<IdempotencyEnd> {
    const r = this.idem(scope);
    if (!r) return 'missing';
    const wasInFlight = r.inFlightUntil > this.now();
    if (forget) this.idempotent.delete(scope);
    else r.inFlightUntil = 0;
    return wasInFlight ? 'ended' : 'already_ended';
  }

  async rearmIdempotent(scope: string, heldBy: string, token: string, inFlightMs: number): Promise<boolean> {
    const r = this.idem(scope);
    if (!r || r.token !== heldBy || r.inFlightUntil === 0 || r.inFlightUntil > this.now()) return false;
    r.token = token;
    r.inFlightUntil = this.now() + inFlightMs;
    return true;
  }

  async abandonIdempotent(scope: string, token: string, keep = false): Promise<void> {
    const r = this.idem(scope);
    if (r?.token !== token) return;
    if (keep) r.inFlightUntil = 1;
    else this.idempotent.delete(scope);
  }

  async remember(id: string, value: string, ttlMs: number): Promise<void> {
    // Bounded: entries are inserted in time order, so the oldest go first (expired or not).
    this.kept.delete(id);
    makeRoom(this.kept, MAX_KEPT);
    this.kept.set(id, { value, untilMs: this.now() + ttlMs });
  }

  async recall(id: string): Promise<string | null> {
    const hit = this.kept.get(id);
    if (!hit) return null;
    if (hit.untilMs <= this.now()) {
      this.kept.delete(id);
      return null;
    }
    return hit.value;
  }

  /**
   * One count per (rule, window), whatever the limit, as in Redis where the count is a key: a
   * reloaded config, or a client whose plan changes its limit, carries the count on. So the counter
   * is a rate-limiter-flexible memory limiter that never refuses, and the limit is applied here.
   */
  limiter(spec: LimiterSpec): Limiter {
    const id = `${spec.rule}\0${spec.durationS}`;
    let counter = this.counters.get(id);
    if (!counter) {
      counter = new RateLimiterMemory({ keyPrefix: KEYS.rateLimit(spec.rule), points: Number.MAX_SAFE_INTEGER, duration: spec.durationS });
      this.counters.set(id, counter);
    }
    const rlf = counter;
    const verdict = (consumed: number, resetMs: number): LimitResult =>
      consumed > spec.points ? { kind: 'limited', resetMs } : { kind: 'allowed', remaining: spec.points - consumed, resetMs };
    return {
      consume: async (client) => {
        const r = await rlf.consume(client, 1);
        return verdict(r.consumedPoints, r.msBeforeNext);
      },
      peek: async (client) => {
        const r = await rlf.get(client);
        return r === null ? verdict(1, spec.durationS * 1000) : verdict(r.consumedPoints + 1, r.msBeforeNext);
      },
      refund: async (client) => {
        await rlf.reward(client, 1);
      },
    };
  }

  available(): boolean {
    return true;
  }

  health(): StoreHealth {
    return { up: true };
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}
