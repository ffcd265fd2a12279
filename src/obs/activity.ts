// Recent activity for the admin console: bounded rings fed by the same record() call that feeds /metrics.
import { DENY, type Deny } from '../core/decision.js';
import type { Step } from '../core/step.js';
import type { Metrics } from './metrics.js';
import type { DecisionEvent, DecisionRecorder } from './recorder.js';

/** One bucket of the decision-rate rings. */
export const BUCKET_MS = 10_000;
/** 90 buckets of 10 s: the last 15 minutes. */
export const WINDOW_BUCKETS = 90;
/** Denials kept, newest first. */
export const RECENT_DENIALS = 200;
/** Shadowed denials kept, newest first. */
export const RECENT_SHADOWED = 50;
/** Resource keys tracked for the conflict top list (Space-Saving: the heavy hitters survive eviction). */
export const CONFLICT_KEYS_TRACKED = 256;
/** Longest path, client id or resource key kept; longer ones are cut (they come from clients). */
export const TEXT_MAX = 512;

/** `allow`, an enforced `deny`, a `shadow`ed denial (the request was allowed), a `replay` served from a kept denial. */
export type Outcome = 'allow' | 'deny' | 'shadow' | 'replay';

/** One decision series: the labels of `conflict_gate_decisions_total` (or of the shadow counter), with its counts. */
export interface SeriesSnapshot {
  outcome: Outcome;
  /** '' for an allow or a replay. */
  gate: string;
  code: string;
  /** Since the process started: the same number /metrics reports. */
  total: number;
  /** Per 10 s bucket, oldest first, the last one still filling. */
  counts: number[];
}

/** A denial as the console lists it. Paths are normalised (never the query); no token, no header value. */
export interface DenialEntry {
  at: number;
  gate: string;
  code: string;
  /** The answer's status; for a shadowed denial, the status enforce would have given. */
  status: number;
  /** The rule that denied, as written in the config; null when no rule did (a bad forwarded request). */
  rule: string | null;
  method: string | null;
  path: string | null;
  /** The token's client id; null on public routes and before auth ran. */
  clientId: string | null;
  clientIp: string | null;
}

/** A resource key among the hottest by conflict denials (this replica, since it started). */
export interface ConflictKeyEntry {
  key: string;
  /** The resource pattern that gave the key. */
  rule: string | null;
  /** Enforced and shadowed conflict denials seen since the key was last taken into the list. */
  denied: number;
  shadowed: number;
  /** Per code, the same span. */
  codes: Record<string, number>;
  /**
   * The count the key inherited when it displaced the least-denied key of a full list: its true
   * count is between `denied + shadowed` and that plus `error` (0: exact since the process started).
   */
  error: number;
  lastAt: number;
}

export interface ActivitySnapshot {
  now: number;
  /** When this activity started counting (the process start, in practice). */
  since: number;
  bucketMs: number;
  /** Start of the oldest bucket in `counts`. */
  from: number;
  series: SeriesSnapshot[];
  denials: DenialEntry[];
  shadowed: DenialEntry[];
  conflicts: ConflictKeyEntry[];
}

interface Bucket {
  idx: number;
  allow: number;
  /** Series key → count, for every series but allow. */
  other: Map<string, number>;
}

/** Fixed-size ring, newest first when read. */
class Ring<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  constructor(private readonly size: number) {
    this.items = new Array<T | undefined>(size);
  }
  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.size;
  }
  newestFirst(): T[] {
    const out: T[] = [];
    for (let i = 1; i <= this.size; i++) {
      const item = this.items[(this.next - i + this.size) % this.size];
      if (item === undefined) break;
      out.push(item);
    }
    return out;
  }
}

/**
 * The hottest keys in bounded memory (Metwally et al., "Space-Saving"): when the list is full, a new
 * key replaces the least-counted one and inherits its count as an upper bound of its own error. A key
 * denied more often than 1/capacity of all conflict denials is always in the list.
 */
