// The auth gate's shell: public-route check, bearer extraction, verification, scope rules.
import type { Compiled } from '../../config/compile.js';
import { routeMatches } from '../../core/routes.js';
import type { RequestFacts } from '../../core/forwarded.js';
import { anonymousHeaders, bearerToken, decideAuth, missingToken, type AuthPolicy, type AuthResult } from './decide.js';
import type { TokenVerifier } from './verify.js';

export type AuthGateResult = AuthResult | { kind: 'public'; headers: Record<string, string> };

export class AuthGate {
  readonly policy: AuthPolicy;
  private readonly anonymous: Record<string, string>;

  constructor(
    private readonly cfg: Compiled['auth'],
    private readonly verifier: TokenVerifier,
  ) {
    this.policy = { realm: 'conflict-gate', clientIdClaim: cfg.clientIdClaim, forwardClaims: cfg.forwardClaims };
    this.anonymous = anonymousHeaders(this.policy);
  }

  isPublic(facts: RequestFacts): boolean {
    return this.cfg.publicRoutes.some((r) => routeMatches(r, facts) !== null);
  }

  /** Every scope of every requireScopes rule that matches (rules add up; none is skipped). */
  requiredScopes(facts: RequestFacts): string[] {
    const out: string[] = [];
    for (const r of this.cfg.requireScopes) {
      if (routeMatches(r, facts) !== null) for (const s of r.scopes) if (!out.includes(s)) out.push(s);
    }
    return out;
  }

  async check(facts: RequestFacts): Promise<AuthGateResult> {
    // A public route skips auth entirely: a token there is not even looked at.
    if (this.isPublic(facts)) return { kind: 'public', headers: { ...this.anonymous } };
    const token = bearerToken(facts.authorization);
    if (token === null) return missingToken(this.policy);
    const outcome = await this.verifier.verify(token);
    return decideAuth(outcome, this.requiredScopes(facts), this.policy);
  }
}
