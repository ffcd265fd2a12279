// Token-cache memory check: a million distinct HS256 tokens through the gate's TokenVerifier (built dist/); prints RSS as it goes.
// Plain JavaScript on purpose: it runs under plain node (no tsx loader thread, ~30 MB of RSS that is not the
// gate's), against dist/ like the HTTP scenarios. bench/run.ts spawns it pinned to one core:
//   node --expose-gc bench/token-memory.mjs [--count 1000000] [--cache N (default: the config default)] [--batch 32 (tokens in flight, as the HTTP scenarios' 32 connections)]
import { createHmac } from 'node:crypto';
import { parseArgs } from 'node:util';
import { readConfigText } from '../dist/config/read.js';
import { createLogger } from '../dist/obs/log.js';
import { createDeps } from '../dist/server.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000000' }, cache: { type: 'string' }, batch: { type: 'string', default: '32' } } });
const COUNT = Number(values.count);
const CACHE = values.cache === undefined ? undefined : Number(values.cache);
const BATCH = Number(values.batch);
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const ISS = 'https://issuer.test';
const AUD = 'orders-api';

const b64u = (s) => Buffer.from(s).toString('base64url');
const HEADER = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
const exp = Math.floor(Date.now() / 1000) + 3600;
const iat = exp - 3600;

/** Signs with node:crypto directly: jose's SignJWT would make generation, not verification, the cost. */
function token(i) {
  const payload = b64u(JSON.stringify({ sub: `client-${i}`, scope: 'orders:read orders:write', iss: ISS, aud: AUD, iat, exp }));
  const input = `${HEADER}.${payload}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

// The verifier exactly as the gate builds it: config text → load → compile (the secret imported once as a
// CryptoKey) → createDeps. Only auth.tokenCacheSize is set here, and only when --cache is given.
const yaml = `
store: { url: memory }
auth:
  secret: "${SECRET}"
  algorithms: [HS256]
  issuer: "${ISS}"
  audience: "${AUD}"
${values.cache !== undefined ? `  tokenCacheSize: ${CACHE}\n` : ''}`;
const compiled = await readConfigText(yaml, {});
if (!compiled.ok) throw new Error(JSON.stringify(compiled.issues));
const deps = createDeps(compiled.compiled, { log: createLogger('silent') });
const verifier = deps.verifier;
const cacheSize = compiled.compiled.auth.tokenCacheSize;

const mb = (b) => Math.round((b / 1024 / 1024) * 10) / 10;
const startRssMb = mb(process.memoryUsage().rss);
const checkpoints = [];
let invalid = 0;
const every = Math.max(BATCH, Math.floor(COUNT / 10));
const t0 = performance.now();
for (let start = 0; start < COUNT; start += BATCH) {
  const batch = [];
  for (let i = start; i < Math.min(COUNT, start + BATCH); i++) batch.push(verifier.verify(token(i)));
  for (const o of await Promise.all(batch)) if (o.kind !== 'valid') invalid++;
  const done = Math.min(COUNT, start + BATCH);
  if (done % every === 0 || done === COUNT) {
    const m = process.memoryUsage();
    checkpoints.push({ tokens: done, rssMb: mb(m.rss), heapMb: mb(m.heapUsed), cached: verifier.cachedTokens });
  }
}
const seconds = (performance.now() - t0) / 1000;
const m = process.memoryUsage();
const maxRssMb = Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
// What the cache really retains: the heap after a full collection (needs --expose-gc).
let heapAfterGcMb = null;
let rssAfterGcMb = null;
if (typeof globalThis.gc === 'function') {
  globalThis.gc();
  heapAfterGcMb = mb(process.memoryUsage().heapUsed);
  // V8 hands freed pages back to the system lazily: a second collection a moment later shows what stays.
  await new Promise((r) => setTimeout(r, 1000));
  globalThis.gc();
  rssAfterGcMb = mb(process.memoryUsage().rss);
}
process.stdout.write(
  JSON.stringify({
    tokens: COUNT,
    cacheSize,
    invalid,
    seconds: Math.round(seconds * 10) / 10,
    verifiesPerS: Math.round(COUNT / seconds),
    startRssMb,
    rssMb: mb(m.rss),
    heapMb: mb(m.heapUsed),
    maxRssMb,
    heapAfterGcMb,
    rssAfterGcMb,
    cachedTokens: verifier.cachedTokens,
    checkpoints,
  }) + '\n',
);
