// Verifies bearer JWTs against the configured keys (jose's rules and key resolution, the signature
// itself checked synchronously by signature.ts); fetches a remote JWKS; caches verified tokens until `exp`.
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import type { KeySource } from '../../config/compile.js';
import { chunkOf, dropOldest, makeRoom } from '../../core/bounded.js';
import type { Claims, VerifyOutcome } from './decide.js';
import { parseCompactJws, validateClaims, verifySignature } from './signature.js';

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
  /** Told of every remote JWKS fetch: ok, or error with a short reason safe to log (`HTTP 503`, `timed out after 5000 ms`). */
  onJwksRefresh?: (result: 'ok' | 'error', message?: string) => void;
  /**
   * The verifier this one replaces (a config reload). When both fetch the same JWKS URL, the keys it
   * holds are taken over, so readiness does not drop while this one's first fetch runs.
   */
  previous?: TokenVerifier;
}

/** Numbers for /metrics and the console (issue 11); counters only grow. */
export interface VerifierStats {
  /** Keys currently loaded (1 for a PEM key or an HMAC secret). */
  keys: number;
  /** Epoch ms of the last successful JWKS fetch; for a file, PEM or secret, when it was loaded. */
  lastSuccessAt: number | undefined;
  /** verify() calls answered from the token cache. */
  cacheHits: number;
  /** verify() calls that were not (verified, joined a verification in flight, or refused before). */
  cacheMisses: number;
  /** Tokens checked (each one signature check at most), valid or not. */
  verifications: number;
  /** Remote JWKS fetches by outcome (scheduled refreshes and unknown-`kid` refetches alike). */
  refreshes: { ok: number; error: number };
}

/**
 * The longest bearer token looked at: Node's own limit for all request headers together is 16 KiB,
 * so a longer token can only come from a caller that raised it; it is refused before any parsing.
 */
export const MAX_TOKEN_LENGTH = 16 * 1024;
/**
 * The token cache also stays under this many bytes (a cached entry is counted as twice its token's
 * length, for the token and its decoded claims, plus 512): typical tokens of 1–2 KB hit
 * `tokenCacheSize` first, while tokens near MAX_TOKEN_LENGTH cannot make the cache hold 10 000 × 32 KB.
 */
export const TOKEN_CACHE_BYTES = 32 * 1024 * 1024;
/** Most requests that wait together for one unknown-`kid` JWKS fetch; later ones are answered at once. */
export const MAX_JWKS_WAITERS = 1024;
/** A JWKS larger than this is refused (a real one is a few KB). */
export const MAX_JWKS_BYTES = 1024 * 1024;

const entryCost = (token: string) => 2 * token.length + 512;

/**
 * The token cache's key: the token's last 40 characters, which are its signature's (240 random
 * bits): hashing them costs a tenth of hashing the whole token, on every request. The entry keeps
 * the whole token and a lookup compares it, so a different token with the same tail (which no one
 * can make verify) is a miss, never a hit; it would only replace the entry, as a new token does.
 */
const cacheKey = (token: string) => (token.length > 80 ? token.slice(-40) : token);

interface CacheEntry {
  /** The whole token: a lookup by cacheKey is a hit only when it is this very token. */
  token: string;
  claims: Claims;
  untilMs: number;
  cost: number;
}

/** A jose error (or anything else) → a short reason safe for WWW-Authenticate and logs. */
export function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf': return err.reason === 'check_failed' ? 'token not yet valid' : 'invalid nbf claim';
      case 'iat': return err.reason === 'check_failed' ? 'token issued in the future' : 'invalid iat claim';
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

class JwksFetchError extends Error {}

