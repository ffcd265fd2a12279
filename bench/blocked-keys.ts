// `npx tsx bench/blocked-keys.ts`: the cost of remembering one more blocked client (issue 13 item 5), with N already
// blocked: rate-limiter-flexible's own in-memory block (inMemoryBlockOnConsumed, which sweeps its whole map on
// every insert past 999 keys) against the store's BlockedKeys (src/store/blocked.ts: bounded, O(1)).
import { createRequire } from 'node:module';
import { BlockedKeys } from '../src/store/blocked.js';

// rate-limiter-flexible's component, as RateLimiterStoreAbstract uses it for inMemoryBlockOnConsumed.
const RlfBlockedKeys = createRequire(import.meta.url)('rate-limiter-flexible/lib/component/BlockedKeys') as new () => { addMs(key: string, ms: number): void; msBeforeExpire(key: string): number };

const key = (i: number) => `ip:2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::`;
console.log('µs per new blocked client, with N clients already blocked (each blocked for 60 s)');
console.log(`${'N'.padStart(8)} ${'rate-limiter-flexible'.padStart(22)} ${'BlockedKeys'.padStart(12)}`);
for (const n of [500, 1_000, 2_000, 5_000, 10_000, 50_000]) {
  // Median of 5 runs (a fresh map each), 500 inserts measured after N: the machine may be shared.
  const measure = (make: () => { add(k: string): void }) => {
    const runs: number[] = [];
    for (let r = 0; r < 5; r++) {
      const b = make();
      for (let i = 0; i < n; i++) b.add(key(i));
      const extra = 500;
      const t = performance.now();
      for (let i = n; i < n + extra; i++) b.add(key(i));
      runs.push(((performance.now() - t) * 1000) / extra);
    }
    return runs.sort((a, b) => a - b)[2]!;
  };
  const rlf = measure(() => {
    const b = new RlfBlockedKeys();
    return { add: (k) => b.addMs(k, 60_000) };
  });
  const ours = measure(() => {
    const b = new BlockedKeys(10_000);
    return { add: (k) => b.block(k, 60_000) };
  });
  console.log(`${String(n).padStart(8)} ${rlf.toFixed(2).padStart(22)} ${ours.toFixed(2).padStart(12)}`);
}
