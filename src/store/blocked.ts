// Clients known to be over their limit until a given time: answered locally, bounded, O(1) per call.

/**
 * rate-limiter-flexible's own `inMemoryBlockOnConsumed` sweeps its whole map on every insert once
 * 1000 keys are blocked (measured: 3 977 → 833 req/s with a fresh IPv6 address every two requests).
 * This one is a Map in insertion order: an insert past `max` drops the oldest entry, a lookup drops
 * an expired one. Dropping a live entry costs only a round trip (Redis still holds the count), never
 * a wrong answer.
 */
export class BlockedKeys {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds `key` stays blocked, or 0. */
  remainingMs(key: string): number {
    const until = this.until.get(key);
    if (until === undefined) return 0;
    const ms = until - this.now();
    if (ms > 0) return ms;
    this.until.delete(key);
    return 0;
  }

  block(key: string, ms: number): void {
    if (ms <= 0) return;
    this.until.delete(key);
    if (this.until.size >= this.max) this.until.delete(this.until.keys().next().value!);
    this.until.set(key, this.now() + ms);
  }

  unblock(key: string): void {
    this.until.delete(key);
  }

  get size(): number {
    return this.until.size;
  }
}