/**
 * A remote JWKS with a cooldown that also follows failures. jose's createRemoteJWKSet counts its
 * cooldown from the last *successful* fetch, so once an outage outlasted it every unknown-`kid`
 * token fetched again (5 358 fetches in 10 s to a failing IdP) and, with the IdP hanging, every such
 * request waited the whole timeout. Here:
 * - one fetch at a time (single-flight), and a request starts one only when `cooldownMs` has passed
 *   since the last fetch *started*, whatever its outcome: the IdP sees at most one unknown-`kid`
 *   fetch per cooldown, plus the scheduled ones;
 * - a request waits for a fetch only while the last one succeeded (a rotation: the new key is
 *   fetched and the token accepted). Once a fetch has failed, an unknown `kid` is refused at once
 *   and a fetch, if the cooldown allows one, runs in the background. Worked example (cooldown 30 s,
 *   timeout 5 s, last fetch long ago, the IdP hangs from t=0): the first unknown-kid request, at
 *   t=1, waits until t=6 with everything that joined it; from then on every unknown-kid request is a fast 401, with one
 *   background fetch at t=31, t=61, … until one succeeds;
 * - a failed fetch keeps the keys already held.
 */
class RemoteKeySet {
  private local: JWTVerifyGetKey | undefined;
  private keysText: string | undefined;
  keyCount = 0;
  lastSuccessAt: number | undefined;
  readonly refreshes = { ok: 0, error: 0 };
  private lastAttemptAt: number | undefined;
  private failing = false;
  private pending: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private waiters = 0;
  private closed = false;

  constructor(
    readonly url: URL,
    private readonly o: {
      cooldownMs: number;
      timeoutMs: number;
      now: () => number;
      onResult: (result: 'ok' | 'error', message?: string) => void;
      onKeysChanged: () => void;
    },
  ) {}

  /** Takes over another set's keys (same URL; a config reload). */
  adopt(other: RemoteKeySet): void {
    if (other.url.href !== this.url.href || other.local === undefined) return;
    this.local = other.local;
    this.keysText = other.keysText;
    this.keyCount = other.keyCount;
    this.lastSuccessAt = other.lastSuccessAt;
  }

  /** jose's key resolver: the loaded keys, refetched on an unknown `kid` as described above. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    let miss: unknown = new errors.JOSEError('no signing keys are loaded');
    if (this.local !== undefined) {
      try {
        return await this.local(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
        miss = err;
      }
    }
    const wait = this.refetchFor();
    if (wait === undefined) throw miss;
    this.waiters++;
    try {
      await wait;
    } finally {
      this.waiters--;
    }
    if (this.local === undefined) throw miss;
    return this.local(header, token);
  };

  /** The fetch an unknown `kid` may wait for, or undefined: answer now (a fetch may start in the background). */
  private refetchFor(): Promise<void> | undefined {
    if (this.closed) return undefined;
    if (this.pending === undefined) {
      const now = this.o.now();
      const last = this.lastAttemptAt;
      // A clock that went back is treated as a cooldown that has passed.
      if (last !== undefined && now >= last && now - last < this.o.cooldownMs) return undefined;
      void this.fetch();
    }
    if (this.failing || this.waiters >= MAX_JWKS_WAITERS) return undefined;
    return this.pending;
  }

  /** Fetches the set (joining a fetch in flight). Never rejects: the outcome is counted and reported. */
  fetch(): Promise<void> {
    if (this.pending !== undefined) return this.pending;
    if (this.closed) return Promise.resolve();
    this.lastAttemptAt = this.o.now();
    const abort = new AbortController();
    this.abort = abort;
    const timer = setTimeout(() => abort.abort(new JwksFetchError(`timed out after ${this.o.timeoutMs} ms`)), this.o.timeoutMs);
    timer.unref();
    const p = this.download(abort.signal)
      .then((jwks) => this.apply(jwks))
      .catch((err: unknown) => {
        if (this.closed) return;
        this.failing = true;
        this.refreshes.error++;
        this.o.onResult('error', fetchProblem(err, abort.signal));
      })
      .finally(() => {
        clearTimeout(timer);
        if (this.pending === p) {
          this.pending = undefined;
          this.abort = undefined;
        }
      });
    this.pending = p;
    return p;
  }

