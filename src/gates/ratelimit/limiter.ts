// The rate-limit gate's shell: picks the rule, consumes a point in the store, falls back on outage.
import type { CompiledRateRule } from '../../config/compile.js';
import { routeMatches } from '../../core/routes.js';
import type { Decision } from '../../core/decision.js';
import type { RequestFacts } from '../../core/forwarded.js';
import { ipBucket } from '../../core/ip.js';
import type { Metrics } from '../../obs/metrics.js';
import { MemoryStore } from '../../store/memory.js';
import { storeErrorCode, type Limiter, type LimitResult, type VersionStore } from '../../store/port.js';
import type { Claims } from '../auth/decide.js';
import { decideRateLimit, type LimitOutcome, type RulePolicy } from './decide.js';

/** Who is asking: a verified client, or an anonymous caller on a public route. */
export interface Caller {
  clientId: string | null;
  claims: Claims | null;
}

interface Limiters {
  primary: Limiter;
  /** Per-replica limiter with the same rule, used while the store fails (`onStoreError: memory`). */
  insurance: Limiter | null;
}

export interface RateLimitGateOptions {
  rules: readonly CompiledRateRule[];
  onStoreError: 'memory' | 'allow' | 'deny';
  /** IP-keyed buckets group IPv6 clients by this prefix (core/ip.ts). */
  ipv6Subnet: number;
  store: VersionStore;
  metrics: Metrics;
}

export class RateLimitGate {
  private readonly limiters = new Map<string, Limiters>();
  private readonly policies = new Map<string, RulePolicy>();
  /** Where the insurance limiters live: this replica's memory. */
  private readonly local = new MemoryStore();

  constructor(private readonly opts: RateLimitGateOptions) {
    for (const rule of opts.rules) this.policies.set(rule.name, { name: rule.name, windowS: rule.windowS, onStoreError: opts.onStoreError });
  }

  /** The first rule that matches the request, or undefined (then nothing is limited). */
  ruleFor(facts: RequestFacts): CompiledRateRule | undefined {
    for (const rule of this.opts.rules) if (routeMatches(rule, facts) !== null) return rule;
    return undefined;
  }

  /** Consumes one point of the matching rule for this caller; null when no rule applies. */
  async check(facts: RequestFacts, caller: Caller): Promise<Decision | null> {
    const rule = this.ruleFor(facts);
    if (!rule) return null;
    const outcome = await this.consume(rule, limitFor(rule, caller.claims), clientKey(rule, facts, caller, this.opts.ipv6Subnet));
    this.opts.metrics.rateLimitOutcome(rule.name, outcome.kind);
    return decideRateLimit(this.policies.get(rule.name)!, outcome);
  }

  private limitersFor(rule: CompiledRateRule, limit: number): Limiters {
    // One bucket per client and rule whatever its limit: a client whose plan changes keeps its count.
    const id = `${rule.name}\0${limit}`;
    let l = this.limiters.get(id);
    if (!l) {
      const spec = { rule: rule.name, points: limit, durationS: rule.windowS };
      l = {
        primary: this.opts.store.limiter(spec),
        insurance: this.opts.store.kind !== 'memory' && this.opts.onStoreError === 'memory' ? this.local.limiter(spec) : null,
      };
      this.limiters.set(id, l);
    }
    return l;
  }

  private async consume(rule: CompiledRateRule, limit: number, key: string): Promise<LimitOutcome> {
    const l = this.limitersFor(rule, limit);
    const { store, metrics } = this.opts;
    try {
      return outcomeOf(await l.primary.consume(key), limit, false);
    } catch (err) {
      metrics.storeError(store.kind, 'ratelimit', storeErrorCode(err));
      if (!l.insurance) return { kind: 'store_error' };
      metrics.insuranceUsed(rule.name);
      return outcomeOf(await l.insurance.consume(key), limit, true);
    }
  }
}

function outcomeOf(r: LimitResult, limit: number, degraded: boolean): LimitOutcome {
  return r.kind === 'allowed' ? { kind: 'allowed', limit, remaining: r.remaining, resetMs: r.resetMs, degraded } : { kind: 'limited', limit, resetMs: r.resetMs, degraded };
}

/** The effective limit: the first override whose claim has the given value, else the rule's. */
export function limitFor(rule: CompiledRateRule, claims: Claims | null): number {
  if (claims) {
    for (const o of rule.overrides) {
      const v = claims[o.claim];
      if ((typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') && String(v) === o.value) return o.limit;
    }
  }
  return rule.limit;
}

/**
 * The bucket a request counts against. Namespaced so a `sub` that looks like an IP never shares
 * a bucket with that IP: `c:<client>`, `ip:<address or IPv6 network>`, `claim:<name>=<value>`. A claim-keyed rule
 * falls back to the client (or IP) when the token lacks that claim.
 */
export function clientKey(rule: CompiledRateRule, facts: RequestFacts, caller: Caller, v6Prefix: number): string {
  if (rule.by.kind === 'claim' && caller.claims) {
    const v = caller.claims[rule.by.claim];
    if (typeof v === 'string' || typeof v === 'number') return `claim:${rule.by.claim}=${v}`;
  }
  if (rule.by.kind === 'ip' || caller.clientId === null) return `ip:${ipBucket(facts.clientIp, v6Prefix)}`;
  return `c:${caller.clientId}`;
}
