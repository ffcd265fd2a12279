// The conflict gate's shell: resource rules (version and lease) and Idempotency-Key rules, their store calls side by side.
import { randomBytes, randomUUID } from 'node:crypto';
import type { CompiledConflict, CompiledResource } from '../../config/compile.js';
import type { CompiledIdempotencyRule } from '../../config/sections/conflict.js';
import { BadParam } from '../../config/sections/conflict.js';
import { deny, type Deny, type DenyCode } from '../../core/decision.js';
import type { RequestFacts } from '../../core/forwarded.js';
import { H, UNSAFE } from '../../core/http.js';
import { routeMatches } from '../../core/routes.js';
import { noRule, withMode, type Caller, type RunMode, type Seen, type Step } from '../../core/step.js';
import type { Metrics } from '../../obs/metrics.js';
import { storeErrorCode, type VersionStore } from '../../store/port.js';
import type { BodyRead, BodyStream } from '../idempotency/body.js';
import { checkKey, decideIdempotency, encodeFingerprint, parseIdempotencyKey, type Fingerprint, type RecordOutcome } from '../idempotency/decide.js';
import { IdempotencyRules } from '../idempotency/gate.js';
import { idempotencyScope } from '../idempotency/scope.js';
import { cacheBehind, checkRequirement, decideConflict, parsePreconditions, resourceHeaders, type ConflictPolicy, type LeaseOutcome, type Preconditions, type VersionOutcome } from './decide.js';

export interface ConflictGateOptions {
  conflict: CompiledConflict;
  store: VersionStore;
  metrics: Metrics;
}

/** Who is writing, and (live /auth only) the auth call's body stream for Idempotency-Key fingerprints. */
export interface ConflictContext {
  caller: Caller;
  body?: BodyStream;
  /**
   * The call is /auth traffic, so a store error it meets is counted in the metrics: explain (the
   * CLI, the admin API) is not; an nginx replay that cannot reach the API runs as explain and is
   * traffic all the same.
   */
  traffic: boolean;
}

export interface ConflictCheck {
  /** The Idempotency-Key rule's step, then the resource rule's, each when its rule applied; else one no-rule step. */
  steps: Step[];
  /** A denial (enforced or shadowed) for which conflict.refundRateLimit gives the rate-limit point back. */
  refund: boolean;
}

/** The denials the refund option covers: the client's write was refused, not its request malformed (400, 422) or the store down (503). */
const REFUNDED: ReadonlySet<DenyCode> = new Set<DenyCode>(['precondition_failed', 'stale_client_version', 'write_in_progress', 'precondition_required', 'idempotency_in_flight']);

const ANONYMOUS: Caller = { clientId: null, claims: null };

// Reads are most of the traffic: their answer is one shared, frozen object.
const NOT_A_WRITE: ConflictCheck = Object.freeze({ steps: Object.freeze([noRule('conflict', 'not a write')]) as Step[], refund: false });
const NO_RULE: ConflictCheck = Object.freeze({ steps: Object.freeze([noRule('conflict', 'no resource rule matches')]) as Step[], refund: false });

interface KeyPlan {
  rule: CompiledIdempotencyRule;
  key: string;
  scope: string;
}

interface ResourcePlan {
  resource: CompiledResource;
  key: string;
  pre: Preconditions;
}

interface Recorded {
  fingerprint: Fingerprint;
  outcome: RecordOutcome;
  token: string;
  /** The token of the request holding an existing record. */
  heldBy?: string;
  body: BodyRead;
}

/** The key's record this request holds, and whether it re-armed another's (then a refusal only puts it back out of flight). */
interface Held {
  token: string;
  rearmed: boolean;
}

interface VersionRead {
  version: VersionOutcome;
  lease: LeaseOutcome;
  /** Set when this call took the lease (claim mode, live). */
  token?: string;
}

export class ConflictGate {
  private readonly policy: ConflictPolicy;
  private readonly idem: IdempotencyRules;

  constructor(private readonly opts: ConflictGateOptions) {
    const c = opts.conflict;
    this.policy = { ifMatchStatus: c.ifMatchStatus, unknownResource: c.unknownResource, onStoreError: c.onStoreError };
    this.idem = new IdempotencyRules(c.idempotency, c.idempotencyBody);
  }

  /** conflict.refundRateLimit: the pipeline gives the write's rate-limit point back when `check` says `refund`. */
  get refundsRateLimit(): boolean {
    return this.opts.conflict.refundRateLimit;
  }

