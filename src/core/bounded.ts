// Bounded maps that forget their oldest entries (insertion order) in chunks: the eviction every cache here needs.

/**
 * Makes room in `map` for one more entry when it holds `max` or more: deletes its oldest entries
 * (insertion order), `max / 64` of them at once (at least one), calling `dropped` for each.
 *
 * Why in chunks: V8 finds a Map's first entry by skipping every entry deleted since the table was
 * last rehashed, so deleting the oldest one by one (`map.keys().next()` per insert) costs a walk
 * over thousands of holes each time: 5.2 µs per insert at 10 000 entries and 17 µs at 50 000,
 * paid by every new token and every new client; in chunks, 0.7–0.8 µs (`npx tsx bench/map-evict.ts`).
 * The map holds between 63/64 of `max` and `max` once full.
 */
export function makeRoom<K, V>(map: Map<K, V>, max: number, dropped?: (key: K, value: V) => void): void {
  if (map.size < max) return;
  dropOldest(map, map.size - max + chunkOf(max), dropped);
}

/** How many entries a bound of `n` forgets at once: n / 64, at least one. */
export function chunkOf(n: number): number {
  return Math.max(1, n >> 6);
}

/** Deletes the `count` oldest entries of `map` (insertion order) in one walk, calling `dropped` for each. */
export function dropOldest<K, V>(map: Map<K, V>, count: number, dropped?: (key: K, value: V) => void): void {
  if (count <= 0) return;
  for (const [key, value] of map) {
    map.delete(key);
    dropped?.(key, value);
    if (--count === 0) return;
  }
}
