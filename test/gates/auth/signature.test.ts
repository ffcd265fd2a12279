// The verifier's synchronous signature path against jose's jwtVerify: the same outcome (valid with the
// same claims, or invalid with the same reason) for every token of a corpus of valid and broken ones.
import { constants, createPrivateKey, sign as nodeSign } from 'node:crypto';
import { createLocalJWKSet, errors, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, importSPKI, jwtVerify, type JWK, type JWTVerifyGetKey } from 'jose';
import { beforeAll, describe, expect, test } from 'vitest';
import type { KeySource } from '../../../src/config/compile.js';
import type { VerifyOutcome } from '../../../src/gates/auth/decide.js';
import { parseCompactJws } from '../../../src/gates/auth/signature.js';
import { reasonOf, TokenVerifier, type VerifierOptions } from '../../../src/gates/auth/verify.js';
import { AUDIENCE, ISSUER } from '../../helpers/tokens.js';

const NOW = Date.UTC(2030, 0, 1);
const NOW_S = NOW / 1000;
const TOLERANCE_MS = 5000;

const RSA = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;
const EC = ['ES256', 'ES384', 'ES512'] as const;
const ASYMMETRIC = [...RSA, ...EC, 'EdDSA'] as const;
const HMAC = ['HS256', 'HS384', 'HS512'] as const;
type Alg = (typeof ASYMMETRIC)[number] | (typeof HMAC)[number] | 'Ed25519';

const b64 = (v: string | Uint8Array) => Buffer.from(v).toString('base64url');
const json = (v: unknown) => b64(JSON.stringify(v));
const bits = (alg: string) => Number(alg.slice(2)) as 256 | 384 | 512;

/** A signer for one key: signs any signing input with WebCrypto (not node:crypto's verify path under test). */
interface Signer {
  kid: string;
  /** The private key (PEM), to sign in forms WebCrypto does not make; absent for an HMAC secret. */
  pkcs8?: string;
  sign(alg: Alg, input: string): Promise<string>;
}

function webCryptoParams(alg: Alg): AlgorithmIdentifier | RsaPssParams | EcdsaParams {
  if (alg.startsWith('PS')) return { name: 'RSA-PSS', saltLength: bits(alg) / 8 };
  if (alg.startsWith('ES')) return { name: 'ECDSA', hash: `SHA-${bits(alg)}` };
  if (alg.startsWith('RS')) return { name: 'RSASSA-PKCS1-v1_5' };
  if (alg.startsWith('HS')) return { name: 'HMAC' };
  return { name: 'Ed25519' };
}

function pemSigner(kid: string, pkcs8: string): Signer {
  const imported = new Map<string, Promise<CryptoKey>>();
  return {
    kid,
    pkcs8,
    async sign(alg, input) {
      if (!imported.has(alg)) imported.set(alg, importPKCS8(pkcs8, alg));
      const key = await imported.get(alg)!;
      return b64(new Uint8Array(await crypto.subtle.sign(webCryptoParams(alg), key, new TextEncoder().encode(input))));
    },
  };
}

function secretSigner(secret: Uint8Array<ArrayBuffer>): Signer {
  return {
    kid: 'hmac',
    async sign(alg, input) {
      const key = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: `SHA-${bits(alg)}` }, false, ['sign']);
      return b64(new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(input))));
    },
  };
}

interface KeyPair {
  signer: Signer;
  pkcs8: string;
  spki: string;
  jwk: JWK;
}

async function keyPair(alg: (typeof ASYMMETRIC)[number], kid: string, jwkAlg: string | undefined): Promise<KeyPair> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const pkcs8 = await exportPKCS8(privateKey);
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, use: 'sig', ...(jwkAlg ? { alg: jwkAlg } : {}) };
  return { signer: pemSigner(kid, pkcs8), pkcs8, spki: await exportSPKI(publicKey), jwk };
}

