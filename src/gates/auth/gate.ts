// The auth gate's shell: public routes, bearer extraction, verification, scope rules (enforced or shadowed).
import type { CompiledAuth, ScopeRule } from '../../config/compile.js';
import type { RequestFacts } from '../../core/forwarded.js';
import { routeMatches } from '../../core/routes.js';
import { withMode, type Caller, type Seen, type Step } from '../../core/step.js';
import { anonymousHeaders, bearerToken, decideAuth, missingToken, scopesOf, type AuthPolicy } from './decide.js';
import type { TokenVerifier } from './verify.js';

const ANONYMOUS: Caller = Object.freeze({ clientId: null, claims: null });

export class AuthGate {
  readonly policy: AuthPolicy;
  private readonly anonymous: Record<string, string>;

  constructor(
    private readonly cfg: CompiledAuth,
    private readonly verifier: TokenVerifier,
  ) {
    this.policy = { realm: 'conflict-gate', clientIdClaim: cfg.clientIdClaim, forwardClaims: cfg.forwardClaims };
    this.anonymous = anonymousHeaders(this.policy);
  }

  /** The public route this request is on, if any. */
  publicRoute(facts: RequestFacts): string | null {
    for (const r of this.cfg.publicRoutes) if (routeMatches(r, facts) !== null) return r.label;
    return null;
  }

  /** Every scope rule that matches (rules add up; none is skipped), split by mode. */
  scopeRules(facts: RequestFacts): { enforced: string[]; shadowed: string[]; rules: ScopeRule[] } {
    const enforced: string[] = [];
    const shadowed: string[] = [];
    const rules: ScopeRule[] = [];
    for (const r of this.cfg.requireScopes) {
      if (routeMatches(r, facts) === null) continue;
      rules.push(r);
      const into = r.mode === 'shadow' ? shadowed : enforced;
      for (const s of r.scopes) if (!into.includes(s)) into.push(s);
    }
    return { enforced, shadowed, rules };
  }

  /**
   * Token validity is never shadowed: a missing or invalid token is always refused. A scope rule in
   * `mode: shadow` only reports what it would refuse; enforced rules still refuse.
   */
  async check(facts: RequestFacts): Promise<{ step: Step; caller: Caller }> {
    // A public route skips auth entirely: a token there is not even looked at.
    const pub = this.publicRoute(facts);
    if (pub !== null) {
      return { step: { gate: 'auth', rule: pub, mode: 'enforce', decision: { kind: 'allow', headers: { ...this.anonymous } }, seen: { public: true } }, caller: ANONYMOUS };
    }
    const token = bearerToken(facts.authorization);
    if (token === null) return { step: { gate: 'auth', rule: null, mode: 'enforce', decision: missingToken(this.policy), seen: { token: 'absent' } }, caller: ANONYMOUS };
    const outcome = await this.verifier.verify(token);
    const scopes = this.scopeRules(facts);
    const rule = scopes.rules.map((r) => r.label).join('; ') || null;
    const enforced = decideAuth(outcome, scopes.enforced, this.policy);
    if (enforced.kind === 'deny') {
      if (outcome.kind !== 'valid') return { step: { gate: 'auth', rule, mode: 'enforce', decision: enforced, seen: { token: 'invalid' } }, caller: ANONYMOUS };
      // A valid token without a required scope: the caller is known (logs and the console name it).
      const id = outcome.claims[this.cfg.clientIdClaim];
      const caller: Caller = { clientId: typeof id === 'string' || typeof id === 'number' ? String(id) : null, claims: outcome.claims };
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
