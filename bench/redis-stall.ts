// `npx tsx bench/redis-stall.ts`: a stalled Redis (SIGSTOP: socket open, no replies) under load. Issue 13 item 7:
// does every request pay store.commandTimeout for the whole stall, or only those before the gate knows?
// One gate process (commandTimeout 250ms, rate limits falling back to memory, conflict allow) on core 0; autocannon
// and redis-server on core 1. Phases of --phase s each (default 5): Redis answering, Redis stopped, Redis resumed.
// BENCH_GATE_BIN=other/dist/main.js measures another build (e.g. the code before this change) the same way.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startOwnRedis } from '../test/helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign } from '../test/helpers/tokens.js';
import { drive, type AcRequest } from './lib/load.js';
import { GATE_BIN, pinProcess, startGateProcess } from './lib/procs.js';

const { values: f } = parseArgs({ options: { phase: { type: 'string' }, connections: { type: 'string' } } });
const PHASE = Math.max(1, Number(f.phase ?? process.env.STALL_PHASE ?? 5) || 5);
const CONNECTIONS = Math.max(1, Number(f.connections ?? process.env.STALL_CONNECTIONS ?? 32) || 32);
pinProcess(process.pid, '1');

const redis = await startOwnRedis();
const key = await makeKey('ES256');
const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => sign(key, { sub: `c${i}`, exp: '2h' })));
const dir = mkdtempSync(join(tmpdir(), 'cg-stall-'));
writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
const configFile = join(dir, 'gate.yaml');
writeFileSync(
  configFile,
  `server: { trustedProxies: ["127.0.0.0/8"] }
store: { url: "${redis.url}", keyPrefix: "cgstall:", commandTimeout: 250ms, connectTimeout: 500ms }
auth: { jwksFile: ${join(dir, 'jwks.json')}, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit: { onStoreError: memory, rules: [{ name: all, limit: 1000000000, window: 60s }] }
conflict:
  onStoreError: allow
  resources: [{ path: "/api/orders/:id", key: "orders:{id}", require: if-match }]
`,
);
const requestsFor = (conn: number): AcRequest[] =>
  tokens.map((t, j) => ({
    method: 'GET',
    path: '/auth',
    headers: { Authorization: `Bearer ${t}`, 'X-Forwarded-Method': j % 5 === 0 ? 'PUT' : 'GET', 'X-Forwarded-Uri': `/api/orders/${(conn + j) % 50}`, ...(j % 5 === 0 ? { 'If-Match': '"1"' } : {}) },
  }));

const gate = await startGateProcess({ configFile, cpu: '0', logLevel: 'warn' });
try {
  for (let i = 0; i < 100 && (await fetch(`http://127.0.0.1:${gate.port}/readyz?strict=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  console.log(`stalled Redis under load — ${GATE_BIN}; ${CONNECTIONS} connections, ${PHASE} s per phase, commandTimeout 250 ms`);
  // Beside the load, one client asking in sequence: how long into the stall do its requests still
  // pay the command timeout (≥ 200 ms), and how many do.
  const phase = async (name: string) => {
    const t0 = Date.now();
    let stop = false;
    const seen: { at: number; ms: number }[] = [];
    const probe = (async () => {
      const headers = { ...requestsFor(0)[1]!.headers } as Record<string, string>;
      while (!stop) {
        const s = Date.now();
        await (await fetch(`http://127.0.0.1:${gate.port}/auth`, { headers })).arrayBuffer();
        seen.push({ at: s - t0, ms: Date.now() - s });
      }
    })();
    const r = await drive({ url: `http://127.0.0.1:${gate.port}`, connections: CONNECTIONS, durationS: PHASE, warmupS: 0, requestsFor, serverPid: gate.pid });
    stop = true;
    await probe;
    const slow = seen.filter((x) => x.ms >= 200);
    const taxedFor = slow.length ? Math.max(...slow.map((x) => x.at + x.ms)) : 0;
    console.log(
      `${name.padEnd(16)} ${String(r.rps).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p90 ${r.p90.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  max ${r.max.toFixed(0)} ms  ` +
        `| sequential client: ${slow.length} of ${seen.length} requests ≥ 200 ms, the last ending ${taxedFor} ms into the phase  statuses ${JSON.stringify(r.statuses)}`,
    );
  };
  await drive({ url: `http://127.0.0.1:${gate.port}`, connections: CONNECTIONS, durationS: 2, warmupS: 0, requestsFor, serverPid: gate.pid });
  await phase('redis answering');
  redis.pause();
  await phase('redis stopped');
  redis.resume();
  await phase('redis resumed');
} finally {
  redis.resume();
  await gate.stop();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
