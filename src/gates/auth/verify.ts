// Verifies bearer JWTs with jose against the configured keys; caches verified tokens until `exp`.
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { KeySource } from '../../config/compile.js';
import type { Claims, VerifyOutcome } from './decide.js';

export type { KeySource };

/** What the verifier needs of the compiled `auth` section, plus its clock and a JWKS observer. */
export interface VerifierOptions {
  source: KeySource;
  algorithms: readonly string[];
  issuer?: string | string[];
  audience?: string | string[];
  clockToleranceMs: number;
  requireExp: boolean;
  tokenCacheSize: number;
  jwksCooldownMs: number;
  jwksMaxAgeMs: number;
  jwksTimeoutMs: number;
  now: () => number;
  /** Told of every remote JWKS fetch: ok, or error (with a safe message). */
  onJwksRefresh?: (result: 'ok' | 'error', message?: string) => void;
}

type RemoteSet = ReturnType<typeof createRemoteJWKSet>;

interface CacheEntry {
  claims: Claims;
  untilMs: number;
}

/** A jose error (or anything else) → a short reason safe for WWW-Authenticate and logs. */
export function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf': return 'token not yet valid';
      case 'iat': return 'token issued in the future';
      case 'iss': return 'unexpected issuer';
      case 'aud': return 'unexpected audience';
      case 'exp': return 'token has no valid exp claim';
      default: return `invalid ${err.claim} claim`;
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no signing key matches the token';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'several signing keys match the token';
  if (err instanceof errors.JOSENotSupported) return 'unsupported token algorithm or key';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'malformed token';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JOSEError) return 'signing keys are not available';
  if (err instanceof TypeError) return 'signing keys are not available';
  return 'token could not be verified';
}

/**
 * Verifies tokens. A verified token is remembered (bounded, oldest evicted first) until its `exp`
 * plus the clock tolerance, so steady traffic pays for one signature check per token.
 *
 * Remote JWKS: keys are fetched at start (`ready` turns true once they load; retried in the
 * background until then) and refreshed every `jwksMaxAgeMs`. A failed refresh keeps the keys
 * already held, so an IdP outage does not reject valid tokens; a refresh that changes the key set
 * empties the token cache, so a token whose key was withdrawn is refused from then on. An unknown `kid` triggers a refetch
 * at most once per `jwksCooldownMs` (jose's single-flight + cooldown).
 */
export class TokenVerifier {
  private readonly getKey: JWTVerifyGetKey | CryptoKey;
  private readonly remote: RemoteSet | undefined;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<VerifyOutcome>>();
  private readonly verifyOptions;
  private loaded: boolean;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastKeys: string | undefined;

  constructor(private readonly opts: VerifierOptions) {
    if (!Number.isInteger(opts.tokenCacheSize) || opts.tokenCacheSize < 0) throw new TypeError('tokenCacheSize must be a whole number >= 0');
    const src = opts.source;
    if (src.kind === 'remote') {
      // Freshness is ours (see refresh()): jose only refetches on an unknown kid.
      this.remote = createRemoteJWKSet(src.url, {
        cooldownDuration: opts.jwksCooldownMs,
        cacheMaxAge: Infinity,
        timeoutDuration: opts.jwksTimeoutMs,
      });
      const remote = this.remote;
      this.getKey = async (header, token) => {
        try {
          return await remote(header, token);
        } finally {
          // A verify may be what first loads the keys (an unknown kid refetches).
          if (!this.loaded && remote.jwks() !== undefined) this.loaded = true;
        }
      };
      this.loaded = false;
    } else if (src.kind === 'local') {
      this.getKey = createLocalJWKSet(src.jwks);
      this.loaded = true;
    } else {
      const byAlg = src.byAlg;
      this.getKey = (header) => {
        const key = byAlg.get(header.alg ?? '');
        if (!key) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
        return key;
      };
      this.loaded = true;
    }
    this.verifyOptions = {
      algorithms: [...opts.algorithms],
      issuer: opts.issuer,
      audience: opts.audience,
      clockTolerance: Math.ceil(opts.clockToleranceMs / 1000),
      requiredClaims: opts.requireExp ? ['exp'] : [],
    };
  }

  /** Keys are loaded: tokens can be verified. */
  get ready(): boolean {
    return this.loaded;
  }

  /** Starts the remote JWKS fetch and its refresh timer; no-op for other sources. */
  start(): void {
    if (!this.remote || this.timer || this.closed) return;
    void this.refresh();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    const remote = this.remote!;
    try {
      await remote.reload();
      this.loaded = true;
      // A key that left the set takes its tokens with it: forget every verified token when the
      // set changed since the last refresh (it is rebuilt at one signature check per token).
      const keys = JSON.stringify(remote.jwks());
      if (this.lastKeys !== undefined && keys !== this.lastKeys) this.cache.clear();
      this.lastKeys = keys;
      this.opts.onJwksRefresh?.('ok');
    } catch (err) {
      this.opts.onJwksRefresh?.('error', reasonOf(err));
    }
    if (this.closed) return;
    // Until keys first load, retry every 2 s; after, refresh on the max-age period.
    const next = this.loaded ? this.opts.jwksMaxAgeMs : Math.min(2000, this.opts.jwksMaxAgeMs);
    this.timer = setTimeout(() => void this.refresh(), next);
    this.timer.unref();
  }

  /** Verifies a token (compact JWS). Never throws. */
  verify(token: string): Promise<VerifyOutcome> {
    const now = this.opts.now();
    const hit = this.cache.get(token);
    if (hit !== undefined) {
      if (now < hit.untilMs) return Promise.resolve({ kind: 'valid', claims: hit.claims });
      this.cache.delete(token);
    }
    const pending = this.inflight.get(token);
    if (pending) return pending;
    const p = this.verifyUncached(token, now).finally(() => this.inflight.delete(token));
    this.inflight.set(token, p);
    return p;
  }

  private async verifyUncached(token: string, now: number): Promise<VerifyOutcome> {
    try {
      const { payload } = await jwtVerify(token, this.getKey as JWTVerifyGetKey, { ...this.verifyOptions, currentDate: new Date(now) });
      this.remember(token, payload as Claims);
      return { kind: 'valid', claims: payload as Claims };
    } catch (err) {
      return { kind: 'invalid', reason: reasonOf(err) };
    }
  }

  private remember(token: string, claims: Claims): void {
    const max = this.opts.tokenCacheSize;
    if (max === 0 || typeof claims.exp !== 'number') return;
    while (this.cache.size >= max) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    this.cache.set(token, { claims, untilMs: claims.exp * 1000 + this.opts.clockToleranceMs });
  }

  /** Number of tokens currently remembered (for tests and metrics). */
  get cachedTokens(): number {
    return this.cache.size;
  }
}
