// The conflict gate's shell: finds the resource rule, reads the version (and lease) in one round trip.
import { randomUUID } from 'node:crypto';
import type { CompiledResource } from '../../config/compile.js';
import { BadParam } from '../../config/sections/conflict.js';
import { deny, type Deny } from '../../core/decision.js';
import type { RequestFacts } from '../../core/forwarded.js';
import { H, UNSAFE } from '../../core/http.js';
import { routeMatches } from '../../core/routes.js';
import { noRule, withMode, type RunMode, type Step } from '../../core/step.js';
import type { Metrics } from '../../obs/metrics.js';
import { storeErrorCode, type VersionStore } from '../../store/port.js';
import { checkRequirement, decideConflict, parsePreconditions, type ConflictPolicy, type LeaseOutcome, type VersionOutcome } from './decide.js';

export interface ConflictGateOptions {
  resources: readonly CompiledResource[];
  policy: ConflictPolicy;
  claim: { enabled: boolean; leaseMs: number };
  store: VersionStore;
  metrics: Metrics;
}

export class ConflictGate {
  constructor(private readonly opts: ConflictGateOptions) {}

  /**
   * The resource a write targets and its key, or null (reads and unconfigured paths are not gated),
   * or a 400 when a path parameter is not of the form its rule declares.
   */
  resourceFor(facts: RequestFacts): { resource: CompiledResource; key: string } | { resource: CompiledResource; bad: Deny } | null {
    if (!UNSAFE.has(facts.method)) return null;
    for (const resource of this.opts.resources) {
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

  /** Checks a write's preconditions against the cached version (`explain`: takes no lease). */
  async check(facts: RequestFacts, mode: RunMode = 'live'): Promise<Step> {
    const target = this.resourceFor(facts);
    if (!target) return noRule('conflict', UNSAFE.has(facts.method) ? 'no resource rule matches' : 'not a write');
    const { resource } = target;
    if ('bad' in target) return withMode('conflict', resource.pattern, resource.mode, target.bad, {}, { [H.resourceKey]: '', [H.resourceVersion]: '' });
    const { key } = target;
    const emptyAllow = { [H.resourceKey]: key, [H.resourceVersion]: '' };
    const pre = parsePreconditions(facts);
    if ('kind' in pre) return withMode('conflict', resource.pattern, resource.mode, pre, { key }, emptyAllow);
    const required = checkRequirement(resource.require, pre);
    if (required) return withMode('conflict', resource.pattern, resource.mode, required, { key, require: resource.require }, emptyAllow);

    const { store, claim } = this.opts;
    let version: VersionOutcome;
    let lease: LeaseOutcome = { kind: 'off' };
    let token: string | undefined;
    try {
      if (claim.enabled && mode === 'live') {
        token = randomUUID();
        const r = await store.claim(key, claim.leaseMs, token);
        version = r.version === null ? { kind: 'missing' } : { kind: 'found', version: r.version };
        lease = r.claim;
      } else if (claim.enabled) {
        const r = await store.peekClaim(key);
        version = r.version === null ? { kind: 'missing' } : { kind: 'found', version: r.version };
        lease = r.claim.kind === 'held' ? r.claim : { kind: 'taken' };
      } else {
        const v = await store.getVersion(key);
        version = v === null ? { kind: 'missing' } : { kind: 'found', version: v };
      }
    } catch (err) {
      if (mode === 'live') this.opts.metrics.storeError(store.kind, claim.enabled ? 'claim' : 'get_version', storeErrorCode(err));
      version = { kind: 'store_error' };
    }
    const decision = decideConflict(key, pre, version, lease, this.opts.policy);
    if (decision.kind === 'deny' && lease.kind === 'taken' && token !== undefined) {
      // The lease was taken with the read (one round trip); a write that fails its
      // preconditions gives it back at once (in shadow too: the store sees what enforce does).
      store.release(key, token).catch((err: unknown) => this.opts.metrics.storeError(store.kind, 'release', storeErrorCode(err)));
    }
    const seen = {
      key,
      version: version.kind === 'found' ? version.version : version.kind === 'missing' ? null : 'store unavailable',
      ...(claim.enabled ? { lease: lease.kind === 'held' ? `held ${Math.ceil(lease.remainingMs / 1000)}s` : mode === 'live' ? lease.kind : 'free' } : {}),
    };
    const shadowHeaders = { [H.resourceKey]: key, [H.resourceVersion]: version.kind === 'found' ? version.version : '' };
    return withMode('conflict', resource.pattern, resource.mode, decision, seen, shadowHeaders);
  }
}