const keys = new Map<string, KeyPair>();
/** RSA and Ed25519 keys whose JWK names no alg: any alg of their type may pick them. */
let rsaAny: KeyPair;
let edAny: KeyPair;
const SECRET = new TextEncoder().encode('a-shared-secret-of-thirty-two-bytes!!');
const hmacSigner = secretSigner(SECRET);

beforeAll(async () => {
  for (const alg of ASYMMETRIC) keys.set(alg, await keyPair(alg, `k-${alg}`, alg));
  rsaAny = await keyPair('RS256', 'k-rsa-any', undefined);
  edAny = await keyPair('EdDSA', 'k-ed-any', undefined);
});

const claims = (o: Record<string, unknown> = {}) => ({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: NOW_S - 10, exp: NOW_S + 3600, ...o });

/** A token from raw segments, signed over exactly `header.payload`. */
async function signed(signer: Signer, alg: Alg, header: string, payload: string): Promise<string> {
  return `${header}.${payload}.${await signer.sign(alg, `${header}.${payload}`)}`;
}

const insertAt = (s: string, i: number, c: string) => s.slice(0, i) + c + s.slice(i);
const withSegment = (token: string, i: number, f: (s: string) => string) => token.split('.').map((s, j) => (j === i ? f(s) : s)).join('.');
const withSignatureBytes = (token: string, f: (sig: Buffer) => Buffer) => withSegment(token, 2, (s) => b64(f(Buffer.from(s, 'base64url'))));

interface Case {
  name: string;
  token: string;
}

