// `npm run bench`: bare Hono vs the gate (the real CLI), each one process on one core, same autocannon load,
// scenario by scenario; prints req/s, p50, p99 and the gate/bare ratio, then a token-cache memory check.
// Results also go to .bench/results.json (a partial or profiled run: .bench/results-<which>.json).
// Flags (or env): --duration (BENCH_DURATION, s, default 10),
// --warmup (BENCH_WARMUP, 2), --connections (BENCH_CONNECTIONS, 32), --only a,b,e (BENCH_ONLY),
// --profile (BENCH_PROFILE=1: node --cpu-prof the gate and the bare server, print where the gate's time goes
// in the measured run and the CPU µs per request it adds over bare, by area; figures then include the
// profiler's overhead), --tokens N (BENCH_TOKENS, 1000000; 0 skips the memory check),
// --server-cpu 0 / --load-cpu 1 (BENCH_SERVER_CPU / BENCH_LOAD_CPU), --steady (BENCH_STEADY=1: after each
// scenario's closed-loop runs, bare and gate at half the gate's maximum rate, open loop with
// --steady-connections 128; p50/p99/p99.9 and the p99 ratio), BENCH_REDIS_URL (default: a
// redis-server of our own on a free port, so INFO commandstats counts this bench only; falls back to
// redis://127.0.0.1:6379/0 when redis-server is not installed).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { keyLayout } from '../src/store/keys.js';
import { freePort } from '../test/helpers/net.js';
import { flushPrefix } from '../test/helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign } from '../test/helpers/tokens.js';
import { perRequestDiff, renderSummary, summarize, type ProfileSummary } from './lib/cpuprofile.js';
import { drive, type AcRequest, type LoadResult } from './lib/load.js';
import { steadyLoad, type SteadyResult } from './lib/steady.js';
import { distStaleness, HAVE_TASKSET, pinned, pinProcess, ROOT, rssMb, startBare, startGateProcess, startOwnRedisServer, type Proc } from './lib/procs.js';
import { callsDelta, commandCalls, traceDecisions, type Trace } from './lib/redis-stats.js';
import { numberOption, round } from './lib/stats.js';

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
    profile: { type: 'boolean' },
    tokens: { type: 'string' },
    'server-cpu': { type: 'string' },
    'load-cpu': { type: 'string' },
    steady: { type: 'boolean' },
    'steady-connections': { type: 'string' },
  },
});
const env = process.env;
const DURATION = numberOption(flags.duration, env.BENCH_DURATION, 10);
const WARMUP = numberOption(flags.warmup, env.BENCH_WARMUP, 2);
const CONNECTIONS = Math.max(1, numberOption(flags.connections, env.BENCH_CONNECTIONS, 32));
const ONLY = (flags.only ?? env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const PROFILE = flags.profile === true || env.BENCH_PROFILE === '1';
const MEMORY_TOKENS = numberOption(flags.tokens, env.BENCH_TOKENS, 1_000_000);
const CORES = availableParallelism();
const SERVER_CPU = flags['server-cpu'] ?? env.BENCH_SERVER_CPU ?? '0';
const LOAD_CPU = flags['load-cpu'] ?? env.BENCH_LOAD_CPU ?? (CORES > 1 ? '1' : '0');
/**
 * Steady-rate mode (--steady, BENCH_STEADY=1): for each scenario, the gate's maximum is measured
 * (closed loop), then bare and gate are driven at half of it with --steady-connections (128), so
 * each connection sends far less often than a slow answer takes: open loop, no coordinated omission.
 */
const STEADY = flags.steady === true || env.BENCH_STEADY === '1';
const STEADY_CONNECTIONS = Math.max(1, numberOption(flags['steady-connections'], env.BENCH_STEADY_CONNECTIONS, 256));
const CLIENTS = 1000;
const ORDERS = 8;
const SEEDED_VERSION = '7';

// ---------------------------------------------------------------------------------------------
// Requests: each connection loops over its own static list (built once), offset so that the 32
// connections do not move through the 1000 tokens in lockstep.

const FORWARDED = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'api.example', 'X-Forwarded-For': '198.51.100.7' };

