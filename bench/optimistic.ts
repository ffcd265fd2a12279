// `npm run bench:optimistic`: the client helper end to end (optimisticWrite through Caddy + the gate in claim mode
// + an upstream with no concurrency control): applied, lost, retries, waits, elapsed.
// Flags (or env): --clients (OPT_CLIENTS, 16), --increments (OPT_INCREMENTS, 40), --counters (OPT_COUNTERS, 4),
// --delay ms (OPT_DELAY_MS, 5: the upstream's race window), --max-wait ms (OPT_MAX_WAIT_MS, 100: the helper's cap
// on one wait), --attempts (OPT_ATTEMPTS, 400: requests per logical write), --lease (OPT_LEASE, 5s).
// Needs caddy, Redis on 127.0.0.1:6379 and a built dist/ (npm run build).
import { parseArgs } from 'node:util';
import { CADDY_BIN, describeOptimistic, runOptimistic } from './lib/optimistic-sim.js';
import { numberOption } from './lib/stats.js';

const { values: f } = parseArgs({
  options: {
    clients: { type: 'string' },
    increments: { type: 'string' },
    counters: { type: 'string' },
    delay: { type: 'string' },
    'max-wait': { type: 'string' },
    attempts: { type: 'string' },
    lease: { type: 'string' },
  },
});
const env = process.env;
if (!CADDY_BIN) {
  console.error('bench:optimistic needs caddy (apt-get install caddy)');
  process.exitCode = 2;
} else {
  const o = {
    clients: Math.max(1, numberOption(f.clients, env.OPT_CLIENTS, 16)),
    increments: Math.max(1, numberOption(f.increments, env.OPT_INCREMENTS, 40)),
    counters: Math.max(1, numberOption(f.counters, env.OPT_COUNTERS, 4)),
    writeDelayMs: numberOption(f.delay, env.OPT_DELAY_MS, 5),
    maxWaitMs: numberOption(f['max-wait'], env.OPT_MAX_WAIT_MS, 100),
    maxAttempts: Math.max(1, numberOption(f.attempts, env.OPT_ATTEMPTS, 400)),
    lease: f.lease ?? env.OPT_LEASE ?? '5s',
  };
  console.log(
    `client helper: ${o.clients} clients × ${o.increments} read-modify-write increments on ${o.counters} counters through Caddy (${CADDY_BIN}) ` +
      `and the gate (claim mode, lease ${o.lease}, an Idempotency-Key rule on PUT); upstream applies a PUT ${o.writeDelayMs} ms after receiving it and checks nothing; ` +
      `optimisticWrite with maxWaitMs ${o.maxWaitMs}, maxAttempts ${o.maxAttempts}`,
  );
  const r = await runOptimistic(o);
  console.log(describeOptimistic(r));
  console.log(`per counter: ${r.perCounter.map((c) => `${c.id}=${c.value} (v${c.version})`).join(', ')}`);
}