/** Valid and broken tokens for one key and alg. */
async function corpus(signer: Signer, alg: Alg, other: { kid: string; sibling: Alg; foreignKid: string }): Promise<Case[]> {
  const h = { alg, kid: signer.kid };
  const H = json(h);
  const P = json(claims());
  const valid = await signed(signer, alg, H, P);
  const cases: Case[] = [];
  // A mutation that changed nothing (a segment without `-` or `_` to swap) would only be another valid case.
  const add = (name: string, token: string) => (token !== valid || cases.length === 0 ? cases.push({ name, token }) : undefined);
  const addSigned = async (name: string, header: string, payload: string, signAlg: Alg = alg) => add(name, await signed(signer, signAlg, header, payload));

  add('valid', valid);
  await addSigned('valid, typ JWT and extra header parameters', json({ ...h, typ: 'JWT', x5t: 'abc', ext: { a: [1] } }), P);
  await addSigned('no kid', json({ alg }), P);
  await addSigned('numeric kid', json({ alg, kid: 5 }), P);
  await addSigned('unknown kid', json({ alg, kid: 'nope' }), P);
  await addSigned('kid of another key type', json({ alg, kid: other.foreignKid }), P);
  await addSigned('header alg a sibling of the signing alg', json({ alg: other.sibling, kid: signer.kid }), P);
  await addSigned('header alg a sibling, key without alg', json({ alg: other.sibling, kid: other.kid }), P);
  add('alg none', `${json({ alg: 'none' })}.${P}.`);
  add('alg none with a signature', `${json({ alg: 'none', kid: signer.kid })}.${P}.${valid.split('.')[2]}`);
  await addSigned('alg missing', json({ kid: signer.kid }), P);
  await addSigned('alg empty', json({ alg: '', kid: signer.kid }), P);
  await addSigned('alg a number', json({ alg: 256, kid: signer.kid }), P);
  await addSigned('alg unknown', json({ alg: 'XS256', kid: signer.kid }), P);
  await addSigned('alg twice, the last none', b64(`{"alg":"${alg}","kid":"${signer.kid}","alg":"none"}`), P);
  await addSigned('header with __proto__', b64(`{"alg":"${alg}","kid":"${signer.kid}","__proto__":{"crit":["x"]}}`), P);

  // The signature.
  add('signature byte flipped', withSignatureBytes(valid, (s) => Buffer.from(s.map((b, i) => (i === 5 ? b ^ 1 : b)))));
  add('signature last byte flipped', withSignatureBytes(valid, (s) => Buffer.from(s.map((b, i) => (i === s.length - 1 ? b ^ 0x80 : b)))));
  add('signature truncated by a byte', withSignatureBytes(valid, (s) => s.subarray(0, -1)));
  add('signature truncated to half', withSignatureBytes(valid, (s) => s.subarray(0, s.length >> 1)));
  add('signature extended by a byte', withSignatureBytes(valid, (s) => Buffer.concat([s, Buffer.from([0])])));
  add('signature doubled', withSignatureBytes(valid, (s) => Buffer.concat([s, s])));
  add('signature empty', withSegment(valid, 2, () => ''));
  add('signature of 4n+1 characters', withSegment(valid, 2, (s) => s + 'A'.repeat((5 - (s.length % 4)) % 4 || 4)));
  add('signature of another token', withSegment(valid, 2, () => cases[1]!.token.split('.')[2]!));
  add('signature segments swapped', valid.split('.').reverse().join('.'));
  const privateKey = signer.pkcs8 === undefined ? undefined : createPrivateKey(signer.pkcs8);
  if (privateKey && alg.startsWith('ES')) {
    const key = privateKey;
    add('ECDSA signature DER-encoded', withSegment(valid, 2, () => b64(nodeSign(`sha${bits(alg)}`, Buffer.from(`${H}.${P}`), { key, dsaEncoding: 'der' }))));
  }
  if (privateKey && alg.startsWith('PS')) {
    const key = privateKey;
    for (const saltLength of [0, constants.RSA_PSS_SALTLEN_MAX_SIGN]) {
      add(`RSA-PSS salt length ${saltLength}`, withSegment(valid, 2, () => b64(nodeSign(`sha${bits(alg)}`, Buffer.from(`${H}.${P}`), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }))));
    }
  }
  if (privateKey && (alg.startsWith('PS') || alg.startsWith('RS'))) {
    // The same key with the other RSA padding: PKCS#1 v1.5 for PS*, PSS for RS*.
    const key = privateKey;
    const padding = alg.startsWith('PS') ? constants.RSA_PKCS1_PADDING : constants.RSA_PKCS1_PSS_PADDING;
    add('RSA signature with the other padding', withSegment(valid, 2, () => b64(nodeSign(`sha${bits(alg)}`, Buffer.from(`${H}.${P}`), { key, padding, saltLength: bits(alg) / 8 }))));
  }

  // Segments: count, characters outside canonical base64url, padding.
  add('empty token', '');
  add('two segments', `${H}.${P}`);
  add('four segments', `${valid}.x`);
  add('four segments, empty last', `${valid}.`);
  add('only dots', '..');
  for (let i = 0; i < 3; i++) {
    for (const c of ['!', '+', '/', ' ', '\t', '\n', 'é', '\u0000', '%', '*']) add(`segment ${i}: ${JSON.stringify(c)} inserted`, withSegment(valid, i, (s) => insertAt(s, 5, c)));
    add(`segment ${i}: ${JSON.stringify(' ')} appended`, withSegment(valid, i, (s) => `${s} `));
    for (const pad of ['=', '==', '===']) add(`segment ${i}: ${pad} appended`, withSegment(valid, i, (s) => s + pad));
    add(`segment ${i}: base64 alphabet (+/) instead of -_`, withSegment(valid, i, (s) => s.replaceAll('-', '+').replaceAll('_', '/')));
    add(`segment ${i}: a character dropped`, withSegment(valid, i, (s) => s.slice(0, -1)));
  }
  // Padding and whitespace that jose's atob-based decoding forgives, signed over as sent: jose accepts these.
  const padded = (s: string) => s + '='.repeat((4 - (s.length % 4)) % 4);
  await addSigned('header and payload padded and signed so', padded(H), padded(P));
  add('signature padded', withSegment(valid, 2, padded));
  add('signature with a space inside', withSegment(valid, 2, (s) => insertAt(s, 8, ' ')));

  // The header.
  for (const [name, raw] of [
    ['not JSON', b64('not json')],
    ['a JSON array', json([h])],
    ['a JSON string', json('header')],
    ['JSON null', json(null)],
    ['a JSON number', json(1)],
    ['JSON with a byte-order mark', b64(`\uFEFF${JSON.stringify(h)}`)],
    ['JSON with trailing garbage', b64(`${JSON.stringify(h)}x`)],
    ['not UTF-8', b64(Buffer.concat([Buffer.from(JSON.stringify(h).slice(0, -1)), Buffer.from([0x2c, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])]))],
    ['empty', ''],
  ] as const) await addSigned(`header ${name}`, raw, P);

  // The payload.
  for (const [name, raw] of [
    ['not JSON', b64('not json')],
    ['a JSON array', json([claims()])],
    ['a JSON string', json('claims')],
    ['JSON null', json(null)],
    ['JSON with a byte-order mark', b64(`\uFEFF${JSON.stringify(claims())}`)],
    ['not UTF-8', b64(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))],
    ['empty', ''],
    ['an empty object', json({})],
  ] as const) await addSigned(`payload ${name}`, H, raw);

  // Claims.
  for (const [name, c] of [
    ['expired', claims({ exp: NOW_S - 3600 })],
    ['expired within the clock tolerance', claims({ exp: NOW_S - 3 })],
    ['expired just beyond the clock tolerance', claims({ exp: NOW_S - 5 })],
    ['nbf in the future', claims({ nbf: NOW_S + 3600 })],
    ['nbf within the clock tolerance', claims({ nbf: NOW_S + 4 })],
    ['nbf a string', claims({ nbf: String(NOW_S) })],
    ['iat in the future', claims({ iat: NOW_S + 3600 })],
    ['iat within the clock tolerance', claims({ iat: NOW_S + 4 })],
    ['iat a string', claims({ iat: 'yesterday' })],
    ['wrong iss', claims({ iss: 'https://evil.test' })],
    ['no iss', claims({ iss: undefined })],
    ['wrong aud', claims({ aud: 'other-api' })],
    ['aud an array with ours', claims({ aud: ['other-api', AUDIENCE] })],
    ['aud an array without ours', claims({ aud: ['other-api'] })],
    ['no aud', claims({ aud: undefined })],
    ['no exp', claims({ exp: undefined })],
    ['exp a string', claims({ exp: String(NOW_S + 3600) })],
    ['exp null', claims({ exp: null })],
    ['exp fractional', claims({ exp: NOW_S + 0.5 })],
    ['sub missing', claims({ sub: undefined })],
    ['large claims', claims({ roles: Array.from({ length: 50 }, (_, i) => `role-${i}`), nested: { a: { b: [1, 2, { c: 'ü€😀' }] } } })],
  ] as const) await addSigned(`claims: ${name}`, H, json(c));

  // RFC 7515 `crit` and RFC 7797 `b64`: left to jose, so its answer either way.
  for (const [name, extra] of [
    ['crit with an unknown extension', { crit: ['exp'] }],
    ['crit empty', { crit: [] }],
    ['crit not an array', { crit: 'b64' }],
    ['crit b64, b64 true', { crit: ['b64'], b64: true }],
    ['crit b64, b64 false', { crit: ['b64'], b64: false }],
    ['crit b64, b64 missing', { crit: ['b64'] }],
    ['crit b64, b64 a string', { crit: ['b64'], b64: 'no' }],
    ['b64 false without crit', { b64: false }],
    ['b64 true without crit', { b64: true }],
    ['crit null', { crit: null }],
  ] as const) await addSigned(`header ${name}`, json({ ...h, ...extra }), P);
  return cases;
}