class TopKeys {
  private readonly entries = new Map<string, ConflictKeyEntry & { count: number }>();
  constructor(private readonly capacity: number) {}

  add(key: string, rule: string | null, code: string, shadow: boolean, at: number): void {
    let e = this.entries.get(key);
    if (!e) {
      let floor = 0;
      if (this.entries.size >= this.capacity) {
        let min: (ConflictKeyEntry & { count: number }) | undefined;
        for (const x of this.entries.values()) if (min === undefined || x.count < min.count) min = x;
        this.entries.delete(min!.key);
        floor = min!.count;
      }
      e = { key, rule, count: floor, error: floor, denied: 0, shadowed: 0, codes: {}, lastAt: at };
      this.entries.set(key, e);
    }
    e.count++;
    if (shadow) e.shadowed++;
    else e.denied++;
    e.codes[code] = (e.codes[code] ?? 0) + 1;
    e.rule = rule;
    e.lastAt = at;
  }

  top(n: number): ConflictKeyEntry[] {
    return [...this.entries.values()]
      .sort((a, b) => b.count - a.count || b.lastAt - a.lastAt)
      .slice(0, n)
      .map(({ count: _count, codes, ...rest }) => ({ ...rest, codes: { ...codes } }));
  }
}

const ALLOW = 'allow||';
const REPLAY = 'replay||';
const seriesKey = (outcome: Outcome, gate: string, code: string) => `${outcome}|${gate}|${code}`;
const clip = (s: string | null | undefined): string | null => (s === undefined || s === null ? null : s.length > TEXT_MAX ? `${s.slice(0, TEXT_MAX)}…` : s);

/**
 * Conflict denials that name a resource: a stale or missing precondition, a held lease. A store
 * outage (store_unavailable) and a malformed path parameter say nothing about contention.
 */
const CONTENTION = new Set(['precondition_failed', 'stale_client_version', 'write_in_progress', 'precondition_required']);

/**
 * Decisions of the last 15 minutes in 10 s buckets by outcome, gate and code; totals since start;
 * the last 200 denials; the last 50 shadowed denials; the hottest resource keys by conflict denials.
 * Every structure is bounded: series by the finite set of gates and codes, the rest by size.
 */
export class Activity {
  private readonly buckets: Bucket[] = [];
  /** Allows are most of the traffic: a plain number, no map lookup per allow. */
  private allowTotal = 0;
  private readonly totals = new Map<string, number>();
  private readonly denials = new Ring<DenialEntry>(RECENT_DENIALS);
  private readonly shadowed = new Ring<DenialEntry>(RECENT_SHADOWED);
  private readonly conflicts = new TopKeys(CONFLICT_KEYS_TRACKED);
  readonly since: number;

  constructor(private readonly now: () => number = Date.now) {
    this.since = now();
    for (let i = 0; i < WINDOW_BUCKETS; i++) this.buckets.push({ idx: -1, allow: 0, other: new Map() });
  }

  private bucket(at: number): Bucket {
    const idx = Math.floor(at / BUCKET_MS);
    const b = this.buckets[idx % WINDOW_BUCKETS]!;
    if (b.idx !== idx) {
      b.idx = idx;
      b.allow = 0;
      b.other.clear();
    }
    return b;
  }

  private count(b: Bucket, key: string): void {
    b.other.set(key, (b.other.get(key) ?? 0) + 1);
    this.totals.set(key, (this.totals.get(key) ?? 0) + 1);
  }

