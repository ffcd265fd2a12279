// The rate-limit gate's shell: picks the rule, takes (or, to explain, peeks at) a point, falls back on outage.
import type { CompiledRateRule } from '../../config/compile.js';
import { makeRoom } from '../../core/bounded.js';
import type { RequestFacts } from '../../core/forwarded.js';
import { ipBucket } from '../../core/ip.js';
import { routeMatches } from '../../core/routes.js';
import { noRule, withMode, type Caller, type RunMode, type Seen, type Step } from '../../core/step.js';
import type { Metrics } from '../../obs/metrics.js';
import { MemoryStore } from '../../store/memory.js';
import { storeErrorCode, type Limiter, type LimitResult, type VersionStore } from '../../store/port.js';
import { decideRateLimit, rateLimitHeaders, type LimitOutcome, type RulePolicy } from './decide.js';

export type { Caller };

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
  now?: () => number;
}

/** The last shared count this replica saw for a bucket: where the insurance limiter starts from. */
interface LastSeen {
  remaining: number;
  resetAt: number;
}

/**
 * What this replica remembers of one rule for the store's outages: the insurance limiter's counts
 * and the last shared count per bucket (a client at 0 stays limited). It lives in memory only, so a
 * reload hands it on to the new gate, or the limits of a Redis outage would start afresh at every
 * SIGHUP; only for a rule with the same name, limit (claim overrides included) and window: the
 * counts of a rule that changed were taken against another budget, so it starts afresh (README,
 * "Reload without a restart"). The shared counts in the store carry on whatever changed.
 */
interface RuleMemory {
  /** What the rule was when this memory started: `identity(rule)`. */
  identity: string;
  /** Where the rule's insurance limiter counts: this replica's memory. */
  local: MemoryStore;
  /** By bucket (a map per rule: no `rule + key` string to build and hash per request). */
  lastSeen: Map<string, LastSeen>;
}

/** The parts of a rule its in-memory counts depend on: a rule that differs in any starts afresh. */
function identity(rule: CompiledRateRule): string {
  return JSON.stringify([rule.name, rule.limit, rule.windowS, rule.overrides]);
}

/** How many buckets' last shared counts are remembered across rules (oldest forgotten first). */
const LAST_SEEN_MAX = 50_000;

/** The seen of a live allow from the store (explain builds the full one). */
const LIVE: Seen = Object.freeze({});
const DEGRADED: Seen = Object.freeze({ degraded: true });

/** A point that was taken, so that it can be given back (conflict.refundRateLimit). */
export interface Taken {
  limiter: Limiter;
  key: string;
}

export class RateLimitGate {
  private readonly limiters = new Map<CompiledRateRule, Map<number, Limiters>>();
  private readonly policies = new Map<string, RulePolicy>();
  /** Per rule: its insurance counts and last shared counts (taken over from `previous` when unchanged). */
  private readonly memory = new Map<CompiledRateRule, RuleMemory>();
  /** LAST_SEEN_MAX shared out between the rules. */
  private readonly lastSeenMax: number;
  private readonly now: () => number;

  /**
   * `previous`: the gate of the config this one replaces (a reload). Each of its rules' in-memory
   * state that is still the same rule carries on here (see `RuleMemory`); the gate itself is not
   * kept, so generations do not chain up in memory.
   */
  constructor(private readonly opts: RateLimitGateOptions, previous?: RateLimitGate) {
    this.now = opts.now ?? Date.now;
    for (const rule of opts.rules) {
      this.policies.set(rule.name, { name: rule.name, windowS: rule.windowS, onStoreError: opts.onStoreError });
      const id = identity(rule);
      this.memory.set(rule, previous?.memoryOf(id) ?? { identity: id, local: new MemoryStore(), lastSeen: new Map() });
    }
    this.lastSeenMax = Math.ceil(LAST_SEEN_MAX / Math.max(1, opts.rules.length));
  }

  /** The in-memory state of the rule `id` describes, if this gate has that very rule (a reload asks). */
  private memoryOf(id: string): RuleMemory | undefined {
    for (const m of this.memory.values()) if (m.identity === id) return m;
    return undefined;
  }

  /** The first rule that matches the request, or undefined (then nothing is limited). */
  ruleFor(facts: RequestFacts): CompiledRateRule | undefined {
    for (const rule of this.opts.rules) if (routeMatches(rule, facts) !== null) return rule;
    return undefined;
  }

  /**
   * Takes one point of the matching rule for this caller (`explain`: reads what taking it would
   * answer, and takes nothing). `taken` is set when a point was taken in the store.
   *
   * Not async: the store's answer is read by one `.then` (no suspended frame or promise of its own
   * per decision, the gate's hottest round trip).
   */
  check(facts: RequestFacts, caller: Caller, mode: RunMode = 'live'): Promise<{ step: Step; taken?: Taken }> {
    const rule = this.ruleFor(facts);
    if (!rule) return Promise.resolve({ step: noRule('ratelimit', 'no rate-limit rule matches') });
    const limit = limitFor(rule, caller.claims);
    const key = clientKey(rule, facts, caller, this.opts.ipv6Subnet);
    const l = this.limitersFor(rule, limit);
    const asked = mode === 'explain' ? l.primary.peek(key) : l.primary.consume(key);
    return asked.then(
      (r) => {
        if (mode === 'live') this.remember(rule, key, r);
        return { step: this.stepOf(rule, key, limit, outcomeOf(r, limit, false), mode), taken: mode === 'live' && r.kind === 'allowed' ? { limiter: l.primary, key } : undefined };
      },
      (err: unknown) => this.failed(rule, l, limit, key, mode, err).then((outcome) => ({ step: this.stepOf(rule, key, limit, outcome, mode) })),
    );
  }

