// A compact JWS's signature checked synchronously with node:crypto, for verify.ts; everything around it stays jose's.
//
// Why: jose 6 verifies with WebCrypto (`crypto.subtle.verify`), which Node runs as an async job on
// libuv's thread pool, wrapped in webidl conversions, normalizeAlgorithm and a promise. The OpenSSL
// operation is the same one node:crypto's `verify()` runs; the wrapping is not: on one core, jose's
// jwtVerify costs 102 µs of CPU per token where this path (with jose's key and claim checks) costs
// 64 µs (`npx tsx bench/jwt-verify.ts`). A cold-token decision (`bench:cpu --cold`) went from
// 137–147 µs to 97–104 µs.
//
// What stays jose's: the key (verify.ts asks the same resolver and hands its CryptoKey here), the
// errors (jose's classes and, for a key that does not fit, its TypeError, so reasonOf() gives the
// reasons it gave before), and the claims (validateClaims runs jose's own claim checks). What is not
// done here is left to jose's jwtVerify, whole: parseCompactJws answers `undefined` for a token not
// in canonical form (padding `=`, whitespace or other characters outside base64url, which jose's
// atob-based decoding partly forgives), one with a `crit` or `b64` header parameter, or an allowed
// algorithm missing from SYNC_ALGORITHMS. Such a token costs what every token cost before; the
// outcome of every token is jose's (test/gates/auth/signature.test.ts compares them).
import { KeyObject, constants, createHmac, timingSafeEqual, verify } from 'node:crypto';
import { UnsecuredJWT, errors, type CompactJWSHeaderParameters, type FlattenedJWSInput, type JWTClaimVerificationOptions, type JWTPayload } from 'jose';

type Digest = 'sha256' | 'sha384' | 'sha512';

/** How one `alg` is checked: the CryptoKey it needs (as jose checks it) and the node:crypto call. */
interface SyncAlgorithm {
  kind: 'hmac' | 'pkcs1' | 'pss' | 'ecdsa' | 'eddsa';
  /** What the CryptoKey's `algorithm` must say (jose's checkCryptoKey). */
  key: { name: string; hash?: string; namedCurve?: string };
  /** null for EdDSA, whose signature hashes internally. */
  digest: Digest | null;
}

const hmac = (bits: 256 | 384 | 512): SyncAlgorithm => ({ kind: 'hmac', key: { name: 'HMAC', hash: `SHA-${bits}` }, digest: `sha${bits}` });
const pkcs1 = (bits: 256 | 384 | 512): SyncAlgorithm => ({ kind: 'pkcs1', key: { name: 'RSASSA-PKCS1-v1_5', hash: `SHA-${bits}` }, digest: `sha${bits}` });
const pss = (bits: 256 | 384 | 512): SyncAlgorithm => ({ kind: 'pss', key: { name: 'RSA-PSS', hash: `SHA-${bits}` }, digest: `sha${bits}` });
const ecdsa = (namedCurve: string, bits: 256 | 384): SyncAlgorithm => ({ kind: 'ecdsa', key: { name: 'ECDSA', namedCurve }, digest: `sha${bits}` });
const eddsa: SyncAlgorithm = { kind: 'eddsa', key: { name: 'Ed25519' }, digest: null };

/**
 * The algorithms checked here; the same pairings of alg and key as jose's (lib/jws_algorithms.js).
 * Not ES512: a P-521 verify costs ~1.2 ms of CPU here (P-256 58 µs, RSA-2048 23 µs, Ed25519 80 µs),
 * and on the event loop a stream of never-valid ES512 tokens (which are not cached) would stall
 * every request; jose keeps it on the thread pool.
 */
export const SYNC_ALGORITHMS: ReadonlyMap<string, SyncAlgorithm> = new Map([
  ['HS256', hmac(256)], ['HS384', hmac(384)], ['HS512', hmac(512)],
  ['RS256', pkcs1(256)], ['RS384', pkcs1(384)], ['RS512', pkcs1(512)],
  ['PS256', pss(256)], ['PS384', pss(384)], ['PS512', pss(512)],
  ['ES256', ecdsa('P-256', 256)], ['ES384', ecdsa('P-384', 384)],
  ['EdDSA', eddsa], ['Ed25519', eddsa],
]);

/** A compact JWS whose header passed jose's rules, ready for getKey and verifySignature. */
export interface CompactJws {
  header: CompactJWSHeaderParameters;
  algorithm: SyncAlgorithm;
  /** What jose hands a key resolver as the token. */
  flattened: FlattenedJWSInput & { protected: string; payload: string; signature: string };
}

/** Canonical base64url (RFC 7515 §2: no padding, nothing else); a length of 4n+1 decodes to nothing valid. */
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const isBase64url = (segment: string) => segment.length % 4 !== 1 && BASE64URL.test(segment);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a compact JWS's protected header with the rules jose's verify applies before it asks for a
 * key: three segments, a JSON object header, `alg` a non-empty string and in `algorithms`. Throws
 * jose's errors; answers `undefined` for a token to hand to jose's jwtVerify instead (see the top).
 */