  private apply(jwks: JSONWebKeySet): void {
    if (this.closed) return;
    const local = createLocalJWKSet(jwks);
    const text = JSON.stringify(jwks.keys);
    // A key that left the set takes its tokens with it: the caller forgets every verified token.
    if (this.keysText !== undefined && text !== this.keysText) this.o.onKeysChanged();
    this.local = local;
    this.keysText = text;
    this.keyCount = jwks.keys.length;
    this.lastSuccessAt = this.o.now();
    this.failing = false;
    this.refreshes.ok++;
    this.o.onResult('ok');
  }

  private async download(signal: AbortSignal): Promise<JSONWebKeySet> {
    // No redirects (as jose): the configured URL is the one trusted.
    const res = await fetch(this.url, { signal, redirect: 'manual', headers: { accept: 'application/json, application/jwk-set+json' } });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new JwksFetchError(`HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > MAX_JWKS_BYTES) {
      await res.body?.cancel();
      throw new JwksFetchError(`larger than ${MAX_JWKS_BYTES} bytes`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = res.body?.getReader();
    for (let r = await reader?.read(); reader && r && !r.done; r = await reader.read()) {
      size += r.value.byteLength;
      if (size > MAX_JWKS_BYTES) {
        await reader.cancel();
        throw new JwksFetchError(`larger than ${MAX_JWKS_BYTES} bytes`);
      }
      chunks.push(r.value);
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new JwksFetchError('not JSON');
    }
    try {
      createLocalJWKSet(json as JSONWebKeySet);
    } catch {
      throw new JwksFetchError('not a JSON Web Key Set');
    }
    return json as JSONWebKeySet;
  }

  /** Stops for good: aborts a fetch in flight; no fetch starts after this. */
  close(): void {
    this.closed = true;
    this.abort?.abort(new JwksFetchError('verifier closed'));
  }
}

/** A fetch failure → a short message safe to log (no URL credentials, no stack). */
function fetchProblem(err: unknown, signal: AbortSignal): string {
  if (signal.aborted && signal.reason instanceof JwksFetchError) return signal.reason.message;
  if (err instanceof JwksFetchError) return err.message;
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return `unreachable (${cause.code})`;
  return 'unreachable';
}

/**
 * Verifies tokens. A verified token is remembered (bounded by count and bytes, oldest evicted first, in chunks)
 * until its `exp` plus the clock tolerance, so steady traffic pays for one signature check per token.
 *
 * Remote JWKS: keys are fetched at start (`ready` turns true once a non-empty set loads; retried every
 * 2 s until then) and refreshed every `jwksMaxAgeMs`. A failed refresh keeps the keys already held, so
 * an IdP outage does not reject valid tokens; a fetch that changes the key set empties the token
 * cache, so a token whose key was withdrawn is refused from then on. Unknown-`kid` refetches follow
 * RemoteKeySet's cooldown: at most one per `jwksCooldownMs`, and no waiting once the IdP is failing.
 */
export class TokenVerifier {
  private readonly getKey: JWTVerifyGetKey;
  private readonly remote: RemoteKeySet | undefined;
  private readonly cache = new Map<string, CacheEntry>();
  private cacheBytes = 0;
  private readonly inflight = new Map<string, Promise<VerifyOutcome>>();
  private readonly verifyOptions;
  private readonly algorithms: ReadonlySet<string>;
  private readonly staticKeys: number;
  private readonly loadedAt: number;
  private readonly counts = { cacheHits: 0, cacheMisses: 0, verifications: 0 };
  /** Bumped whenever the cache is emptied for a key-set change. */
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;

  private readonly opts: Omit<VerifierOptions, 'previous'>;

  constructor(options: VerifierOptions) {
    // `previous` is read here only: kept, each verifier would hold the one before it, token cache and
    // all, and every reload (a watched ConfigMap) would add one that is never freed.
    const { previous, ...opts } = options;
    this.opts = opts;
    if (!Number.isInteger(opts.tokenCacheSize) || opts.tokenCacheSize < 0) throw new TypeError('tokenCacheSize must be a whole number >= 0');
    this.loadedAt = opts.now();
    const src = opts.source;
    if (src.kind === 'remote') {
      this.remote = new RemoteKeySet(src.url, {
        cooldownMs: opts.jwksCooldownMs,
        timeoutMs: opts.jwksTimeoutMs,
        now: opts.now,
        onResult: (result, message) => opts.onJwksRefresh?.(result, message),
        onKeysChanged: () => this.forgetTokens(),
      });
      if (previous?.remote) this.remote.adopt(previous.remote);
      this.getKey = this.remote.getKey;
      this.staticKeys = 0;
    } else if (src.kind === 'local') {
      this.getKey = createLocalJWKSet(src.jwks);
      this.staticKeys = src.jwks.keys.length;
    } else {
      const byAlg = src.byAlg;
      this.getKey = (header) => {
        const key = byAlg.get(header.alg ?? '');
        if (!key) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
        return key;
      };
      // One PEM key or one secret, imported once per algorithm.
      this.staticKeys = 1;
    }
    this.algorithms = new Set(opts.algorithms);
    this.verifyOptions = {
      algorithms: [...opts.algorithms],
      issuer: opts.issuer,
      audience: opts.audience,
      clockTolerance: Math.ceil(opts.clockToleranceMs / 1000),
      requiredClaims: opts.requireExp ? ['exp'] : [],
    };
  }

  /** Keys are loaded (a non-empty set): tokens can be verified. */
  get ready(): boolean {
    return this.remote ? this.remote.keyCount > 0 : this.staticKeys > 0;
  }

  /** Starts the remote JWKS fetch and its refresh timer; no-op for other sources, once started, or closed. */
  start(): void {
    if (!this.remote || this.started || this.closed) return;
    this.started = true;
    void this.cycle();
  }

  /** Stops every timer and aborts a JWKS fetch in flight. Verification goes on with the keys held. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.remote?.close();
  }

  /** Numbers for metrics (see VerifierStats). */
  stats(): VerifierStats {
    const r = this.remote;
    return {
      keys: r ? r.keyCount : this.staticKeys,
      lastSuccessAt: r ? r.lastSuccessAt : this.loadedAt,
      ...this.counts,
      refreshes: r ? { ...r.refreshes } : { ok: 0, error: 0 },
    };
  }

  private async cycle(): Promise<void> {
    this.timer = undefined;
    await this.remote!.fetch();
    if (this.closed) return;
    // Until a non-empty set loads, retry every 2 s; after, refresh on the max-age period.
    const next = this.ready ? this.opts.jwksMaxAgeMs : Math.min(2000, this.opts.jwksMaxAgeMs);
    this.timer = setTimeout(() => void this.cycle(), next);
    this.timer.unref();
  }

  /**
   * The claims of a token verified before and not expired, or undefined: the cache-hit path, with no
   * promise. The same object is returned for every hit on one entry (callers may memoize on it).
   */
  cached(token: string): Claims | undefined {
    const hit = this.entry(cacheKey(token), token);
    if (hit === undefined || this.opts.now() >= hit.untilMs) return undefined;
    this.counts.cacheHits++;
    return hit.claims;
  }

  /** The cache entry under `key` when it is this very token (expired or not). */
  private entry(key: string, token: string): CacheEntry | undefined {
    const found = this.cache.get(key);
    return found !== undefined && found.token === token ? found : undefined;
  }

  /** Verifies a token (compact JWS). Never throws. */
  verify(token: string): Promise<VerifyOutcome> {
    const now = this.opts.now();
    const key = cacheKey(token);
    const hit = this.entry(key, token);
    if (hit !== undefined) {
      if (now < hit.untilMs) {
        this.counts.cacheHits++;
        return Promise.resolve({ kind: 'valid', claims: hit.claims });
      }
      this.forget(key, hit);
    }
    this.counts.cacheMisses++;
    if (token.length > MAX_TOKEN_LENGTH) return Promise.resolve({ kind: 'invalid', reason: 'token too large' });
    const pending = this.inflight.get(token);
    if (pending) return pending;
    const p = this.verifyUncached(token, now).finally(() => this.inflight.delete(token));
    this.inflight.set(token, p);
    return p;
  }

  private async verifyUncached(token: string, now: number): Promise<VerifyOutcome> {
    this.counts.verifications++;
    const generation = this.generation;
    try {
      const payload = await this.check(token, { ...this.verifyOptions, currentDate: new Date(now) });
      // jose checks `iat` only against a maximum age; a token issued later than now (beyond the clock
      // tolerance) comes from a skewed or misbehaving issuer and is refused (issue 13 item 14).
      if (typeof payload.iat === 'number' && payload.iat > Math.floor(now / 1000) + this.verifyOptions.clockTolerance) {
        return { kind: 'invalid', reason: 'token issued in the future' };
      }
      // A key-set change while this token was being checked must not let it into the emptied cache.
      if (generation === this.generation) this.remember(token, payload as Claims);
      return { kind: 'valid', claims: payload as Claims };
    } catch (err) {
      return { kind: 'invalid', reason: reasonOf(err) };
    }
  }

  /**
   * What jose's `jwtVerify(token, this.getKey, options)` does, with the signature checked by
   * signature.ts (synchronously, without WebCrypto's trip through the thread pool: a cold-token
   * decision went from 137–147 to 97–104 µs of CPU, `bench:cpu --cold`); a token or key that file
   * does not handle goes to jwtVerify itself. Throws jose's errors.
   */
  private async check(token: string, options: JWTVerifyOptions): Promise<JWTPayload> {
    const jws = parseCompactJws(token, this.algorithms);
    // A `typ` rule would be compared with validateClaims' stand-in header: only jwtVerify applies it.
    if (jws === undefined || options.typ !== undefined) return (await jwtVerify(token, this.getKey, options)).payload;
    const key = await this.getKey(jws.header, jws.flattened);
    // Every key source here gives a CryptoKey; anything else would be jose's to use.
    if (!(key instanceof CryptoKey)) return (await jwtVerify(token, key, options)).payload;
    verifySignature(jws, key);
    return validateClaims(jws.flattened.payload, options);
  }

  private forgetTokens(): void {
    this.cache.clear();
    this.cacheBytes = 0;
    this.generation++;
  }

  private forget(key: string, entry: CacheEntry): void {
    this.cache.delete(key);
    this.dropped(key, entry);
  }

  /** An entry gone from the cache (forgotten, or dropped by the bound in core/bounded.ts): its bytes are free again. */
  private readonly dropped = (_key: string, entry: CacheEntry): void => {
    this.cacheBytes -= entry.cost;
  };

  private remember(token: string, claims: Claims): void {
    const max = this.opts.tokenCacheSize;
    if (max === 0 || typeof claims.exp !== 'number') return;
    const key = cacheKey(token);
    const old = this.cache.get(key);
    if (old !== undefined) this.forget(key, old);
    const cost = entryCost(token);
    makeRoom(this.cache, max, this.dropped);
    while (this.cache.size > 0 && this.cacheBytes + cost > TOKEN_CACHE_BYTES) dropOldest(this.cache, chunkOf(this.cache.size), this.dropped);
    this.cache.set(key, { token, claims, untilMs: claims.exp * 1000 + this.opts.clockToleranceMs, cost });
    this.cacheBytes += cost;
  }

  /** Bytes the remembered tokens are counted as (the TOKEN_CACHE_BYTES budget; for tests). */
  get cachedBytes(): number {
    return this.cacheBytes;
  }

  /** Number of tokens currently remembered (for tests and metrics). */
  get cachedTokens(): number {
    return this.cache.size;
  }
}
