// CPU per decision without HTTP: the /auth endpoint (built) driven in-process with the realistic mix, so the
// gate's own cost is measured apart from the socket and scheduler noise of a loopback benchmark.
//   npx tsx bench/decision-cpu.ts [--config FILE] [--tokens FILE] [--waves 3000] [--concurrency 32] [--cold] [--alloc | --promoted]
// Defaults: ../shared/bench-peers' gate config, tokens and mix (80 % GET /api/orders/<n>, 20 % PUT with
// the current If-Match; BENCH_JWKS names the key set). Redis is the config's (a real one: the store
// round trips happen, their CPU on the gate's side is counted). Prints µs of CPU per decision, the
// best of --rounds runs (noise only ever adds). --alloc: then one more round under V8's sampling heap
// profiler, and the bytes it allocated per decision by site (what drives the young-generation GCs);
// --promoted: only what outlived the young generation (what drives the full GCs).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
// The built code (dist/, `npm run build`), as `node dist/main.js` runs it, not src/ through tsx
// (whose esbuild keepNames names every closure as it is created: not the code that ships).
import { applyV8Flags } from '../dist/cli/v8-flags.js';
import { readConfig } from '../dist/config/read.js';
import type { HeaderSource } from '../dist/core/forwarded.js';
import { createAuthEndpoint } from '../dist/http/auth-endpoint.js';
import { createLogger } from '../dist/obs/log.js';
import { DecisionRecorder } from '../dist/obs/recorder.js';
import { createDeps } from '../dist/server.js';
import { profileAllocations, renderAllocations, summarizeAllocations } from './lib/heapprofile.js';

const PEERS = resolve(import.meta.dirname, '../../shared/bench-peers');
const CACHE = resolve(process.env.HOME ?? '/root', '.cache/conflict-gate-bench/bench');
const { values: a } = parseArgs({
  options: {
    config: { type: 'string', default: `${PEERS}/gate-bench.yaml` },
    tokens: { type: 'string', default: `${CACHE}/keys/out/tokens.txt` },
    waves: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    orders: { type: 'string', default: '1000' },
    // Every decision a token not seen before (TOKENS must hold more than (rounds + 1) × waves × concurrency).
    cold: { type: 'boolean', default: false },
    alloc: { type: 'boolean', default: false },
    promoted: { type: 'boolean', default: false },
  },
});
// The V8 flags `serve` runs with (src/cli/v8-flags.ts).
applyV8Flags();
process.env.BENCH_JWKS ??= `${CACHE}/keys/out/jwks.json`;
const read = await readConfig(a.config!, process.env);
if (!read.ok) throw new Error(read.issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
const deps = createDeps(read.compiled, { log: createLogger('silent'), sha256: read.sha256 });
const endpoint = createAuthEndpoint({ current: () => deps.generation, recorder: new DecisionRecorder(deps.metrics, deps.log) });
for (let i = 0; i < 100 && !deps.store.available(); i++) await new Promise((r) => setTimeout(r, 20));

const tokens = readFileSync(a.tokens!, 'utf8').trim().split('\n');
const orders = Number(a.orders);
const version = (n: number) => (n % 97) + 1;
// The same versions bench-peers' preload.sh sets, under this config's key prefix.
if (read.compiled.store.url?.startsWith('redis')) {
  const raw = new Redis(read.compiled.store.url);
  const p = raw.pipeline();
  for (let n = 1; n <= orders; n++) p.set(`${read.compiled.store.keyPrefix}ver:{orders:${n}}`, String(version(n)));
  await p.exec();
  raw.disconnect();
}

/** A request as Traefik forwards it (the fields bench-peers' load.lua sends). */
function request(i: number): HeaderSource {
  const n = (i * 7919) % orders + 1;
  const write = i % 5 === 0;
  const ti = (i % tokens.length) + 1;
  const h: Record<string, string> = {
    authorization: `Bearer ${tokens[i % tokens.length]}`,
    'x-forwarded-method': write ? 'PUT' : 'GET',
    'x-forwarded-uri': `/api/orders/${n}`,
    'x-forwarded-host': 'api.orders.test',
    'x-forwarded-proto': 'https',
    'x-forwarded-port': '443',
    'x-forwarded-for': `10.${Math.floor(ti / 65536) % 256}.${Math.floor(ti / 256) % 256}.${ti % 256}`,
    'user-agent': 'orders-client/2.3',
    accept: 'application/json',
  };
  if (write) h['if-match'] = `"${version(n)}"`;
  return { get: (name) => h[name], repeated: () => false };
}
const calls = Array.from({ length: a.cold ? tokens.length : 20_000 }, (_, i) => request(i));

const waves = Number(a.waves);
const conc = Number(a.concurrency);
let k = 0;
async function round(): Promise<number> {
  const c0 = process.cpuUsage();
  if (!a.cold) k = 0;
  for (let w = 0; w < waves; w++) {
    const batch = [];
    for (let j = 0; j < conc; j++) batch.push(endpoint({ headers: calls[k++ % calls.length]!, peer: '127.0.0.1' }));
    await Promise.all(batch);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / (waves * conc);
}
await round(); // warm-up: tokens verified, code optimised
const results: number[] = [];
for (let r = 0; r < Number(a.rounds); r++) results.push(await round());
results.sort((x, y) => x - y);
console.log(`CPU µs per decision (best of ${results.length}): ${results[0]!.toFixed(1)}   all: ${results.map((x) => x.toFixed(1)).join(' ')}`);
if (a.alloc || a.promoted) {
  const head = await profileAllocations(async () => void (await round()), 256, a.promoted);
  console.log(renderAllocations(summarizeAllocations(head), waves * conc, a.promoted));
}
await deps.close();