  /**
   * The resource a write targets and its key, or null (reads and unconfigured paths are not gated),
   * or a 400 when a path parameter is not of the form its rule declares.
   */
  resourceFor(facts: RequestFacts): { resource: CompiledResource; key: string } | { resource: CompiledResource; bad: Deny } | null {
    if (!UNSAFE.has(facts.method)) return null;
    for (const resource of this.opts.conflict.resources) {
      const params = routeMatches(resource, facts);
      if (params === null) continue;
      const key = resource.key(params);
      if (key instanceof BadParam) {
        return { resource, bad: deny('conflict', 'bad_forward_request', `The path parameter ${key.param} is not ${key.form === 'integer' ? 'an integer' : `a ${key.form}`}.`) };
      }
      return { resource, key };
    }
    return null;
  }

  /**
   * Checks a write: its Idempotency-Key (when a rule applies) and its preconditions against the
   * cached version (when a resource rule applies). `explain` reads the same state and changes
   * nothing: no record, no lease (it reads a body only when given one: the pipeline's replays).
   *
   * Order, and why (worked through in the README, "Idempotency-Key"):
   * 1. What needs no store: the key's form (400), the preconditions' form and presence (400, 428).
   *    A request refused here never records its key.
   * 2. The key's record and the version (and lease) are read at once: two single-key calls on two
   *    slots, sent together, so a gated write still costs one round trip of latency.
   * 3. The key's verdict comes first. A different request with the key is 422 and the same one
   *    still in flight is 409, whatever the version says. A retry of a request that is no longer
   *    in flight passes without the precondition check: the first attempt's write may have moved
   *    the version on, and the retry must reach the upstream, which answers it from what it stored
   *    rather than 412 for the version its own first attempt created.
   * 4. The preconditions of a key's first request. If they refuse it, its record is deleted (and a
   *    lease it took given back): a write refused at the edge never reached the upstream, so the
   *    client may fix it and send it again with the same key.
   */
  check(facts: RequestFacts, mode: RunMode = 'live', ctx: ConflictContext = { caller: ANONYMOUS, traffic: mode === 'live' }): ConflictCheck | Promise<ConflictCheck> {
    // Reads, and writes no rule names, are answered synchronously (no promise, no allocation).
    if (!UNSAFE.has(facts.method)) return NOT_A_WRITE;
    const rule = this.idem.empty ? undefined : this.idem.ruleFor(facts);
    const target = this.resourceFor(facts);
    if (!rule && !target) return NO_RULE;
    return this.checkWrite(facts, mode, ctx, rule, target);
  }

  /**
   * The check of this request reads the store and changes nothing in it (a read, a write checked
   * without a lease and without an Idempotency-Key record, or explain's peek without a key rule):
   * the pipeline may then start it before the rate limit has decided, in the same round trip.
   */
  onlyReads(facts: RequestFacts, mode: RunMode): boolean {
    if (!UNSAFE.has(facts.method)) return true;
    if (this.opts.conflict.claim.enabled && mode === 'live') return false;
    return this.idem.empty || this.idem.ruleFor(facts) === undefined;
  }