  /** One answered /auth request: the event DecisionRecorder.record received. */
  record(e: DecisionEvent): void {
    const at = this.now();
    const b = this.bucket(at);
    if (e.shadowed.length > 0) {
      for (const s of e.shadowed) {
        this.count(b, seriesKey('shadow', s.gate, s.code));
        const step = e.steps.find((x) => x.shadowed === s);
        this.shadowed.push(this.entry(e, s, step, at));
        this.noteConflict(s, step, true, at);
      }
    }
    if (e.outcome === 'allow') {
      b.allow++;
      this.allowTotal++;
      return;
    }
    const d = e.deny;
    if (!d) return;
    this.count(b, seriesKey('deny', d.gate, d.code));
    const step = e.steps.find((x) => x.decision === d);
    this.denials.push({ ...this.entry(e, d, step, at), status: e.status });
    this.noteConflict(d, step, false, at);
  }

  /** An nginx replay answered from a kept denial (counted when it was first decided). */
  replayed(): void {
    this.count(this.bucket(this.now()), REPLAY);
  }

  private entry(e: DecisionEvent, d: Deny, step: Step | undefined, at: number): DenialEntry {
    return {
      at,
      gate: d.gate,
      code: d.code,
      status: d.status ?? DENY[d.code].status,
      rule: step?.rule ?? null,
      method: clip(e.method),
      path: clip(e.path),
      clientId: clip(e.clientId),
      clientIp: clip(e.clientIp),
    };
  }

  private noteConflict(d: Deny, step: Step | undefined, shadow: boolean, at: number): void {
    if (d.gate !== 'conflict' || !CONTENTION.has(d.code) || step === undefined) return;
    const key = step.seen.key;
    if (typeof key === 'string') this.conflicts.add(clip(key)!, step.rule, d.code, shadow, at);
  }

  /** Everything the console shows, as of now. */
  snapshot(topConflicts = 20): ActivitySnapshot {
    const now = this.now();
    const cur = Math.floor(now / BUCKET_MS);
    const first = cur - WINDOW_BUCKETS + 1;
    const window: (Bucket | undefined)[] = [];
    for (let idx = first; idx <= cur; idx++) {
      const b = this.buckets[((idx % WINDOW_BUCKETS) + WINDOW_BUCKETS) % WINDOW_BUCKETS]!;
      window.push(b.idx === idx ? b : undefined);
    }
    const series: SeriesSnapshot[] = [];
    for (const [key, total] of [[ALLOW, this.allowTotal] as const, ...this.totals]) {
      const [outcome, gate, code] = key.split('|') as [Outcome, string, string];
      const counts = window.map((b) => (b === undefined ? 0 : key === ALLOW ? b.allow : (b.other.get(key) ?? 0)));
      series.push({ outcome, gate, code, total, counts });
    }
    return {
      now,
      since: this.since,
      bucketMs: BUCKET_MS,
      from: first * BUCKET_MS,
      series,
      denials: this.denials.newestFirst(),
      shadowed: this.shadowed.newestFirst(),
      conflicts: this.conflicts.top(topConflicts),
    };
  }
}

const byMetrics = new WeakMap<Metrics, Activity>();

/**
 * The activity that goes with a Metrics registry: one per registry, so the console's counts and
 * /metrics are fed by the same record() call, and both listeners reach it through the Metrics they
 * already share. The first caller's clock is kept.
 */
export function activityOf(metrics: Metrics, now: () => number = Date.now): Activity {
  let a = byMetrics.get(metrics);
  if (!a) byMetrics.set(metrics, (a = new Activity(now)));
  return a;
}

/**
 * Decorates a recorder so every decision it records (metrics and log line) is also noted in
 * `activity`, right after, in the same call. The recorder is returned, patched in place.
 */
export function recordActivity(recorder: DecisionRecorder, activity: Activity): DecisionRecorder {
  const record = recorder.record.bind(recorder);
  const replayServed = recorder.replayServed.bind(recorder);
  recorder.record = (e: DecisionEvent) => {
    record(e);
    activity.record(e);
  };
  recorder.replayServed = (...args: Parameters<DecisionRecorder['replayServed']>) => {
    replayServed(...args);
    activity.replayed();
  };
  return recorder;
}
