// Commands from many requests, batched per event-loop turn into one write per master, each bounded by a deadline.
import { ReplyError, type Redis } from 'ioredis';
import { ONLY_MASTER, type RedisConnection } from './connect.js';
import { REDIRECTS, replyCode, STORE_TIMEOUT } from './errors.js';
import type { Commands } from './scripts.js';

interface Item {
  key: string;
  add: (c: Commands) => unknown;
  /** rate-limiter-flexible's increment arguments ([key, points, secDuration, …]), when mergeable. */
  incr: string[] | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  done: boolean;
}

export interface BatcherHooks {
  /** `node` answered (a reply or an error reply) at `at`. */
  answered(node: string, at: number): void;
  /** A command sent to `node` at `sentAt` got no answer within the deadline. */
  timedOut(node: string, sentAt: number): void;
}

const NO_REPLY = new Error('no reply in the pipeline');
const UNKNOWN_NODE = '?';

/**
 * Commands issued during one turn of the event loop, across requests, go to Redis in one write(2)
 * per master instead of one per request (ioredis' own autopipelining batches only within one tick,
 * and every request arrives in its own I/O callback): on one node or Sentinel, sent one by one on
 * the corked socket; in a cluster, as a pipeline per master. A command alone for its master is sent
 * as is. Costs one setImmediate of latency.
 *
 * Redis Cluster: a pipeline never mixes masters (ioredis would refuse it, and Redis would answer
 * CROSSSLOT to a multi-key command): commands are grouped by the master that serves their key's
 * slot now. When slots move between the grouping and the reply, a command answered MOVED, ASK or
 * TRYAGAIN (none of which ran it) is sent again alone through the cluster client, which follows
 * the redirection. Each decision stays one round trip unless its slot is moving.
 *
 * Rate-limit increments (one key each) are merged further, one node and Sentinel only: all the
 * increments of a batch go as one cgIncrMany script call instead of one EVALSHA each, which saves
 * ioredis' per-command work (its command object, argument encoding, reply promise). Redis runs
 * them in the same order, with the same result per key. A failed script (a key of the wrong type)
 * fails the increments merged with it.
 *
 * Every command settles within `timeoutMs` of its flush (the store's commandTimeout): ioredis
 * bounds a command once a node has it, but not the redirections and retries before that.
 */
export class Batcher {
  private queue: Item[] = [];
  private scheduled = false;
  private readonly cluster: boolean;

  constructor(
    private readonly conn: RedisConnection,
    private readonly timeoutMs: number,
    private readonly hooks: BatcherHooks,
  ) {
    this.cluster = conn.mode === 'cluster';
  }