function authOnly(tokens: string[], uri: string) {
  return (conn: number): AcRequest[] =>
    tokens.map((_, j) => ({
      method: 'GET',
      path: '/auth',
      headers: { ...FORWARDED, 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': uri, Authorization: `Bearer ${tokens[(conn * 37 + j) % tokens.length]}` },
    }));
}

function noToken(conn: number): AcRequest[] {
  return [{ method: 'GET', path: '/auth', headers: { ...FORWARDED, 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': `/api/orders/${conn}` } }];
}

/** 80 % reads, 20 % writes with the current If-Match, over ORDERS resource keys. */
function orderMix(tokens: string[]) {
  return (conn: number): AcRequest[] =>
    tokens.map((_, j) => {
      const write = j % 5 === 0;
      const id = ((conn + j) % ORDERS) + 1;
      return {
        method: 'GET',
        path: '/auth',
        headers: {
          ...FORWARDED,
          'X-Forwarded-Method': write ? 'PUT' : 'GET',
          'X-Forwarded-Uri': `/api/orders/${id}`,
          Authorization: `Bearer ${tokens[(conn * 37 + j) % tokens.length]}`,
          ...(write ? { 'If-Match': `"${SEEDED_VERSION}"` } : {}),
        },
      };
    });
}

/**
 * The same 80/20 mix with an Idempotency-Key rule on POSTs: 80 % reads, 10 % PUTs with the current
 * If-Match, 10 % POST /api/orders (creates) each with a fresh Idempotency-Key (set per send, so a
 * key is never repeated) and a JSON Content-Type.
 */
function orderMixIdempotent(tokens: string[]) {
  return (conn: number): AcRequest[] => {
    // Each call (bare, warm-up, measured run, trace) gets keys of its own: a repeated key would be a retry.
    const run = randomBytes(4).toString('hex');
    let n = 0;
    return tokens.map((_, j) => {
      const kind = j % 10 === 0 ? 'post' : j % 10 === 5 ? 'put' : 'get';
      const id = ((conn + j) % ORDERS) + 1;
      const token = tokens[(conn * 37 + j) % tokens.length];
      if (kind !== 'post') {
        return {
          method: 'GET',
          path: '/auth',
          headers: { ...FORWARDED, 'X-Forwarded-Method': kind === 'put' ? 'PUT' : 'GET', 'X-Forwarded-Uri': `/api/orders/${id}`, Authorization: `Bearer ${token}`, ...(kind === 'put' ? { 'If-Match': `"${SEEDED_VERSION}"` } : {}) },
        };
      }
      const headers = { ...FORWARDED, 'X-Forwarded-Method': 'POST', 'X-Forwarded-Uri': '/api/orders', Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
      return { method: 'GET', path: '/auth', headers, setupRequest: (req: AcRequest) => ({ ...req, headers: { ...req.headers, 'Idempotency-Key': `"${run}-${conn}-${++n}"` } }) };
    });
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type RedisMode = 'none' | 'up' | 'down';

interface Scenario {
  id: string;
  title: string;
  logLevel: 'warn' | 'info';
  redis: RedisMode;
  rules: string;
  conflict: boolean;
  requests: (conn: number) => AcRequest[];
  /** Status codes the gate should answer; anything else is flagged. */
  expect: number[];
  target?: { ratio?: number; p99?: number };
  countRedis?: boolean;
  /** Adds conflict.idempotency: POST /api/orders with require: true. */
  idempotency?: boolean;
  /** Every gate and rule in shadow (Rolling out, step 1): the cost of shadow against `e`. */
  shadow?: boolean;
}

const HIGH_LIMIT = '[{ name: all, limit: 1000000000, window: 60s }]';

function scenarios(tokens: string[]): Scenario[] {
  return [
    { id: 'a', title: 'auth allow, 1000 repeating ES256 tokens', logLevel: 'warn', redis: 'none', rules: '[]', conflict: false, requests: authOnly(tokens, '/api/orders/1'), expect: [200], target: { ratio: 0.6, p99: 3 } },
    { id: 'b', title: 'auth + rate limit (Redis, never denies)', logLevel: 'warn', redis: 'up', rules: HIGH_LIMIT, conflict: false, requests: authOnly(tokens, '/api/orders/1'), expect: [200], target: { ratio: 0.45 }, countRedis: true },
    { id: 'c401', title: 'deny 401 missing_token (log info)', logLevel: 'info', redis: 'none', rules: '[]', conflict: false, requests: noToken, expect: [401] },
    { id: 'c401w', title: 'deny 401 missing_token (log warn)', logLevel: 'warn', redis: 'none', rules: '[]', conflict: false, requests: noToken, expect: [401] },
    { id: 'c429', title: 'deny 429 over limit (Redis, log info)', logLevel: 'info', redis: 'up', rules: '[{ name: tight, limit: 1, window: 3600s }]', conflict: false, requests: authOnly(tokens, '/api/orders/1'), expect: [200, 429], countRedis: true },
    { id: 'd', title: 'Redis down: mix, fail modes memory/allow', logLevel: 'warn', redis: 'down', rules: HIGH_LIMIT, conflict: true, requests: orderMix(tokens), expect: [200] },
    { id: 'e', title: 'conflict mix 80/20, all three gates', logLevel: 'warn', redis: 'up', rules: HIGH_LIMIT, conflict: true, requests: orderMix(tokens), expect: [200], target: { ratio: 0.45, p99: 5 }, countRedis: true },
    { id: 'es', title: 'conflict mix 80/20, everything in shadow', logLevel: 'warn', redis: 'up', rules: HIGH_LIMIT, conflict: true, shadow: true, requests: orderMix(tokens), expect: [200], countRedis: true },
    { id: 'ei', title: 'mix 80/10/10 + Idempotency-Key on POSTs', logLevel: 'warn', redis: 'up', rules: HIGH_LIMIT, conflict: true, idempotency: true, requests: orderMixIdempotent(tokens), expect: [200], countRedis: true },
  ];
}

function gateYaml(s: Scenario, storeUrl: string, prefix: string): string {
  return `# conflict-gate bench, scenario ${s.id}: ${s.title}
server: { trustedProxies: ["127.0.0.0/8", "::1/128"] }
store: { url: "${s.redis === 'none' ? 'memory' : storeUrl}", keyPrefix: "${prefix}" }
auth:
  jwksFile: jwks.json
  issuer: "${ISSUER}"
  audience: "${AUDIENCE}"
  algorithms: [ES256]
  requireScopes:
${s.conflict ? `    - { methods: [PUT, POST, PATCH, DELETE], path: "/api/orders/*", scopes: ["orders:write"]${s.shadow ? ', mode: shadow' : ''} }\n` : '    []\n'}rateLimit:
  onStoreError: memory
  mode: ${s.shadow ? 'shadow' : 'enforce'}
  rules: ${s.rules}
conflict:
  onStoreError: allow
  mode: ${s.shadow ? 'shadow' : 'enforce'}
  resources:${s.conflict ? '\n    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }' : ' []'}${s.idempotency ? '\n  idempotency:\n    - { methods: [POST], path: "/api/orders", require: true, inFlight: 30s, ttl: 10m }' : ''}
`.replace('requireScopes:\n    []', 'requireScopes: []');
}

// ---------------------------------------------------------------------------------------------

interface ScenarioResult {
  id: string;
  title: string;
  bare: LoadResult;
  gate: LoadResult;
  ratio: number;
  /** bare CPU µs per request / gate CPU µs per request: the throughput ratio if both saturated their core. */
  cpuRatio: number;
  target?: Scenario['target'];
  verdict: string;
  unexpected?: Record<string, number>;
  /** INFO commandstats over the measured run (commands inside Lua scripts included), and MONITOR of 200 decisions. */
  redis?: { perDecision: number; calls: Record<string, number>; perDecisionByCommand: Record<string, number>; trace?: Trace };
  gateRssMb?: number;
  profile?: ProfileSummary;
  /** CPU µs per request by area, gate vs bare (profiled runs only). */
  profileDiff?: ReturnType<typeof perRequestDiff>;
  /** Steady-rate mode: both driven at `rate` (half the gate's maximum), open loop. */
  steady?: { rate: number; bare: SteadyResult; gate: SteadyResult };
}

function verdictOf(s: Scenario, ratio: number, cpuRatio: number, gate: LoadResult): string {
  if (!s.target) return '';
  const parts: string[] = [];
  const t = s.target.ratio;
  if (t !== undefined) parts.push(`${ratio >= t ? 'ratio ok' : 'RATIO MISS'} (≥${t}; by cpu ${cpuRatio >= t ? 'ok' : 'miss'})`);
  if (s.target.p99 !== undefined) parts.push(gate.p99 <= s.target.p99 ? `p99 ok (≤${s.target.p99})` : `P99 MISS (>${s.target.p99})`);
  return parts.join(', ');
}

const pad = (v: string | number, n: number) => String(v).padStart(n);
const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

async function main(): Promise<void> {
  const stale = distStaleness();
  if (stale?.includes('missing')) {
    console.error(`bench: ${stale}`);
    process.exit(1);
  }
  const pinnedSelf = pinProcess(process.pid, LOAD_CPU);
  console.log(`conflict-gate bench — node ${process.version}, ${CORES} cores`);
  console.log(
    HAVE_TASKSET
      ? `pinning: bare and gate servers on core ${SERVER_CPU} (one at a time), load generator (autocannon, this process)${pinnedSelf ? '' : ' [pin failed]'} and our redis-server on core ${LOAD_CPU}`
      : 'pinning: taskset not found, nothing is pinned (figures are not "one core")',
  );
  console.log(`load: ${CONNECTIONS} connections, ${WARMUP} s warm-up + ${DURATION} s measured, per server and scenario`);
  if (stale) console.log(`warning: ${stale}`);

  // Keys, tokens, config directory.
  const key = await makeKey('ES256', 'bench-key');
  const tokens: string[] = [];
  for (let i = 0; i < CLIENTS; i++) tokens.push(await sign(key, { sub: `client-${i}`, scope: 'orders:read orders:write', exp: '2h' }));
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));

  // Redis: our own server (clean commandstats), or the one given.
  const own = env.BENCH_REDIS_URL ? null : await startOwnRedisServer(LOAD_CPU);
  const redisUrl = env.BENCH_REDIS_URL ?? own?.url ?? 'redis://127.0.0.1:6379/0';
  console.log(`redis: ${own ? `own redis-server on ${redisUrl} (pinned with the load generator)` : `${redisUrl} (shared: commandstats include other clients' commands)`}`);
  const deadPort = await freePort();
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let redisOk = true;
  try {
    await redis.connect();
  } catch {
    redisOk = false;
    console.log('warning: Redis does not answer; Redis scenarios are skipped');
  }
  const prefix = `cgbench:${randomBytes(4).toString('hex')}:`;
  if (redisOk) {
    const keys = keyLayout(prefix);
    for (let i = 1; i <= ORDERS; i++) await redis.set(keys.version(`orders:${i}`), SEEDED_VERSION);
  }

  const all = scenarios(tokens).filter((s) => (ONLY.length === 0 || ONLY.includes(s.id)) && (redisOk || s.redis !== 'up'));
  const results: ScenarioResult[] = [];
  const bareWindows = new Map<string, { fromMs: number; toMs: number }>();
  let bare: Proc | undefined;
  try {
    const bareProfDir = PROFILE ? join(ROOT, '.bench/prof/bare') : undefined;
    if (bareProfDir) {
      rmSync(bareProfDir, { recursive: true, force: true });
      mkdirSync(bareProfDir, { recursive: true });
    }
    bare = await startBare(SERVER_CPU, bareProfDir);
    for (const s of all) {
      process.stdout.write(`\n[${s.id}] ${s.title}\n`);
      const configFile = join(dir, `gate-${s.id}.yaml`);
      writeFileSync(configFile, gateYaml(s, redisUrl, prefix));
      const profDir = PROFILE ? join(ROOT, '.bench/prof', s.id) : undefined;
      if (profDir) {
        rmSync(profDir, { recursive: true, force: true });
        mkdirSync(profDir, { recursive: true });
      }
      const bareRes = await drive({ url: `http://127.0.0.1:${bare.port}`, connections: CONNECTIONS, durationS: DURATION, warmupS: WARMUP, requestsFor: s.requests, serverPid: bare.pid });
      console.log(`  bare: ${bareRes.rps} req/s  p50 ${fmt(bareRes.p50)} ms  p99 ${fmt(bareRes.p99)} ms  (server cpu ${bareRes.serverCpu} % = ${bareRes.cpuUsPerReq} µs/req, load gen cpu ${bareRes.loadCpu} %)`);

      const gate = await startGateProcess({
        configFile,
        cpu: SERVER_CPU,
        logLevel: s.logLevel,
        env: s.redis === 'down' ? { REDIS_URL: `redis://127.0.0.1:${deadPort}/0` } : {},
        cpuProfDir: profDir,
      });
      let before: Record<string, number> = {};
      let calls: Record<string, number> = {};
      let gateRes: LoadResult;
      let gateRssMb: number | undefined;
      let trace: Trace | undefined;
      let steady: ScenarioResult['steady'];
      try {
        // Warm-up first (token cache, JIT, Redis connection), then count commands over the measured run only.
        await drive({ url: `http://127.0.0.1:${gate.port}`, connections: CONNECTIONS, durationS: WARMUP, warmupS: 0, requestsFor: s.requests, serverPid: gate.pid });
        if (s.countRedis) before = await commandCalls(redis);
        gateRes = await drive({ url: `http://127.0.0.1:${gate.port}`, connections: CONNECTIONS, durationS: DURATION, warmupS: 0, requestsFor: s.requests, serverPid: gate.pid });
        if (s.countRedis) calls = callsDelta(before, await commandCalls(redis));
        if (STEADY) {
          // Half the gate's own maximum, for both: the tail a client sees at a rate the gate sustains.
          const rate = Math.max(100, Math.round(gateRes.rps / 2));
          const list = Array.from({ length: 32 }, (_, c) => s.requests(c)).flat();
          const at = (url: string) => steadyLoad(url, rate, DURATION, 2, list, STEADY_CONNECTIONS);
          const gateSteady = await at(`http://127.0.0.1:${gate.port}`);
          const bareSteady = await at(`http://127.0.0.1:${bare!.port}`);
          steady = { rate, bare: bareSteady, gate: gateSteady };
          const ok = gateSteady.p99 <= 2 * bareSteady.p99 && gateSteady.p999 <= 10;
          console.log(
            `  steady ${rate} req/s (open loop, up to ${STEADY_CONNECTIONS} connections; ${gateSteady.errors + bareSteady.errors} errors): bare p50 ${fmt(bareSteady.p50)} p99 ${fmt(bareSteady.p99)} p99.9 ${fmt(bareSteady.p999)} ms │ gate p50 ${fmt(gateSteady.p50)} p99 ${fmt(gateSteady.p99)} p99.9 ${fmt(gateSteady.p999)} ms` +
              ` → p99 ${round(gateSteady.p99 / bareSteady.p99, 2)}× bare (target ≤ 2), p99.9 ${gateSteady.p999 <= 10 ? 'ok' : 'MISS'} (≤ 10 ms)${ok ? '' : '  TARGET MISS'}`,
          );
          console.log(
            `  steady, from the time each request was written (the server's share): bare p50 ${fmt(bareSteady.fromSend.p50)} p99 ${fmt(bareSteady.fromSend.p99)} p99.9 ${fmt(bareSteady.fromSend.p999)} ms │ gate p50 ${fmt(gateSteady.fromSend.p50)} p99 ${fmt(gateSteady.fromSend.p99)} p99.9 ${fmt(gateSteady.fromSend.p999)} ms`,
          );
        }
        gateRssMb = round(rssMb(gate.pid), 1);
        if (s.countRedis) {
          const list = s.requests(0);
          trace = await traceDecisions(redisUrl, 200, async (i) => {
            const listed = list[i % list.length]!;
            const req = listed.setupRequest ? listed.setupRequest(listed) : listed;
            const res = await fetch(`http://127.0.0.1:${gate.port}${req.path}`, { method: req.method, headers: req.headers });
            await res.arrayBuffer();
          });
        }
      } finally {
        await gate.stop();
      }
      const ratio = round(gateRes.rps / bareRes.rps, 2);
      const cpuRatio = round(bareRes.cpuUsPerReq / gateRes.cpuUsPerReq, 2);
      const r: ScenarioResult = { id: s.id, title: s.title, bare: bareRes, gate: gateRes, ratio, cpuRatio, target: s.target, verdict: verdictOf(s, ratio, cpuRatio, gateRes), gateRssMb, steady };
      const unexpected = Object.fromEntries(Object.entries(gateRes.statuses).filter(([code]) => !s.expect.includes(Number(code))));
      if (Object.keys(unexpected).length > 0 || gateRes.errors > 0) r.unexpected = { ...unexpected, ...(gateRes.errors ? { errors: gateRes.errors } : {}) };
      if (s.countRedis) {
        const total = Object.values(calls).reduce((a, b) => a + b, 0);
        r.redis = {
          perDecision: round(total / gateRes.requests, 3),
          calls,
          perDecisionByCommand: Object.fromEntries(Object.entries(calls).map(([c, n]) => [c, round(n / gateRes.requests, 3)])),
          trace,
        };
      }
      console.log(
        `  gate: ${gateRes.rps} req/s  p50 ${fmt(gateRes.p50)} ms  p99 ${fmt(gateRes.p99)} ms  (server cpu ${gateRes.serverCpu} % = ${gateRes.cpuUsPerReq} µs/req, rss ${gateRssMb} MB)  statuses ${JSON.stringify(gateRes.statuses)}`,
      );
      console.log(`  ratio gate/bare: ${ratio} req/s, ${cpuRatio} by cpu per request${r.verdict ? `  ${r.verdict}` : ''}`);
      if (r.redis) {
        console.log(`  redis (INFO commandstats, measured run): ${r.redis.perDecision} commands per decision ${JSON.stringify(r.redis.perDecisionByCommand)}`);
        if (trace) console.log(`  redis (MONITOR, ${trace.decisions} decisions): ${trace.commandsPerDecision} commands sent + ${trace.scriptCommandsPerDecision} commands inside Lua per decision ${JSON.stringify(trace.byCommand)}`);
      }
      if (r.unexpected) console.log(`  warning: unexpected answers ${JSON.stringify(r.unexpected)}`);
      if (profDir) {
        const file = largestProfile(profDir);
        if (file) r.profile = summarize(join(profDir, file), 15, measuredWindow(gateRes, gate.spawnedAt));
      }
      results.push(r);
      bareWindows.set(s.id, measuredWindow(bareRes, bare.spawnedAt));
    }
  } finally {
    await bare?.stop();
    if (redisOk) await flushPrefix(redis, prefix).catch(() => undefined);
    redis.disconnect();
    await own?.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  if (PROFILE) printProfiles(results, bareWindows);

  // Token-cache memory check (in its own process, plain node, pinned).
  let memory: Record<string, unknown> | null = null;
  if (MEMORY_TOKENS > 0) {
    process.stdout.write(`\n[mem] ${MEMORY_TOKENS} distinct HS256 tokens through the gate's TokenVerifier (createDeps, default cache size), 32 in flight, own process on core ${SERVER_CPU}\n`);
    memory = await memoryCheck(MEMORY_TOKENS);
    if (memory) {
      const cps = (memory.checkpoints as { tokens: number; rssMb: number }[]).map((c) => `${c.tokens / 1000}k:${c.rssMb}`).join(' ');
      console.log(`  rss MB by tokens verified: ${cps}`);
      const last = (memory.checkpoints as { rssMb: number }[]).slice(-5).map((c) => c.rssMb);
      const flat = last.length > 0 && Math.max(...last) - Math.min(...last) <= 0.1 * Math.max(...last);
      const bounded = Number(memory.cachedTokens) <= Number(memory.cacheSize);
      // Retained = what is left once the garbage is collected: RSS after a full GC (V8 keeps some freed
      // pages, so this is an upper bound of the heap after GC). Final and peak RSS include garbage not yet collected.
      // null when the check ran without --expose-gc: then no verdict, never a pass.
      const retainedUnder150 = memory.rssAfterGcMb === null ? null : Number(memory.rssAfterGcMb) < 150;
      const finalUnder150 = Number(memory.rssMb) < 150;
      const peakUnder150 = Number(memory.maxRssMb) < 150;
      memory.verdict = { cacheBounded: bounded, rssFlatOverLastHalf: flat, retainedUnder150, finalUnder150, peakUnder150 };
      const under = (ok: boolean) => (ok ? 'under' : 'OVER');
      console.log(
        `  retained (rss after a full GC) ${String(memory.rssAfterGcMb)} MB, heap after full GC ${String(memory.heapAfterGcMb)} MB; final rss ${String(memory.rssMb)} MB, peak rss ${String(memory.maxRssMb)} MB (at start ${String(memory.startRssMb)} MB), ` +
          `cached tokens ${String(memory.cachedTokens)} of ${String(memory.cacheSize)}, ${String(memory.verifiesPerS)} verifies/s`,
      );
      console.log(
        `  → cache ${bounded ? 'bounded' : 'NOT BOUNDED'}; retained ${retainedUnder150 === null ? 'UNKNOWN (no --expose-gc)' : under(retainedUnder150)} 150 MB (the target); rss ${flat ? 'flat' : 'still moving'} over the last half (garbage between collections); final ${under(finalUnder150)} 150 MB, peak ${under(peakUnder150)} 150 MB (with garbage not yet collected)`,
      );
    }
  }

  // Summary table.
  console.log('\nsummary (req/s, latency ms; gate and bare each one process on one core)');
  console.log('ratio = gate req/s ÷ bare req/s in this run; cpu ratio = bare cpu µs/req ÷ gate cpu µs/req (what one saturated core would give)');
  const head = `${'scenario'.padEnd(42)} ${pad('bare rps', 8)} ${pad('p50', 5)} ${pad('p99', 6)} ${pad('µs/req', 6)} │ ${pad('gate rps', 8)} ${pad('p50', 5)} ${pad('p99', 6)} ${pad('µs/req', 6)} │ ${pad('ratio', 5)} ${pad('cpu', 5)}  target (on req/s ratio)`;
  console.log(head);
  console.log('─'.repeat(head.length + 10));
  for (const r of results) {
    console.log(
      `${`${r.id} ${r.title}`.slice(0, 42).padEnd(42)} ${pad(r.bare.rps, 8)} ${pad(fmt(r.bare.p50), 5)} ${pad(fmt(r.bare.p99), 6)} ${pad(r.bare.cpuUsPerReq.toFixed(1), 6)} │ ${pad(r.gate.rps, 8)} ${pad(fmt(r.gate.p50), 5)} ${pad(fmt(r.gate.p99), 6)} ${pad(r.gate.cpuUsPerReq.toFixed(1), 6)} │ ${pad(r.ratio.toFixed(2), 5)} ${pad(r.cpuRatio.toFixed(2), 5)}  ${r.verdict}`,
    );
  }
  for (const r of results) {
    if (!r.redis) continue;
    const t = r.redis.trace;
    console.log(`redis per decision [${r.id}]: ${r.redis.perDecision} commands (commandstats)${t ? `; ${t.commandsPerDecision} commands sent + ${t.scriptCommandsPerDecision} inside Lua (MONITOR) ${JSON.stringify(t.byCommand)}` : ''}`);
  }
  if (memory) console.log(`token cache: ${String(memory.tokens)} distinct tokens → retained ${String(memory.rssAfterGcMb)} MB (rss after a full GC), final rss ${String(memory.rssMb)} MB, peak ${String(memory.maxRssMb)} MB, heap after GC ${String(memory.heapAfterGcMb)} MB, cache ${String(memory.cachedTokens)}/${String(memory.cacheSize)} entries`);

  const out = {
    when: new Date().toISOString(),
    node: process.version,
    cores: CORES,
    pinning: HAVE_TASKSET ? { server: SERVER_CPU, load: LOAD_CPU, redis: own ? LOAD_CPU : 'unpinned' } : null,
    load: { connections: CONNECTIONS, durationS: DURATION, warmupS: WARMUP, clients: CLIENTS },
    redis: own ? 'own redis-server' : redisUrl,
    profiled: PROFILE,
    distWarning: stale,
    scenarios: results,
    memory,
  };
  // A full run owns results.json; a partial or profiled run writes beside it and leaves it alone.
  const partial = ONLY.length > 0 || PROFILE || MEMORY_TOKENS === 0;
  const name = partial ? `results-${ONLY.length > 0 ? ONLY.join('-') : 'all'}${PROFILE ? '-profile' : ''}${MEMORY_TOKENS === 0 ? '-nomem' : ''}.json` : 'results.json';
  mkdirSync(join(ROOT, '.bench'), { recursive: true });
  writeFileSync(join(ROOT, '.bench', name), JSON.stringify(out, null, 2) + '\n');
  console.log(`\nwritten: .bench/${name}`);
}

/** The main thread's profile (a loader worker, as tsx runs one, writes a small one of its own). */
function largestProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  return files.sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
}

/** The measured run in the child's profile clock, trimmed 200 ms each side. */
function measuredWindow(r: LoadResult, spawnedAt: number): { fromMs: number; toMs: number } {
  return { fromMs: r.window.start - spawnedAt + 200, toMs: r.window.end - spawnedAt - 200 };
}

function printProfiles(results: ScenarioResult[], bareWindows: Map<string, { fromMs: number; toMs: number }>): void {
  const bareDir = join(ROOT, '.bench/prof/bare');
  const bareFile = largestProfile(bareDir);
  for (const r of results) {
    if (!r.profile) continue;
    console.log(`\n[${r.id}] cpu profile of the gate, measured run only (.bench/prof/${r.id}/):\n${renderSummary(r.profile)}`);
    const w = bareWindows.get(r.id);
    if (!bareFile || !w) continue;
    const bareProfile = summarize(join(bareDir, bareFile), 15, w);
    r.profileDiff = perRequestDiff(r.profile, r.gate.requests, bareProfile, r.bare.requests);
    console.log('  cpu µs per request by area (gate vs bare; the first rows are what the gate adds):');
    for (const d of r.profileDiff) console.log(`    ${d.area.padEnd(36)} gate ${d.gateUs.toFixed(1).padStart(6)}  bare ${d.bareUs.toFixed(1).padStart(6)}  extra ${d.extraUs.toFixed(1).padStart(6)}`);
  }
}

function memoryCheck(count: number): Promise<Record<string, unknown> | null> {
  const [cmd, args] = pinned(SERVER_CPU, process.execPath, ['--expose-gc', join(ROOT, 'bench/token-memory.mjs'), '--count', String(count)]);
  return new Promise((resolve) => {
    const proc = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.once('exit', (code) => {
      if (code !== 0) {
        console.log(`  memory check failed (exit ${code}): ${err.slice(0, 500)}`);
        resolve(null);
        return;
      }
      resolve(JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>);
    });
  });
}

await main();
