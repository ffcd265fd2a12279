// The client helper end to end: 16 API consumers × 40 read-modify-write increments through real Caddy (the shipped
// Caddyfile), the gate (CLI, claim mode, an Idempotency-Key rule) and an upstream with no concurrency control.
import { describe, expect, test } from 'vitest';
import { CADDY_BIN, describeOptimistic, runOptimistic } from '../../bench/lib/optimistic-sim.js';

const missing = !CADDY_BIN;
if (missing) {
  const why = 'caddy is not installed: the client-helper run through Caddy cannot run (apt-get install caddy).';
  if (process.env.CI === 'true') throw new Error(why);
  console.warn(`!!! ${why} Skipped.`);
}

describe.skipIf(missing)('optimisticWrite through Caddy + the gate in claim mode', () => {
  test('16 clients × 40 increments: all 640 applied, none lost; retries and waits reported', { timeout: 240_000 }, async () => {
    const r = await runOptimistic({ clients: 16, increments: 40, counters: 4, writeDelayMs: 5, maxWaitMs: 100, maxAttempts: 400 });
    console.log(describeOptimistic(r));
    expect(r.failed).toBe(0);
    expect(r.applied).toBe(640);
    expect(r.finalSum).toBe(640);
    expect(r.lost).toBe(0);
    expect(r.overlaps).toBe(0); // the gate never let two writes on one counter reach the upstream at once
    // Every logical write was one successful write, plus the retries the gate's answers asked for.
    expect(r.totals.writes).toBe(640 + r.totals.rereads + r.totals.resends);
    expect(r.totals.reads).toBe(640 + r.totals.rereads + r.totals.readRetries);
    expect(r.totals.attempts).toBe(r.totals.reads + r.totals.writes);
    // 16 clients on 4 counters contend: the gate refused concurrent writes and the helper retried them.
    expect(r.totals.rereads).toBeGreaterThan(0);
    expect(r.totals.answers['409 write_in_progress'] ?? 0).toBeGreaterThan(0);
    // Each successful write ended its key's in-flight state through the client library.
    expect(r.keysEnded).toBe(640);
  });
});

