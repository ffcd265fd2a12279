// JWKS outage figures (issue 13 item 6): IdP fetches under unknown-kid load while the JWKS is down, and
// the latency of unknown-kid requests while it hangs. `npx tsx bench/jwks-outage.ts [--impl gate|jose]`.
//
// --impl gate (default): the gate's /auth handler (test/helpers/app.ts buildApp, app.request, no socket)
//   with its TokenVerifier, as `serve` builds it.
// --impl jose: the key resolution the gate used up to c1a4400, for the "before" figures: jose's
//   createRemoteJWKSet (cooldown counted from the last *successful* fetch) under jwtVerify.
// Flags: --seconds (10) of load per scenario, --concurrency (32), --cooldown (1s: short, so that the
// outage outlasts it within the run), --timeout (5s, the jwksTimeout default), --hang-seconds (12).
import { parseArgs } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { buildApp } from '../test/helpers/app.js';
import { startJwksServer, type JwksServer } from '../test/helpers/jwks-server.js';
import { AUDIENCE, ISSUER, makeKey, sign } from '../test/helpers/tokens.js';
import { round, Samples } from './lib/stats.js';

const { values: f } = parseArgs({
  options: {
    impl: { type: 'string', default: 'gate' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '32' },
    cooldown: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '5' },
    'hang-seconds': { type: 'string', default: '12' },
  },
});
const impl = f.impl === 'jose' ? 'jose' : 'gate';
const seconds = Number(f.seconds);
const concurrency = Number(f.concurrency);
const cooldownS = Number(f.cooldown);
const timeoutS = Number(f.timeout);
const hangSeconds = Number(f['hang-seconds']);

/** Answers one unknown-kid token: true when it was refused (it always should be). */
type Check = (token: string) => Promise<boolean>;

interface Subject {
  check: Check;
  ready(): boolean;
  close(): Promise<void>;
}

async function makeSubject(server: JwksServer): Promise<Subject> {
  if (impl === 'jose') {
    const remote = createRemoteJWKSet(new URL(server.url), { cooldownDuration: cooldownS * 1000, cacheMaxAge: Infinity, timeoutDuration: timeoutS * 1000 });
    await remote.reload();
    return {
      check: (t) => jwtVerify(t, remote, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'] }).then(() => false, () => true),
      ready: () => remote.jwks() !== undefined,
      close: async () => {},
    };
  }
  const app = await buildApp(`store: { url: memory }
auth: { jwksUrl: "${server.url}", issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256], jwksCooldown: ${cooldownS * 1000}ms, jwksTimeout: ${timeoutS * 1000}ms }`);
  app.deps.verifier.start();
  return {
    check: async (t) => (await app.auth('GET', '/api/x', { Authorization: `Bearer ${t}` })).status === 401,
    ready: () => app.deps.verifier.ready,
    close: () => app.close(),
  };
}

async function untilReady(s: Subject): Promise<void> {
  for (let i = 0; i < 200 && !s.ready(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!s.ready()) throw new Error('keys never loaded');
}

/** `loops` concurrent callers, each sending the next token as soon as the last was answered, for `ms`. */
async function load(check: Check, tokens: string[], loops: number, ms: number) {
  const lat = new Samples();
  let sent = 0;
  let wrong = 0;
  let slow = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < end) {
        // Requests arrive from sockets: let timers and I/O run between them, as a server would (an
        // unknown kid refused from memory is all microtasks and would otherwise starve the loop).
        await new Promise((r) => setImmediate(r));
        const t0 = performance.now();
        if (!(await check(tokens[sent++ % tokens.length]!))) wrong++;
        const ms = performance.now() - t0;
        if (ms >= 1000) slow++;
        lat.add(ms);
      }
    }),
  );
  const [p50, p99, max] = lat.percentiles([50, 99, 100]);
  return { requests: lat.count, wrong, slow, p50: round(p50!), p99: round(p99!), max: round(max!) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const known = await makeKey('ES256');
const stranger = await makeKey('ES256');
// Distinct tokens (other sub each), so no two concurrent requests share one verification.
const unknownKid = await Promise.all(Array.from({ length: 2000 }, (_, i) => sign(stranger, { sub: `u${i}` })));

console.log(`impl=${impl} cooldown=${cooldownS}s timeout=${timeoutS}s concurrency=${concurrency}`);

{
  const server = await startJwksServer([known.jwk]);
  const s = await makeSubject(server);
  await untilReady(s);
  server.setDown(true);
  await sleep(cooldownS * 1000 + 200); // the outage now outlasts the cooldown
  const before = server.hits();
  const r = await load(s.check, unknownKid, concurrency, seconds * 1000);
  const fetches = server.hits() - before;
  console.log(
    `[down] ${seconds}s of unknown-kid load, JWKS answering 503: ${fetches} JWKS fetches (at most ${Math.ceil(seconds / cooldownS)} expected at one per cooldown); ` +
      `${r.requests} requests, all 401: ${r.wrong === 0}; latency ms p50 ${r.p50} p99 ${r.p99} max ${r.max}`,
  );
  await s.close();
  await server.close();
}

{
  const server = await startJwksServer([known.jwk]);
  const s = await makeSubject(server);
  await untilReady(s);
  server.setHanging(true);
  await sleep(cooldownS * 1000 + 200);
  const before = server.hits();
  const loops = 4;
  const r = await load(s.check, unknownKid, loops, hangSeconds * 1000);
  const fetches = server.hits() - before;
  console.log(
    `[hang] ${hangSeconds}s of unknown-kid requests from ${loops} callers, JWKS accepting and never answering: ${r.requests} requests, all 401: ${r.wrong === 0}; ` +
      `${r.slow} took 1 s or more; latency ms p50 ${r.p50} p99 ${r.p99} max ${r.max}; ${fetches} JWKS fetches`,
  );
  await s.close();
  await server.close();
}