/** What the verifier answered before: jose's jwtVerify, then the gate's `iat` rule. */
async function joseOutcome(token: string, getKey: JWTVerifyGetKey, o: VerifierOptions): Promise<VerifyOutcome> {
  const clockTolerance = Math.ceil(o.clockToleranceMs / 1000);
  try {
    const { payload } = await jwtVerify(token, getKey, {
      algorithms: [...o.algorithms],
      issuer: o.issuer,
      audience: o.audience,
      clockTolerance,
      requiredClaims: o.requireExp ? ['exp'] : [],
      currentDate: new Date(o.now()),
    });
    if (typeof payload.iat === 'number' && payload.iat > Math.floor(o.now() / 1000) + clockTolerance) return { kind: 'invalid', reason: 'token issued in the future' };
    return { kind: 'valid', claims: payload as never };
  } catch (err) {
    return { kind: 'invalid', reason: reasonOf(err) };
  }
}

/** The key resolver verify.ts builds for each source, built again the same way for jose. */
function getKeyOf(source: KeySource): JWTVerifyGetKey {
  if (source.kind === 'local') return createLocalJWKSet(source.jwks);
  if (source.kind !== 'static') throw new Error('not used here');
  return (header) => {
    const key = source.byAlg.get(header.alg ?? '');
    if (!key) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
    return key;
  };
}