  private async checkWrite(facts: RequestFacts, mode: RunMode, ctx: ConflictContext, rule: ReturnType<IdempotencyRules['ruleFor']>, target: ReturnType<ConflictGate['resourceFor']>): Promise<ConflictCheck> {

    // 1. Without the store.
    let idemStep: Step | undefined;
    let plan: KeyPlan | undefined;
    if (rule) {
      const parsed = parseIdempotencyKey(facts.idempotencyKey);
      const bad = checkKey(rule.require, parsed);
      if (bad || parsed.kind !== 'key') {
        const decision = bad ?? { kind: 'allow' as const, headers: { [H.idempotencyKey]: '' } };
        idemStep = withMode('conflict', rule.pattern, rule.mode, decision, { idempotencyKey: parsed.kind === 'malformed' ? 'malformed' : 'none' }, { [H.idempotencyKey]: '' });
        if (idemStep.decision.kind === 'deny') return this.finish([idemStep]);
      } else {
        const owner = ctx.caller.clientId !== null ? { client: ctx.caller.clientId } : { ip: facts.clientIp };
        plan = { rule, key: parsed.key, scope: idempotencyScope(owner, parsed.key) };
      }
    }
    let resStep: Step | undefined;
    let res: ResourcePlan | undefined;
    if (target) {
      const { resource } = target;
      if ('bad' in target) {
        resStep = withMode('conflict', resource.pattern, resource.mode, target.bad, {}, resourceHeaders('', null));
      } else {
        const emptyAllow = resourceHeaders(target.key, null);
        const pre = parsePreconditions(facts);
        if ('kind' in pre) resStep = withMode('conflict', resource.pattern, resource.mode, pre, { key: target.key }, emptyAllow);
        else {
          const required = checkRequirement(resource.require, pre);
          if (required) resStep = withMode('conflict', resource.pattern, resource.mode, required, { key: target.key, require: resource.require }, emptyAllow);
          else res = { resource, key: target.key, pre };
        }
      }
      if (resStep?.decision.kind === 'deny') return this.finish(idemStep ? [idemStep, resStep] : [resStep]);
    }
    if (resStep && plan) {
      // Shadowed, the write goes on, but enforce would have refused it before its key was recorded:
      // the store sees what enforce does, so the key is not recorded.
      idemStep = { gate: 'conflict', rule: plan.rule.pattern, mode: plan.rule.mode, decision: { kind: 'allow', headers: { [H.idempotencyKey]: plan.key } }, seen: { idempotencyKey: plan.key, record: 'not recorded (the resource rule refused the write)' } };
      plan = undefined;
    }

    // 2. The store, both calls at once.
    const [rec, ver] = await Promise.all([plan ? this.record(plan, facts, mode, ctx.traffic, ctx.body) : undefined, res ? this.readVersion(res.key, mode, ctx.traffic) : undefined]);
    const giveLeaseBack = () => {
      if (res && ver?.token !== undefined && ver.lease.kind === 'taken') this.release(res.key, ver.token);
    };

    // 3. The key's verdict.
    let retry = false;
    let mine: Held | undefined;
    if (plan && rec) {
      let verdict = decideIdempotency(rec.fingerprint, rec.outcome, this.policy.onStoreError);
      const headers = { [H.idempotencyKey]: plan.key };
      const seen = keySeen(plan, rec, mode);
      if (verdict.kind === 'expired' && mode === 'live') {
        // Take the key in flight again, so that two such retries never run at once.
        verdict = await this.rearm(plan, rec, seen);
        if (verdict.kind === 'first') mine = { token: rec.token, rearmed: true };
      }
      const decision = verdict.kind === 'deny' ? verdict.deny : { kind: 'allow' as const, headers };
      idemStep = withMode('conflict', plan.rule.pattern, plan.rule.mode, decision, seen, headers);
      if (idemStep.decision.kind === 'deny') {
        giveLeaseBack();
        return this.finish([idemStep]);
      }
      retry = verdict.kind === 'retry';
      if (verdict.kind === 'first' && mode === 'live' && !mine) mine = { token: rec.token, rearmed: false };
    }

    // 4. The preconditions.
    if (res && ver) {
      const { resource, key, pre } = res;
      const seen: Seen = {
        key,
        version: ver.version.kind === 'found' ? ver.version.version : ver.version.kind === 'missing' ? null : 'store unavailable',
        ...(this.opts.conflict.claim.enabled ? { lease: ver.lease.kind === 'held' ? `held ${Math.ceil(ver.lease.remainingMs / 1000)}s` : mode === 'live' ? ver.lease.kind : 'free' } : {}),
      };
      const versionHeaders = resourceHeaders(key, ver.version.kind === 'found' ? ver.version.version : null);
      if (retry) {
        // A retry the upstream answers from what it stored: no precondition, no lease.
        giveLeaseBack();
        resStep = { gate: 'conflict', rule: resource.pattern, mode: resource.mode, decision: { kind: 'allow', headers: versionHeaders }, seen: { ...seen, idempotentRetry: true } };
      } else {
        const decision = decideConflict(key, pre, ver.version, ver.lease, this.policy);
        if (decision.kind === 'deny') {
          // The lease was taken with the read (one round trip); a write refused here gives it back at
          // once, and its key's record too (in shadow also: the store sees what enforce does). The
          // record goes before the answer does: the corrected write may reach another replica at once.
          giveLeaseBack();
          if (mine && plan) await this.abandon(plan.scope, mine.token, mine.rearmed);
        } else if (mode === 'live' && ver.version.kind === 'found' && cacheBehind(pre, ver.version.version)) {
          this.opts.metrics.versionHeal(resource.pattern);
          seen.healed = true;
        }
        resStep = withMode('conflict', resource.pattern, resource.mode, decision, seen, versionHeaders);
      }
    }
    const steps = [idemStep, resStep].filter((s): s is Step => s !== undefined);
    return this.finish(steps);
  }

  /**
   * Whether the refund option applies: a refused write (enforced or shadowed). Denials are counted
   * by rule where every decision is recorded (obs/recorder.ts), and the hottest resource keys from
   * the step's `seen.key` (obs/activity.ts, GET /conflicts/top).
   */
  private finish(steps: Step[]): ConflictCheck {
    let refund = false;
    for (const s of steps) {
      const d = s.decision.kind === 'deny' ? s.decision : s.shadowed;
      if (d && REFUNDED.has(d.code)) refund = true;
    }
    return { steps, refund };
  }

