// CPU per signature check: jose's jwtVerify (WebCrypto, a thread-pool job per token) against the
// synchronous path verify.ts takes (src/gates/auth/signature.ts: jose's header rules, key and claim
// checks, node:crypto for the signature). Every token is checked once per round, 32 at a time.
//   npx tsx bench/jwt-verify.ts [--tokens FILE] [--jwks FILE] [--n 4000]
// Defaults: the bench-peers tokens and key set (~/.cache/conflict-gate-bench/bench/keys/out).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { parseCompactJws, validateClaims, verifySignature } from '../src/gates/auth/signature.js';

const KEYS = resolve(process.env.HOME ?? '/root', '.cache/conflict-gate-bench/bench/keys/out');
const { values: a } = parseArgs({ options: { tokens: { type: 'string', default: `${KEYS}/tokens.txt` }, jwks: { type: 'string', default: `${KEYS}/jwks.json` }, n: { type: 'string', default: '4000' } } });
const tokens = readFileSync(a.tokens!, 'utf8').trim().split('\n').slice(0, Number(a.n));
const getKey = createLocalJWKSet(JSON.parse(readFileSync(a.jwks!, 'utf8')) as JSONWebKeySet);
const options = { issuer: 'https://issuer.test', audience: 'orders-api', algorithms: ['RS256', 'ES256'], clockTolerance: 5 };
const allowed = new Set(options.algorithms);

async function viaJose(token: string): Promise<unknown> {
  return (await jwtVerify(token, getKey, options)).payload;
}
async function viaSync(token: string): Promise<unknown> {
  const jws = parseCompactJws(token, allowed)!;
  const key = await getKey(jws.header, jws.flattened);
  verifySignature(jws, key as CryptoKey);
  return validateClaims(jws.flattened.payload, options);
}

async function cpuPerToken(check: (t: string) => Promise<unknown>): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < tokens.length; i += 32) await Promise.all(tokens.slice(i, i + 32).map(check));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / tokens.length;
}

await cpuPerToken(viaJose); // warm-up (keys imported, code optimised)
await cpuPerToken(viaSync);
const best = { jose: Infinity, sync: Infinity };
for (let r = 0; r < 3; r++) {
  best.jose = Math.min(best.jose, await cpuPerToken(viaJose));
  best.sync = Math.min(best.sync, await cpuPerToken(viaSync));
}
console.log(`CPU µs per token (best of 3, ${tokens.length} tokens): jose jwtVerify ${best.jose.toFixed(1)}, synchronous path ${best.sync.toFixed(1)}`);