function options(source: KeySource, algorithms: readonly string[], o: Partial<VerifierOptions> = {}): VerifierOptions {
  return {
    source,
    algorithms,
    issuer: ISSUER,
    audience: AUDIENCE,
    clockToleranceMs: TOLERANCE_MS,
    requireExp: true,
    tokenCacheSize: 0,
    jwksCooldownMs: 30_000,
    jwksMaxAgeMs: 600_000,
    jwksTimeoutMs: 5000,
    now: () => NOW,
    ...o,
  };
}

interface Row {
  name: string;
  sync: boolean;
  ours: VerifyOutcome;
  jose: VerifyOutcome;
}

/** Every case through the verifier and through jose; the rows where they differ, and all rows. */
async function compare(o: VerifierOptions, cases: Case[]): Promise<{ rows: Row[]; differing: Row[] }> {
  const verifier = new TokenVerifier(o);
  const getKey = getKeyOf(o.source);
  const algorithms = new Set(o.algorithms);
  const rows: Row[] = [];
  for (const { name, token } of cases) {
    let sync: boolean;
    try {
      sync = parseCompactJws(token, algorithms) !== undefined;
    } catch {
      sync = true;
    }
    rows.push({ name, sync, ours: await verifier.verify(token), jose: await joseOutcome(token, getKey, o) });
  }
  verifier.close();
  return { rows, differing: rows.filter((r) => JSON.stringify(r.ours) !== JSON.stringify(r.jose)) };
}

const localJwks = (): KeySource => ({ kind: 'local', jwks: { keys: [...[...keys.values()].map((k) => k.jwk), rsaAny.jwk, edAny.jwk] } });
const SIBLING: Record<Alg, Alg> = {
  RS256: 'RS384', RS384: 'RS512', RS512: 'RS256', PS256: 'PS384', PS384: 'PS512', PS512: 'PS256',
  ES256: 'ES384', ES384: 'ES512', ES512: 'ES256', EdDSA: 'Ed25519', Ed25519: 'EdDSA',
  HS256: 'HS384', HS384: 'HS512', HS512: 'HS256',
};
const foreignKid = (alg: Alg) => (alg.startsWith('ES') ? 'k-RS256' : 'k-ES256');
const anyKid = (alg: Alg) => (alg.startsWith('E') && !alg.startsWith('ES') ? 'k-ed-any' : alg.startsWith('ES') ? 'k-ES256' : 'k-rsa-any');

/** Reasons every run must have met, so a corpus that stopped exercising something shows. */
const seenReasons = new Set<string>();

