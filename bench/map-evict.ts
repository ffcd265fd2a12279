// The cost of a bounded cache's insert once full: the oldest entry deleted one at a time
// (`map.keys().next()`, which walks V8's deleted slots) against core/bounded.ts' makeRoom (in chunks).
//   npx tsx bench/map-evict.ts [sizes, default 10000,50000]
import { makeRoom } from '../src/core/bounded.js';

const ROUNDS = 200_000;
for (const n of (process.argv[2] ?? '10000,50000').split(',').map(Number)) {
  const oneByOne = new Map<string, number>();
  const chunked = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    oneByOne.set(`k${i}`, i);
    chunked.set(`k${i}`, i);
  }
  let t = performance.now();
  for (let i = n; i < n + ROUNDS; i++) {
    if (oneByOne.size >= n) oneByOne.delete(oneByOne.keys().next().value!);
    oneByOne.set(`k${i}`, i);
  }
  const single = ((performance.now() - t) * 1000) / ROUNDS;
  t = performance.now();
  for (let i = n; i < n + ROUNDS; i++) {
    makeRoom(chunked, n);
    chunked.set(`k${i}`, i);
  }
  const chunk = ((performance.now() - t) * 1000) / ROUNDS;
  console.log(`${n} entries: one by one ${single.toFixed(2)} µs per insert, makeRoom ${chunk.toFixed(2)} µs per insert`);
}
