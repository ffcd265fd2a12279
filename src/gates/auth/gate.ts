// The auth gate's shell: public routes, bearer extraction, verification, scope rules (enforced or shadowed).
import type { CompiledAuth, ScopeRule } from '../../config/compile.js';
import type { RequestFacts } from '../../core/forwarded.js';
import { routeMatches } from '../../core/routes.js';
import { withMode, type Caller, type Seen, type Step } from '../../core/step.js';
import { anonymousHeaders, bearerToken, clientIdOf, decideAuth, missingToken, scopesOf, type AuthPolicy, type Claims, type VerifyOutcome } from './decide.js';
import type { TokenVerifier } from './verify.js';

const ANONYMOUS: Caller = Object.freeze({ clientId: null, claims: null });

export interface AuthCheck {
  step: Step;
  caller: Caller;
}

/** The scope rules that apply to one request, by mode (rules add up; none is skipped). */
interface ScopeSet {
  enforced: string[];
  shadowed: string[];
  /** The matched rules as the trace names them (`PUT /api/orders/*; DELETE /api/*`), or null. */
  label: string | null;
}

/** Most scope rules whose matches are told apart by a bit mask (beyond, the memo is not used). */
const MASK_RULES = 30;

export class AuthGate {
  readonly policy: AuthPolicy;
  private readonly anonymous: Record<string, string>;
  /** Scope sets by the mask of the rules that matched: a handful of distinct ones per config. */
  private readonly scopeSets = new Map<number, ScopeSet>();
  /**
   * The answer for a verified token on a given scope set. The verifier hands out one claims object
   * per cached token, so steady traffic decides each (token, rule set) once: no scope parsing, no
   * header encoding, no allocation per request. Entries go with their claims object (a token
   * leaving the verifier's cache, or a key-set change that empties it).
   */
  private readonly decided = new WeakMap<Claims, Map<number, AuthCheck>>();

  constructor(
    private readonly cfg: CompiledAuth,
    private readonly verifier: TokenVerifier,
  ) {
    this.policy = { realm: 'conflict-gate', clientIdClaim: cfg.clientIdClaim, forwardClaims: cfg.forwardClaims };
    // Shared by every request that uses them: read, never written (the pipeline copies headers).
    this.anonymous = Object.freeze(anonymousHeaders(this.policy));
  }

  /** The public route this request is on, if any. */
  publicRoute(facts: RequestFacts): string | null {
    for (const r of this.cfg.publicRoutes) if (routeMatches(r, facts) !== null) return r.label;
    return null;
  }

  /** Which scope rules match, as a bit mask (-1 when there are too many rules for one). */
  private mask(facts: RequestFacts): number {
    const rules = this.cfg.requireScopes;
    if (rules.length > MASK_RULES) return -1;
    let m = 0;
    for (let i = 0; i < rules.length; i++) if (routeMatches(rules[i]!, facts) !== null) m |= 1 << i;
    return m;
  }

  private scopeSet(mask: number, facts: RequestFacts): ScopeSet {
    const known = mask >= 0 ? this.scopeSets.get(mask) : undefined;
    if (known) return known;
    const enforced: string[] = [];
    const shadowed: string[] = [];
    const rules: ScopeRule[] = [];
    for (const r of this.cfg.requireScopes) {
      if (routeMatches(r, facts) === null) continue;
      rules.push(r);
      const into = r.mode === 'shadow' ? shadowed : enforced;
      for (const s of r.scopes) if (!into.includes(s)) into.push(s);
    }
    const set = { enforced, shadowed, label: rules.map((r) => r.label).join('; ') || null };
    if (mask >= 0) this.scopeSets.set(mask, set);
    return set;
  }

  /**
   * Token validity is never shadowed: a missing or invalid token is always refused. A scope rule in
   * `mode: shadow` only reports what it would refuse; enforced rules still refuse. A token verified
   * before is answered synchronously.
   */
  check(facts: RequestFacts): AuthCheck | Promise<AuthCheck> {
    // A public route skips auth entirely: a token there is not even looked at.
    const pub = this.publicRoute(facts);
    if (pub !== null) {
      return { step: { gate: 'auth', rule: pub, mode: 'enforce', decision: { kind: 'allow', headers: this.anonymous }, seen: { public: true } }, caller: ANONYMOUS };
    }
    const authorization = facts.authorization;
    // The common spelling first: a cache hit is an exact match of a token that verified, so its
    // syntax needs no second look.
    if (authorization !== undefined && authorization.startsWith('Bearer ')) {
      const claims = this.verifier.cached(authorization.slice(7));
      if (claims !== undefined) {
        const mask = this.mask(facts);
        const memo = mask >= 0 ? this.decided.get(claims)?.get(mask) : undefined;
        if (memo) return memo;
        const result = this.decide({ kind: 'valid', claims }, this.scopeSet(mask, facts));
        if (mask >= 0) {
          if (result.step.decision.kind === 'allow') Object.freeze(result.step.decision.headers);
          let byMask = this.decided.get(claims);
          if (!byMask) this.decided.set(claims, (byMask = new Map()));
          byMask.set(mask, result);
        }
        return result;
      }
    }
    const token = bearerToken(authorization);
    if (token === null) return { step: { gate: 'auth', rule: null, mode: 'enforce', decision: missingToken(this.policy), seen: { token: 'absent' } }, caller: ANONYMOUS };
    return this.verifier.verify(token).then((outcome) => this.decide(outcome, this.scopeSet(this.mask(facts), facts)));
  }

  private decide(outcome: VerifyOutcome, scopes: ScopeSet): AuthCheck {
    const rule = scopes.label;
    const enforced = decideAuth(outcome, scopes.enforced, this.policy);
    if (enforced.kind === 'deny') {
      if (outcome.kind !== 'valid') return { step: { gate: 'auth', rule, mode: 'enforce', decision: enforced, seen: { token: 'invalid' } }, caller: ANONYMOUS };
      // A valid token without a required scope: the caller is known (logs and the console name it).
      const caller: Caller = { clientId: clientIdOf(outcome.claims, this.policy), claims: outcome.claims };
      const seen: Seen = { token: 'valid', client: caller.clientId, scopes: scopesOf(outcome.claims).join(' '), required: scopes.enforced.join(' ') };
      return { step: { gate: 'auth', rule, mode: 'enforce', decision: enforced, seen }, caller };
    }
    const caller: Caller = { clientId: enforced.identity.clientId, claims: enforced.identity.claims };
    const seen = { token: 'valid', client: caller.clientId, scopes: scopesOf(enforced.identity.claims).join(' '), required: [...scopes.enforced, ...scopes.shadowed].join(' ') };
    if (scopes.shadowed.length === 0) return { step: { gate: 'auth', rule, mode: 'enforce', decision: { kind: 'allow', headers: enforced.headers }, seen }, caller };
    const all = decideAuth(outcome, [...scopes.enforced, ...scopes.shadowed], this.policy);
    return { step: withMode('auth', rule ?? '', 'shadow', all, seen, enforced.headers), caller };
  }
}