describe('the synchronous signature path gives jose\'s outcome', () => {
  const ALL_ASYMMETRIC = [...ASYMMETRIC, 'Ed25519'];

  test.each([...ASYMMETRIC])('%s, local JWKS: every token of the corpus', async (alg) => {
    const pair = keys.get(alg)!;
    const cases = await corpus(pair.signer, alg, { kid: anyKid(alg), sibling: SIBLING[alg], foreignKid: foreignKid(alg) });
    // Valid tokens signed by the alg-less keys (two candidates for RSA without a kid: jose's "several keys").
    if (RSA.includes(alg as never)) cases.push({ name: 'valid, key without alg', token: await signed(rsaAny.signer, alg, json({ alg, kid: 'k-rsa-any' }), json(claims())) });
    const all = await compare(options(localJwks(), ALL_ASYMMETRIC), cases);
    const restricted = await compare(options(localJwks(), ['ES256', 'RS256']), cases);
    const lax = await compare(options(localJwks(), ALL_ASYMMETRIC, { requireExp: false, issuer: undefined, audience: undefined }), cases);
    for (const run of [all, restricted, lax]) {
      expect(run.differing).toEqual([]);
      for (const r of run.rows) seenReasons.add(r.jose.kind === 'valid' ? 'valid' : r.jose.reason);
    }
    // The valid token did take the synchronous path (nothing was simply handed to jose).
    const valid = all.rows.find((r) => r.name === 'valid')!;
    // ES512 excepted: P-521 is left to jose's thread pool (signature.ts, SYNC_ALGORITHMS).
    expect(valid).toMatchObject({ sync: alg !== 'ES512', ours: { kind: 'valid', claims: { sub: 'alice' } } });
    expect(all.rows.filter((r) => r.ours.kind === 'valid').length).toBeGreaterThan(5);
  });

  test('Ed25519 (the fully specified name of EdDSA), local JWKS', async () => {
    const cases = await corpus(edAny.signer, 'Ed25519', { kid: 'k-EdDSA', sibling: 'EdDSA', foreignKid: 'k-ES256' });
    const run = await compare(options(localJwks(), ALL_ASYMMETRIC), cases);
    expect(run.differing).toEqual([]);
    expect(run.rows.find((r) => r.name === 'valid')).toMatchObject({ sync: true, ours: { kind: 'valid' } });
  });

  test.each([...HMAC])('%s, an HMAC secret', async (alg) => {
    const byAlg = new Map<string, CryptoKey>();
    for (const a of HMAC) byAlg.set(a, await crypto.subtle.importKey('raw', SECRET, { name: 'HMAC', hash: `SHA-${bits(a)}` }, false, ['verify']));
    const source: KeySource = { kind: 'static', byAlg };
    const cases = await corpus(hmacSigner, alg, { kid: 'hmac', sibling: SIBLING[alg], foreignKid: 'k-ES256' });
    cases.push({ name: 'another secret', token: await signed(secretSigner(new TextEncoder().encode('another secret')), alg, json({ alg }), json(claims())) });
    for (const algorithms of [HMAC, ['HS256']]) {
      const run = await compare(options(source, algorithms), cases);
      expect(run.differing).toEqual([]);
      for (const r of run.rows) seenReasons.add(r.jose.kind === 'valid' ? 'valid' : r.jose.reason);
    }
    const run = await compare(options(source, HMAC), cases.slice(0, 1));
    expect(run.rows[0]).toMatchObject({ sync: true, ours: { kind: 'valid' } });
  });

  test('RS256 and PS256 with a PEM public key', async () => {
    const pair = keys.get('RS256')!;
    const byAlg = new Map<string, CryptoKey>([['RS256', await importSPKI(pair.spki, 'RS256')], ['PS256', await importSPKI(pair.spki, 'PS256')]]);
    const source: KeySource = { kind: 'static', byAlg };
    for (const alg of ['RS256', 'PS256'] as const) {
      const cases = await corpus(pair.signer, alg, { kid: 'k-rsa-any', sibling: SIBLING[alg], foreignKid: 'k-ES256' });
      const run = await compare(options(source, ['RS256', 'PS256', 'ES256']), cases);
      expect(run.differing).toEqual([]);
      expect(run.rows.find((r) => r.name === 'valid')).toMatchObject({ sync: true, ours: { kind: 'valid' } });
    }
  });

  test('a key that does not fit the alg is refused as jose refuses it', async () => {
    const es256 = await generateKeyPair('ES256');
    const rsa1024 = await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-384' }, true, ['sign', 'verify']);
    const rsa = keys.get('RS256')!;
    const byAlg = new Map<string, CryptoKey>([
      ['RS256', es256.publicKey], // another algorithm
      ['RS384', rsa1024.publicKey], // modulus under 2048 bits
      ['ES256', es256.privateKey], // a private key
      ['PS256', await importSPKI(rsa.spki, 'RS256')], // RSASSA-PKCS1-v1_5 where RSA-PSS is needed
      ['ES384', await importSPKI(keys.get('ES256')!.spki, 'ES256')], // P-256 where P-384 is needed
      ['HS256', await crypto.subtle.importKey('raw', SECRET, { name: 'HMAC', hash: 'SHA-384' }, false, ['verify'])], // another hash
      ['HS384', await crypto.subtle.importKey('raw', SECRET, { name: 'HMAC', hash: 'SHA-384' }, false, ['sign'])], // no verify usage
    ]);
    const rsa1024Pkcs8 = await exportPKCS8(rsa1024.privateKey);
    const signers: [Alg, Signer][] = [
      ['RS256', rsa.signer], ['RS384', pemSigner('x', rsa1024Pkcs8)], ['ES256', keys.get('ES256')!.signer], ['PS256', rsa.signer],
      ['ES384', keys.get('ES384')!.signer], ['HS256', hmacSigner], ['HS384', hmacSigner],
    ];
    const cases: Case[] = [];
    for (const [alg, signer] of signers) cases.push({ name: alg, token: await signed(signer, alg, json({ alg }), json(claims())) });
    const run = await compare(options({ kind: 'static', byAlg }, [...byAlg.keys()]), cases);
    expect(run.differing).toEqual([]);
    expect(run.rows.every((r) => r.sync && r.ours.kind === 'invalid' && r.ours.reason === 'signing keys are not available')).toBe(true);
  });

  test('the corpus met every reason the verifier gives', () => {
    expect([...seenReasons].sort()).toEqual([
      'algorithm not allowed',
      'invalid iat claim',
      'invalid nbf claim',
      'malformed token',
      'no signing key matches the token',
      'several signing keys match the token',
      'signature verification failed',
      'token expired',
      'token has no valid exp claim',
      'token issued in the future',
      'token not yet valid',
      'unexpected audience',
      'unexpected issuer',
      'unsupported token algorithm or key',
      'valid',
    ]);
  });
});