  /**
   * Queues one command on `key`; `add` issues it on what it is given (a pipeline, or the client).
   * `incr`: the command is rate-limiter-flexible's increment with these arguments, and may be merged.
   */
  run<T>(key: string, add: (c: Commands) => unknown, incr?: string[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ key, add, incr, resolve: resolve as (v: unknown) => void, reject, done: false });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    const sentAt = Date.now();
    let pending = batch.length;
    const nodes = new Map<Item, string>();
    const timer = setTimeout(() => {
      const late = new Set<string>();
      for (const item of batch) {
        if (item.done) continue;
        item.done = true;
        late.add(this.cluster ? (nodes.get(item) ?? UNKNOWN_NODE) : ONLY_MASTER);
        item.reject(STORE_TIMEOUT);
      }
      for (const node of late) if (node !== UNKNOWN_NODE) this.hooks.timedOut(node, sentAt);
    }, this.timeoutMs);
    const settle = (item: Item, err: unknown, value?: unknown) => {
      if (item.done) return;
      item.done = true;
      if (--pending === 0) clearTimeout(timer);
      if (err) item.reject(err);
      else item.resolve(value);
    };
    const answered = (node: string, err: unknown) => {
      if (node !== UNKNOWN_NODE && (!err || err instanceof ReplyError)) this.hooks.answered(node, Date.now());
    };
    const alone = (item: Item, node: string) => {
      let p: Promise<unknown>;
      try {
        p = Promise.resolve(item.add(this.conn.client as unknown as Commands));
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (v) => (answered(node, null), settle(item, null, v)),
        (e: unknown) => (answered(node, e), settle(item, e)),
      );
    };
    /** The increments among `items`, merged into one command (one node and Sentinel only: `corked`'s). */
    const merged = (items: Item[]): Item | undefined => {
      const incrs = items.filter((i) => i.incr !== undefined);
      if (incrs.length < 2) return undefined;
      // The keys in order, and their (points, secDuration) as runs of equal ones: (count, points, secDuration)…
      const keys: string[] = [];
      const runs: (string | number)[] = [];
      for (const { incr } of incrs) {
        const [key, points, sec] = incr!;
        keys.push(key!);
        const n = runs.length;
        if (n > 0 && runs[n - 2] === points && runs[n - 1] === sec) (runs[n - 3] as number)++;
        else runs.push(1, points!, sec!);
      }
      const one: Item = { key: keys[0]!, add: (c) => c.cgIncrMany(keys.length, ...keys, ...runs), incr: undefined, resolve: () => undefined, reject: () => undefined, done: false };
      // Its reply settles each increment with its own {consumed, pttl}, or all with its error.
      one.resolve = (v) => {
        // A reply of any other shape (never seen) fails the increments rather than the process.
        if (!Array.isArray(v) || v.length !== 2 * incrs.length) return one.reject(NO_REPLY);
        incrs.forEach((item, j) => settle(item, null, [v[2 * j], v[2 * j + 1]]));
      };
      one.reject = (e) => {
        for (const item of incrs) settle(item, e);
      };
      // Settled itself (one more to wait for), it settles each of them.
      pending += 1;
      return one;
    };
    /**
     * One node and Sentinel: the increments merged, then each command goes to the client on its own
     * while the connection's socket is corked, so the lot still leaves in one write(2). An ioredis
     * Pipeline would do the same write, but its objects outlive the young generation (`node
     * --trace-gc-nvp` on a bare loop of 32-GET pipelines: ~3.6 MB promoted per scavenge; the same GETs
     * corked, none). Under the mix, half of the ~530 KB the gate promoted per scavenge (for the rest,
     * src/cli/v8-flags.ts).
     */
    const corked = (given: Item[]) => {
      const one = merged(given);
      const items = one ? [...given.filter((i) => i.incr === undefined), one] : given;
      if (items.length === 1) return alone(items[0]!, ONLY_MASTER);
      const socket = (this.conn.client as Redis).stream as Redis['stream'] | undefined;
      socket?.cork();
      try {
        for (const item of items) alone(item, ONLY_MASTER);
      } finally {
        socket?.uncork();
      }
    };
    /**
     * A cluster's commands for one master, as a pipeline (corking would need that master's own
     * connection, which the cluster client does not hand out per call).
     */
    const pipelined = (items: Item[], node: string) => {
      if (items.length === 1) return alone(items[0]!, node);
      const pipeline = this.conn.client.pipeline() as Commands;
      for (const item of items) item.add(pipeline);
      pipeline.exec().then(
        (results) => {
          let any = false;
          items.forEach((item, i) => {
            const [err, value] = results?.[i] ?? [NO_REPLY, undefined];
            if (!err || err instanceof ReplyError) any = true;
            if (err && !item.done && REDIRECTS.has(replyCode(err) ?? '')) alone(item, UNKNOWN_NODE);
            else settle(item, err, value);
          });
          if (any) this.hooks.answered(node, Date.now());
        },
        // Refused as a whole (its slots moved to several masters meanwhile): one by one.
        () => items.forEach((item) => alone(item, UNKNOWN_NODE)),
      );
    };

    if (!this.cluster) {
      corked(batch);
      return;
    }
    const groups = new Map<string, Item[]>();
    for (const item of batch) {
      const node = this.conn.nodeOf(item.key);
      if (node === undefined) {
        alone(item, UNKNOWN_NODE);
        continue;
      }
      nodes.set(item, node);
      const group = groups.get(node);
      if (group) group.push(item);
      else groups.set(node, [item]);
    }
    for (const [node, items] of groups) pipelined(items, node);
  };
}