  private async record(plan: KeyPlan, facts: RequestFacts, mode: RunMode, traffic: boolean, body: BodyStream | undefined): Promise<Recorded> {
    const { store, metrics } = this.opts;
    // The body of the call when it has one, in either mode: explain (the CLI, the admin API) has none;
    // a replay the pipeline runs as explain (it cannot reach the API) is fingerprinted as live would.
    const { fingerprint, body: read } = await this.idem.fingerprint(facts, body);
    const token = randomBytes(8).toString('base64url');
    let outcome: RecordOutcome;
    try {
      const r = mode === 'live' ? await store.beginIdempotent(plan.scope, encodeFingerprint(fingerprint), token, plan.rule.inFlightMs, plan.rule.ttlMs) : await store.peekIdempotent(plan.scope).then((rec) => (rec === null ? ({ kind: 'recorded' } as const) : ({ kind: 'exists', record: rec } as const)));
      if (r.kind === 'recorded') return { fingerprint, outcome: r, token, body: read };
      const { fingerprint: theirs, inFlightMs, ended, token: heldBy } = r.record;
      outcome = { kind: 'exists', fingerprint: theirs, inFlightMs, ended };
      return { fingerprint, outcome, token, heldBy, body: read };
    } catch (err) {
      if (traffic) metrics.storeError(store.kind, 'idempotency', storeErrorCode(err));
      outcome = { kind: 'store_error' };
    }
    return { fingerprint, outcome, token, body: read };
  }

  /** An expired, not ended record of this same request: hold it again (`first`), or 409 when another retry just did. */
  private async rearm(plan: KeyPlan, rec: Recorded, seen: Seen): Promise<ReturnType<typeof decideIdempotency>> {
    const { store, metrics } = this.opts;
    try {
      if (await store.rearmIdempotent(plan.scope, rec.heldBy ?? '', rec.token, plan.rule.inFlightMs)) {
        seen.record = 'expired, held again';
        return { kind: 'first' };
      }
      const now = await store.peekIdempotent(plan.scope);
      return decideIdempotency(rec.fingerprint, now === null ? { kind: 'recorded' } : { kind: 'exists', fingerprint: now.fingerprint, inFlightMs: Math.max(now.inFlightMs, 1), ended: now.ended }, this.policy.onStoreError);
    } catch (err) {
      metrics.storeError(store.kind, 'idempotency', storeErrorCode(err));
      return decideIdempotency(rec.fingerprint, { kind: 'store_error' }, this.policy.onStoreError);
    }
  }

  private async readVersion(key: string, mode: RunMode, traffic: boolean): Promise<VersionRead> {
    const { store, metrics } = this.opts;
    const { claim } = this.opts.conflict;
    try {
      if (claim.enabled && mode === 'live') {
        const token = randomUUID();
        const r = await store.claim(key, claim.leaseMs, token);
        return { version: r.version === null ? { kind: 'missing' } : { kind: 'found', version: r.version }, lease: r.claim, token };
      }
      if (claim.enabled) {
        const r = await store.peekClaim(key);
        return { version: r.version === null ? { kind: 'missing' } : { kind: 'found', version: r.version }, lease: r.claim.kind === 'held' ? r.claim : { kind: 'taken' } };
      }
      const v = await store.getVersion(key);
      return { version: v === null ? { kind: 'missing' } : { kind: 'found', version: v }, lease: { kind: 'off' } };
    } catch (err) {
      // A replay runs claim mode's read without taking the lease: peek_claim, not claim.
      if (traffic) metrics.storeError(store.kind, !claim.enabled ? 'get_version' : mode === 'live' ? 'claim' : 'peek_claim', storeErrorCode(err));
      return { version: { kind: 'store_error' }, lease: { kind: 'off' } };
    }
  }

  private release(key: string, token: string): void {
    const { store, metrics } = this.opts;
    store.release(key, token).catch((err: unknown) => metrics.storeError(store.kind, 'release', storeErrorCode(err)));
  }

  private async abandon(scope: string, token: string, keep: boolean): Promise<void> {
    const { store, metrics } = this.opts;
    await store.abandonIdempotent(scope, token, keep).catch((err: unknown) => metrics.storeError(store.kind, 'idempotency_abandon', storeErrorCode(err)));
  }
}

/** What explain and the console show of a key (the key itself is the client's, never a secret). */
function keySeen(plan: KeyPlan, rec: Recorded, mode: RunMode): Seen {
  const o = rec.outcome;
  const record =
    o.kind === 'recorded'
      ? mode === 'live'
        ? 'recorded'
        : 'none'
      : o.kind === 'store_error'
        ? 'store unavailable'
        : o.inFlightMs > 0
          ? `in flight ${Math.ceil(o.inFlightMs / 1000)}s`
          : o.ended
            ? 'ended by the upstream'
            : 'in flight time ran out';
  const body = rec.body.kind === 'hashed' ? `sha-256 of ${rec.body.bytes} bytes` : rec.body.kind === 'none' ? 'not forwarded' : `not used (${rec.body.why})`;
  return { idempotencyKey: plan.key, record, body };
}