describe('parseCompactJws: what it leaves to jose', () => {
  const algorithms = new Set(['ES256']);
  const H = json({ alg: 'ES256' });
  const P = json(claims());

  test('a canonical token is taken; padding, whitespace, crit and b64 are handed to jose', () => {
    expect(parseCompactJws(`${H}.${P}.AAAA`, algorithms)).toMatchObject({ header: { alg: 'ES256' }, flattened: { protected: H, payload: P, signature: 'AAAA' } });
    for (const token of [`${H}.${P}.AAAA==`, `${H}.${P}.AA AA`, `${H}.${P}=.AAAA`, `${H}.${P}.AAAAA`, `${json({ alg: 'ES256', crit: ['b64'], b64: true })}.${P}.AAAA`, `${json({ alg: 'ES256', b64: false })}.${P}.AAAA`]) {
      expect(parseCompactJws(token, algorithms)).toBeUndefined();
    }
  });

  test('ES512 is left to jose (a P-521 verify would hold the event loop ~1.2 ms)', () => {
    expect(parseCompactJws(`${json({ alg: 'ES512' })}.${P}.AAAA`, new Set(['ES512']))).toBeUndefined();
  });

  test("jose's errors for a malformed header or an alg not allowed", () => {
    expect(() => parseCompactJws(`${H}.${P}`, algorithms)).toThrow(errors.JWSInvalid);
    expect(() => parseCompactJws(`${b64('[]')}.${P}.AAAA`, algorithms)).toThrow(errors.JWSInvalid);
    expect(() => parseCompactJws(`${json({ alg: 'RS256' })}.${P}.AAAA`, algorithms)).toThrow(errors.JOSEAlgNotAllowed);
    expect(() => parseCompactJws(`${json({ alg: 'none' })}.${P}.`, algorithms)).toThrow(errors.JOSEAlgNotAllowed);
  });
});
