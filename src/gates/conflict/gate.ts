// The conflict gate's shell: finds the resource rule, reads the version (and lease) in one round trip.
import { randomUUID } from 'node:crypto';
import type { CompiledResource } from '../../config/compile.js';
import { UNSAFE } from '../../core/http.js';
import { routeMatches } from '../../core/routes.js';
import { BadParam } from '../../config/sections/conflict.js';
import { deny, type Decision, type Deny } from '../../core/decision.js';
import type { RequestFacts } from '../../core/forwarded.js';
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
  resourceFor(facts: RequestFacts): { resource: CompiledResource; key: string } | Deny | null {
    if (!UNSAFE.has(facts.method)) return null;
    for (const resource of this.opts.resources) {
      const params = routeMatches(resource, facts);
      if (params === null) continue;
      const key = resource.key(params);
      if (key instanceof BadParam) return deny('conflict', 'bad_forward_request', `The path parameter ${key.param} is not ${key.form === 'integer' ? 'an integer' : `a ${key.form}`}.`);
      return { resource, key };
    }
    return null;
  }

  /** Null when the request is not a gated write. */
  async check(facts: RequestFacts): Promise<Decision | null> {
    const target = this.resourceFor(facts);
    if (!target || 'kind' in target) return target;
    const pre = parsePreconditions(facts);
    if ('kind' in pre) return pre;
    const required = checkRequirement(target.resource.require, pre);
    if (required) return required;

    const { store, claim } = this.opts;
    let version: VersionOutcome;
    let lease: LeaseOutcome = { kind: 'off' };
    let token: string | undefined;
    try {
      if (claim.enabled) {
        token = randomUUID();
        const r = await store.claim(target.key, claim.leaseMs, token);
        version = r.version === null ? { kind: 'missing' } : { kind: 'found', version: r.version };
        lease = r.claim;
      } else {
        const v = await store.getVersion(target.key);
        version = v === null ? { kind: 'missing' } : { kind: 'found', version: v };
      }
    } catch (err) {
      this.opts.metrics.storeError(store.kind, claim.enabled ? 'claim' : 'get_version', storeErrorCode(err));
      version = { kind: 'store_error' };
    }
    const decision = decideConflict(target.key, pre, version, lease, this.opts.policy);
    if (decision.kind === 'deny' && lease.kind === 'taken' && token !== undefined) {
      // The lease was taken with the read (one round trip); a write that fails its
      // preconditions gives it back at once.
      store.release(target.key, token).catch((err: unknown) => this.opts.metrics.storeError(store.kind, 'release', storeErrorCode(err)));
    }
    return decision;
  }
}