export function parseCompactJws(token: string, algorithms: ReadonlySet<string>): CompactJws | undefined {
  const segments = token.split('.');
  if (segments.length !== 3) throw new errors.JWSInvalid('Invalid Compact JWS');
  const [protectedHeader, payload, signature] = segments as [string, string, string];
  if (!isBase64url(protectedHeader) || !isBase64url(payload) || !isBase64url(signature)) return undefined;

  let header: unknown;
  try {
    header = JSON.parse(utf8.decode(Buffer.from(protectedHeader, 'base64url')));
  } catch (cause) {
    throw new errors.JWSInvalid('JWS Protected Header is invalid', { cause });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new errors.JWSInvalid('JWS Protected Header is invalid');
  const h = header as Record<string, unknown>;
  // RFC 7515's extensions (only RFC 7797's b64 is known to jose): rare enough to leave to jose.
  if (h.crit !== undefined || h.b64 !== undefined) return undefined;
  const alg = h.alg;
  if (typeof alg !== 'string' || alg === '') throw new errors.JWSInvalid('JWS "alg" (Algorithm) Header Parameter missing or invalid');
  if (!algorithms.has(alg)) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  const algorithm = SYNC_ALGORITHMS.get(alg);
  if (algorithm === undefined) return undefined;
  return { header: h as CompactJWSHeaderParameters, algorithm, flattened: { protected: protectedHeader, payload, signature } };
}

/**
 * The KeyObject of each CryptoKey seen (`KeyObject.from` is synchronous but not free). A CryptoKey
 * never changes and is held weakly here, so this memo cannot change an outcome nor keep a key alive.
 */
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

function keyObjectOf(key: CryptoKey): KeyObject {
  let found = keyObjects.get(key);
  if (found === undefined) {
    found = KeyObject.from(key);
    keyObjects.set(key, found);
  }
  return found;
}

/** The checks jose makes of a CryptoKey before it verifies (lib/key.js), with its TypeErrors. */
function checkKey(alg: string, algorithm: SyncAlgorithm, key: CryptoKey): void {
  const expectedType = algorithm.kind === 'hmac' ? 'secret' : 'public';
  if (key.type !== expectedType) throw new TypeError(`CryptoKey instances must be of type "${expectedType}" for the ${alg} algorithm`);
  const actual = key.algorithm as { name: string; hash?: { name: string }; namedCurve?: string; modulusLength?: number };
  const expected = algorithm.key;
  if (actual.name !== expected.name) throw new TypeError(`CryptoKey does not support this operation, its algorithm.name must be ${expected.name}`);
  if (expected.hash !== undefined && actual.hash?.name !== expected.hash) throw new TypeError(`CryptoKey does not support this operation, its algorithm.hash must be ${expected.hash}`);
  if (expected.namedCurve !== undefined && actual.namedCurve !== expected.namedCurve) throw new TypeError(`CryptoKey does not support this operation, its algorithm.namedCurve must be ${expected.namedCurve}`);
  if (!key.usages.includes('verify')) throw new TypeError('CryptoKey does not support this operation, its usages must include verify.');
  if ((algorithm.kind === 'pkcs1' || algorithm.kind === 'pss') && !(typeof actual.modulusLength === 'number' && actual.modulusLength >= 2048)) {
    throw new TypeError(`${alg} requires key modulusLength to be 2048 bits or larger`);
  }
}

/** Bytes of each SHA-2 digest: RSA-PSS's salt length, as WebCrypto and jose use it (PS256 → 32). */
const DIGEST_BYTES: Record<Digest, number> = { sha256: 32, sha384: 48, sha512: 64 };

/** The one node:crypto operation of each kind; `false` for a signature that does not verify. */
function check(algorithm: SyncAlgorithm, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  const digest = algorithm.digest;
  switch (algorithm.kind) {
    case 'hmac': {
      const mac = createHmac(digest!, key).update(data).digest();
      return mac.length === signature.length && timingSafeEqual(mac, signature);
    }
    case 'pkcs1':
      return verify(digest, data, key, signature);
    case 'pss':
      return verify(digest, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: DIGEST_BYTES[digest!] }, signature);
    case 'ecdsa':
      // R || S of fixed length (JWS's form); one of another length verifies as false.
      return verify(digest, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    case 'eddsa':
      return verify(null, data, key, signature);
  }
}

/**
 * Checks the signature of a parsed token with the key jose's resolver gave for it; throws jose's
 * errors (JWSSignatureVerificationFailed, or a TypeError for a key that does not fit the `alg`).
 */
export function verifySignature(jws: CompactJws, key: CryptoKey): void {
  checkKey(jws.header.alg, jws.algorithm, key);
  const { protected: protectedHeader, payload, signature } = jws.flattened;
  // The segments are canonical base64url (parseCompactJws), so ASCII: latin1 is their bytes.
  const data = Buffer.from(`${protectedHeader}.${payload}`, 'latin1');
  let verified: boolean;
  try {
    verified = check(jws.algorithm, keyObjectOf(key), data, Buffer.from(signature, 'base64url'));
  } catch (cause) {
    throw new errors.JWSSignatureVerificationFailed(undefined, { cause });
  }
  if (!verified) throw new errors.JWSSignatureVerificationFailed();
}

/** base64url of `{"alg":"none"}`: the header UnsecuredJWT.decode insists on. */
const NONE_HEADER = 'eyJhbGciOiJub25lIn0';

/**
 * jose's claim checks (exp, nbf, iss, aud, required claims: its validateClaimsSet) on a payload
 * segment whose signature verified, with the errors jwtVerify throws. jose exports no standalone
 * validator; UnsecuredJWT.decode runs that same function on the payload of an `alg: none` token,
 * so the payload is put behind such a header. `typ` is left out: it would be compared with that
 * stand-in header, not the token's.
 */
export function validateClaims(payload: string, options: Omit<JWTClaimVerificationOptions, 'typ'>): JWTPayload {
  return UnsecuredJWT.decode(`${NONE_HEADER}.${payload}.`, options).payload;
}
