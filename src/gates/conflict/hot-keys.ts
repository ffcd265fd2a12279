// The hottest resource keys by conflict denials, per replica: a space-saving top-k (bounded memory, no labels in metrics).
import type { Metrics } from '../../obs/metrics.js';

export interface HotKey {
  key: string;
  /** Denials counted for the key (an over-estimate by at most `error`). */
  count: number;
  /** How much of `count` may belong to keys it replaced (space-saving's guarantee: count - error ≤ true count ≤ count). */
  error: number;
}

/**
 * Metwally, Agrawal and El Abbadi's space-saving: at most `capacity` counters; a new key takes the
 * place of the smallest one and inherits its count as its error bound. Every key whose true count
 * is above total/capacity is guaranteed to be present. Denials are rare next to traffic, so the
 * linear scan for the smallest counter (only when full and the key is new) costs nothing that matters.
 */
export class HotKeys {
  private readonly counts = new Map<string, { count: number; error: number }>();
  private total = 0;
  readonly since = Date.now();

  constructor(readonly capacity = 256) {}

  add(key: string): void {
    this.total++;
    const hit = this.counts.get(key);
    if (hit) {
      hit.count++;
      return;
    }
    if (this.counts.size < this.capacity) {
      this.counts.set(key, { count: 1, error: 0 });
      return;
    }
    let minKey = '';
    let min = Infinity;
    for (const [k, c] of this.counts) {
      if (c.count < min) {
        min = c.count;
        minKey = k;
      }
    }
    this.counts.delete(minKey);
    this.counts.set(key, { count: min + 1, error: min });
  }

  /** The `n` keys with the highest counts, highest first. */
  top(n: number): HotKey[] {
    return [...this.counts.entries()]
      .map(([key, c]) => ({ key, count: c.count, error: c.error }))
      .sort((a, b) => b.count - a.count || a.key.localeCompare(b.key))
      .slice(0, n);
  }

  /** Denials counted since the start (all keys, tracked or not). */
  get totalCount(): number {
    return this.total;
  }
}

// One per Metrics instance, that is per process (tests make their own): a reload builds new gates,
// and the counts must outlive them, as the Prometheus counters do.
const byMetrics = new WeakMap<Metrics, HotKeys>();

/** The replica's hot-key counter (the conflict gate adds to it; admin GET /conflicts/top reads it). */
export function hotKeysOf(metrics: Metrics): HotKeys {
  let h = byMetrics.get(metrics);
  if (!h) byMetrics.set(metrics, (h = new HotKeys()));
  return h;
}