  /** The step for the limiter's outcome. */
  private stepOf(rule: CompiledRateRule, key: string, limit: number, outcome: LimitOutcome, mode: RunMode): Step {
    // Counted by the recorder once the request's answer is known (obs/recorder.ts): an allowed point
    // whose write the conflict gate then refused is not an "allowed" request.
    const decision = decideRateLimit(this.policies.get(rule.name)!, outcome);
    // What the trace shows: built for explain, and for a store error (the recorder reads it); a live
    // answer from the store needs none (steady traffic allocates nothing here).
    if (mode === 'live' && outcome.kind !== 'store_error' && decision.kind === 'allow' && rule.mode === 'enforce') {
      return { gate: 'ratelimit', rule: rule.name, mode: 'enforce', decision, seen: outcome.degraded ? DEGRADED : LIVE };
    }
    const seen = {
      bucket: key,
      limit,
      windowS: rule.windowS,
      ...(outcome.kind === 'allowed' ? { remaining: outcome.remaining, resetS: Math.ceil(outcome.resetMs / 1000) } : {}),
      ...(outcome.kind === 'limited' ? { remaining: 0, resetS: Math.ceil(outcome.resetMs / 1000) } : {}),
      ...(outcome.kind === 'store_error' ? { store: 'unavailable', onStoreError: this.opts.onStoreError } : {}),
      ...(outcome.kind !== 'store_error' && outcome.degraded ? { degraded: true } : {}),
    };
    const shadowHeaders = outcome.kind === 'limited' ? rateLimitHeaders(this.policies.get(rule.name)!, limit, 0, outcome.resetMs) : {};
    return withMode('ratelimit', rule.name, rule.mode, decision, seen, shadowHeaders);
  }

  /** Gives a taken point back (the write was refused later, by the conflict gate). */
  async refund(t: Taken): Promise<void> {
    try {
      await t.limiter.refund(t.key);
    } catch (err) {
      this.opts.metrics.storeError(this.opts.store.kind, 'ratelimit_refund', storeErrorCode(err));
    }
  }

  private limitersFor(rule: CompiledRateRule, limit: number): Limiters {
    // One bucket per client and rule whatever its limit: a client whose plan changes keeps its count.
    let byLimit = this.limiters.get(rule);
    if (!byLimit) this.limiters.set(rule, (byLimit = new Map()));
    let l = byLimit.get(limit);
    if (!l) {
      const spec = { rule: rule.name, points: limit, durationS: rule.windowS };
      l = {
        primary: this.opts.store.limiter(spec),
        insurance: this.opts.store.kind !== 'memory' && this.opts.onStoreError === 'memory' ? this.memory.get(rule)!.local.limiter(spec) : null,
      };
      byLimit.set(limit, l);
    }
    return l;
  }

  /** The store failed to answer: the fail mode (the insurance limiter, or a store error for decide). */
  private async failed(rule: CompiledRateRule, l: Limiters, limit: number, key: string, mode: RunMode, err: unknown): Promise<LimitOutcome> {
    const { store, metrics } = this.opts;
    if (mode === 'live') metrics.storeError(store.kind, 'ratelimit', storeErrorCode(err));
    if (!l.insurance) return { kind: 'store_error' };
    if (mode === 'live') metrics.insuranceUsed(rule.name);
    return this.insured(rule, l.insurance, limit, key, mode);
  }

  private remember(rule: CompiledRateRule, key: string, r: LimitResult): void {
    const seen = this.memory.get(rule)!.lastSeen;
    const remaining = r.kind === 'allowed' ? r.remaining : 0;
    const resetAt = this.now() + r.resetMs;
    const known = seen.get(key);
    if (known) {
      // Updated in place: the bound forgets the buckets first seen longest ago, which is close
      // enough to least recently seen for a fallback, and costs no re-insertion per request.
      known.remaining = remaining;
      known.resetAt = resetAt;
      return;
    }
    // Full, it forgets the 1/64 of its buckets first seen longest ago at once (~390 each for two
    // rules): during an outage those clients start a fresh in-memory budget, as a bucket never seen would.
    makeRoom(seen, this.lastSeenMax);
    seen.set(key, { remaining, resetAt });
  }

  /**
   * While the store is down, a bucket this replica saw in the current window carries on from the
   * shared count it last saw (a client over its limit stays over; one with 3 left gets 3), and only
   * a bucket it never saw, or whose window has ended, starts afresh in memory. So one replica never
   * grants more in a window than the shared budget it last saw; across N replicas the overshoot is
   * at most (N-1) times that remaining budget (README, "Fail modes").
   */
  private async insured(rule: CompiledRateRule, insurance: Limiter, limit: number, key: string, mode: RunMode): Promise<LimitOutcome> {
    const seen = this.memory.get(rule)?.lastSeen.get(key);
    const now = this.now();
    if (seen && now < seen.resetAt) {
      const resetMs = seen.resetAt - now;
      if (seen.remaining <= 0) return { kind: 'limited', limit, resetMs, degraded: true };
      if (mode === 'live') seen.remaining--;
      return { kind: 'allowed', limit, remaining: mode === 'live' ? seen.remaining : seen.remaining - 1, resetMs, degraded: true };
    }
    return outcomeOf(mode === 'explain' ? await insurance.peek(key) : await insurance.consume(key), limit, true);
  }
}

function outcomeOf(r: LimitResult, limit: number, degraded: boolean): LimitOutcome {
  return r.kind === 'allowed' ? { kind: 'allowed', limit, remaining: r.remaining, resetMs: r.resetMs, degraded } : { kind: 'limited', limit, resetMs: r.resetMs, degraded };
}

/** The effective limit: the first override whose claim has the given value, else the rule's. */
export function limitFor(rule: CompiledRateRule, claims: Caller['claims']): number {
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
