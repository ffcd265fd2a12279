// Latency samples in microseconds and their percentiles (autocannon's own histogram is whole-millisecond).

export class Samples {
  private buf = new Float64Array(1 << 16);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = ms;
  }

  get count(): number {
    return this.n;
  }

  /** Percentiles (0..100) in ms; NaN when empty. */
  percentiles(ps: readonly number[]): number[] {
    if (this.n === 0) return ps.map(() => NaN);
    const sorted = this.buf.slice(0, this.n).sort();
    return ps.map((p) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]!);
  }
}

export const round = (x: number, digits = 2): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/** A numeric bench option: the flag, else the env variable, else `fallback`; anything not a finite number ≥ 0 is `fallback`. */
export function numberOption(flag: string | undefined, envValue: string | undefined, fallback: number): number {
  const v = Number(flag ?? envValue ?? fallback);
  return Number.isFinite(v) && v >= 0 ? v : fallback;
}
