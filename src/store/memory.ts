// In-memory store (dev mode, `store.url: memory`, and the tests' fake-clock twin of redis.ts).
import { RateLimiterMemory, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { isPublishAllowed } from '../core/versions.js';
import type { ClaimResult, LimiterSpec, PublishResult, VersionStore } from './port.js';

interface Lease {
  token: string;
  boundTo: string | null;
  untilMs: number;
}

const MAX_KEPT = 10_000;

export class MemoryStore implements VersionStore {
  readonly kind = 'memory' as const;
  private readonly versions = new Map<string, string>();
  private readonly leases = new Map<string, Lease>();
  private readonly kept = new Map<string, { value: string; untilMs: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async getVersion(key: string): Promise<string | null> {
    return this.versions.get(key) ?? null;
  }

  async claim(key: string, leaseMs: number, token: string): Promise<ClaimResult> {
    const version = this.versions.get(key) ?? null;
    const lease = this.leases.get(key);
    const now = this.now();
    if (lease && lease.untilMs > now && lease.boundTo === version) {
      return { version, claim: { kind: 'held', remainingMs: lease.untilMs - now } };
    }
    this.leases.set(key, { token, boundTo: version, untilMs: now + leaseMs });
    return { version, claim: { kind: 'taken' } };
  }

  async release(key: string, token: string): Promise<void> {
    if (this.leases.get(key)?.token === token) this.leases.delete(key);
  }

  async endClaim(key: string): Promise<void> {
    this.leases.delete(key);
  }

  async publish(key: string, version: string): Promise<PublishResult> {
    const previous = this.versions.get(key) ?? null;
    if (!isPublishAllowed(version, previous)) return { kind: 'stale', current: previous! };
    this.versions.set(key, version);
    this.leases.delete(key);
    return { kind: 'published', previous };
  }

  async remove(key: string): Promise<boolean> {
    this.leases.delete(key);
    return this.versions.delete(key);
  }

  async remember(id: string, value: string, ttlMs: number): Promise<void> {
    // Bounded: entries are inserted in time order, so the oldest go first (expired or not).
    while (this.kept.size >= MAX_KEPT) {
      const oldest = this.kept.keys().next().value;
      if (oldest === undefined) break;
      this.kept.delete(oldest);
    }
    this.kept.delete(id);
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

  rateLimiter(spec: LimiterSpec): RateLimiterAbstract {
    return new RateLimiterMemory({ keyPrefix: spec.keyPrefix, points: spec.points, duration: spec.durationS });
  }

  isReady(): boolean {
    return true;
  }

  isHealthy(): boolean {
    return true;
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}
