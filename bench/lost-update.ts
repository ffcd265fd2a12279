// `npm run bench:conflict`: the lost-update simulation in three modes (no gate, If-Match at the edge, claim mode).
// Flags (or env): --clients (LOST_CLIENTS, 20), --increments (LOST_INCREMENTS, 25), --counters (LOST_COUNTERS, 3),
// --delay ms (LOST_DELAY_MS, 10), --attempts (LOST_ATTEMPTS, 500), --fail-every N (LOST_FAIL_EVERY, 10; 0 = never),
// --store memory|redis://…|cluster:host:port,host:port (LOST_STORE, default redis://127.0.0.1:6379/0; falls back to memory
// when Redis is down; a cluster is given by its seed nodes).
import { createConnection } from 'node:net';
import { parseArgs } from 'node:util';
import { describeResult, runLostUpdate, type Mode, type SimResult } from './lib/lost-update-sim.js';
import { numberOption } from './lib/stats.js';

const { values: f } = parseArgs({
  options: {
    clients: { type: 'string' },
    increments: { type: 'string' },
    counters: { type: 'string' },
    delay: { type: 'string' },
    attempts: { type: 'string' },
    'fail-every': { type: 'string' },
    store: { type: 'string' },
  },
});
const env = process.env;
const clients = numberOption(f.clients, env.LOST_CLIENTS, 20);
const increments = numberOption(f.increments, env.LOST_INCREMENTS, 25);
const counters = Math.max(1, numberOption(f.counters, env.LOST_COUNTERS, 3));
const writeDelayMs = numberOption(f.delay, env.LOST_DELAY_MS, 10);
const maxAttempts = Math.max(1, numberOption(f.attempts, env.LOST_ATTEMPTS, 500));
const failEvery = numberOption(f['fail-every'], env.LOST_FAIL_EVERY, 10);
let store = f.store ?? env.LOST_STORE ?? 'redis://127.0.0.1:6379/0';

function redisAnswers(url: string): Promise<boolean> {
  const u = url.startsWith('cluster:') ? new URL(`redis://${url.slice('cluster:'.length).split(',')[0]}`) : new URL(url);
  return new Promise((resolve) => {
    const s = createConnection({ host: u.hostname, port: Number(u.port || 6379) });
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(false));
    s.once('connect', () => (s.destroy(), resolve(true)));
  });
}
if (store !== 'memory' && !(await redisAnswers(store))) {
  console.log(`note: ${store} does not answer; using the in-memory store`);
  store = 'memory';
}

console.log(
  `lost-update simulation: ${clients} clients × ${increments} read-modify-write increments on ${counters} counters; ` +
    `upstream applies a PUT ${writeDelayMs} ms after receiving it and checks nothing; declines every ${failEvery || '—'}th write; ` +
    `store ${store === 'memory' ? 'memory' : store}; up to ${maxAttempts} attempts per increment`,
);
console.log('(a client re-reads and retries after 409/412 with 1–20 ms jitter, not the Retry-After second)\n');

const results: SimResult[] = [];
const labels: Record<Mode, string> = { none: 'no gate', gate: 'gate, If-Match at the edge (claim off)', claim: 'gate, claim mode' };
for (const mode of ['none', 'gate', 'claim'] as const) {
  const r = await runLostUpdate({ mode, clients, increments, counters, writeDelayMs, maxAttempts, failEvery, store });
  results.push(r);
  console.log(`[${labels[mode]}]`);
  console.log(`  ${describeResult(r)}`);
  console.log(`  counters ${r.perCounter.map((c) => `${c.id}=${c.value}@v${c.version}`).join(' ')}`);
}

console.log('\nsummary');
console.log(`${'mode'.padEnd(40)} ${'writes ok'.padStart(9)} ${'final sum'.padStart(9)} ${'lost'.padStart(6)} ${'gave up'.padStart(7)}`);
for (const r of results) console.log(`${labels[r.mode].padEnd(40)} ${String(r.successfulWrites).padStart(9)} ${String(r.finalSum).padStart(9)} ${String(r.lost).padStart(6)} ${String(r.gaveUp).padStart(7)}`);
const claim = results.find((r) => r.mode === 'claim')!;
const ok = claim.lost === 0 && claim.successfulWrites > 0;
console.log(ok ? '\nclaim mode: zero lost updates (final counters == successful writes)' : `\nCLAIM MODE LOST ${claim.lost} UPDATES`);
process.exitCode = ok ? 0 : 1;
