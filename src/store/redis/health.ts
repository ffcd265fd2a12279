// Per-master health: who answers, who is known down or hung (the hot path skips those), and each one's clock.
import type { RedisConnection } from './connect.js';
import type { Redis } from 'ioredis';
import { replyCode, within, WRITE_REFUSALS } from './errors.js';

/** Probe period while every master answers, and while one does not (so recovery is seen within this). */
const PROBE_EVERY_MS = 1000;
const PROBE_DOWN_EVERY_MS = 200;
/** A master that has answered nothing for this long is down even if no call has failed (two missed probes and a margin). */
const STALE_MS = 2500;
/** What a probe that got no answer in time rejects with. */
const PROBE_TIMEOUT = new Error('probe timed out');
/**
 * A script that writes nothing but is treated as one that may (Redis 7 reads the shebang: no
 * `no-writes`, no `allow-oom` flag), so Redis refuses to run it exactly when it refuses writes: out of
 * memory under `noeviction` (OOM), a replica (READONLY), a failed save with stop-writes-on-bgsave-error
 * (MISCONF). TIME answers in all of these; the gate's increments and claims do not.
 */
const WRITE_CHECK = '#!lua\nreturn 1';

/** A refusal of writes that makes the node down, not only its writes: a replica's (versions come from masters only). */
const isReplica = (refusal: string | undefined): boolean => refusal?.startsWith('READONLY') === true;

/** A clock sample whose round trip took longer than this is too imprecise to keep. */
const CLOCK_SAMPLE_MAX_RTT_MS = 50;

interface NodeState {
  /** Last time the node answered anything (a probe or a command); 0 until then. */
  answeredAt: number;
  /** Why the node is known down (a probe failed, a command timed out with nothing answered since); undefined while up. */
  down?: string;
  /**
   * Why the node refuses writes (Redis' words), set and cleared only by a write check. It still
   * serves reads: a full Redis still answers the version reads that keep stale writes out, so only
   * the writing calls meet the fail modes (each with its own refusal). A replica (READONLY) is down
   * besides: versions are read from masters only.
   */
  refusing?: string;
  /** A write check is part of the probe in flight. */
  probingWrites?: boolean;
  /** Redis clock − this process' clock, from the best recent TIME sample. */
  offsetMs: number;
  /** The probe in flight, if any (a second caller waits for it rather than sending another). */
  probing: Promise<boolean> | undefined;
}

export interface HealthEvents {
  /** A master turned down (with why) or up again: once per transition, for a log line. */
  onChange?: (node: string, down: string | undefined) => void;
  /** A master started refusing writes (with Redis' words) or accepts them again: once per transition. */
  onWrites?: (node: string, refusal: string | undefined) => void;
}

/**
 * A master is usable while it answers. It turns down at once when a command times out with nothing
 * answered since it was sent, or when a probe fails or times out; the hot path then skips it (the
 * gate applies its fail mode without waiting commandTimeout), and probes every 200 ms until it
 * answers again. Probes are TIME commands on the connection the commands use (a server stuck
 * behind a slow command is as hung for the gate as a stopped one); their answers also give each
 * master's clock offset, which bounds claim deadlines (scripts.ts).
 */
export class Health {
  private readonly nodes = new Map<string, NodeState>();
  private timer: NodeJS.Timeout | undefined;
  private lastRound = 0;
  private nextAt = 0;
  private closed = false;

  constructor(
    private readonly conn: RedisConnection,
    private readonly probeTimeoutMs: number,
    private readonly events: HealthEvents = {},
  ) {
    this.schedule(0);
  }

  private state(node: string): NodeState {
    let s = this.nodes.get(node);
    if (!s) this.nodes.set(node, (s = { answeredAt: 0, offsetMs: 0, probing: undefined }));
    return s;
  }

  /** Something from `node` arrived: it answers (a replica that refuses writes stays down until a write check passes). */
  answered(node: string, at = Date.now()): void {
    const s = this.state(node);
    s.answeredAt = at;
    if (s.down !== undefined && !isReplica(s.refusing)) {
      s.down = undefined;
      this.events.onChange?.(node, undefined);
    }
  }

  /** What a write check found: Redis' refusal, or undefined (it writes). */
  private writes(node: string, refusal: string | undefined): void {
    const s = this.state(node);
    // A replica's READONLY is told as the node down (markDown below), not as a refusal of writes.
    const told = (r: string | undefined) => r !== undefined && !isReplica(r);
    if (told(s.refusing) !== told(refusal)) this.events.onWrites?.(node, told(refusal) ? refusal : undefined);
    s.refusing = refusal;
    if (isReplica(refusal)) this.markDown(node, `refusing writes (${refusal}): a replica, and versions are read from masters only`);
  }

  /** A command to `node` got no answer within its deadline (sent at `sentAt`). */
  timedOut(node: string, sentAt: number): void {
    const s = this.state(node);
    if (s.answeredAt > sentAt) return; // it answered something since: slow once, not hung
    this.markDown(node, 'not answering (a command timed out)');
    this.probe(node);
  }

  /** The connection to `node` closed: down until it answers again. */
  lost(node: string, why: string): void {
    if (!this.closed) this.markDown(node, why);
  }

  private markDown(node: string, why: string): void {
    const s = this.state(node);
    const was = s.down;
    s.down = why;
    if (was === undefined) this.events.onChange?.(node, why);
    this.schedule(PROBE_DOWN_EVERY_MS);
  }

  /** Why `node` must not be asked now, or undefined when it may be. A node never probed yet may be asked. */
  downReason(node: string, now = Date.now()): string | undefined {
    const s = this.nodes.get(node);
    if (!s) return undefined;
    if (s.down !== undefined) return s.down;
    if (s.answeredAt !== 0 && now - s.answeredAt > STALE_MS) return `not answering for ${Math.round((now - s.answeredAt) / 1000)} s`;
    return undefined;
  }

  /** The first down master and why, or undefined when every master answers. */
  anyDown(now = Date.now()): { node: string; why: string } | undefined {
    for (const { node, client } of this.conn.masters()) {
      if (!client && this.conn.mode === 'cluster') return { node, why: 'not connected' };
      const why = this.downReason(node, now);
      if (why !== undefined) return { node, why };
    }
    return undefined;
  }

  /** The first master that refuses writes and Redis' words, or undefined. */
  anyRefusing(): { node: string; why: string } | undefined {
    for (const { node } of this.conn.masters()) {
      const why = this.nodes.get(node)?.refusing;
      if (why !== undefined) return { node, why: `refusing writes (${why})` };
    }
    return undefined;
  }

  /** Redis' clock minus ours for `node` (0 until a TIME sample arrives). */
  offsetMs(node: string): number {
    return this.nodes.get(node)?.offsetMs ?? 0;
  }

  /** Probes every master now (with the write check when `checkWrites`); true when all answered. */
  async probeAll(checkWrites = false): Promise<boolean> {
    const masters = this.conn.masters();
    if (masters.length === 0) return false;
    const results = await Promise.all(masters.map(({ node }) => this.probe(node, checkWrites)));
    return results.every(Boolean);
  }

  /**
   * One TIME on `node`'s connection (and ROLE in Sentinel mode), bounded by the probe timeout. With
   * `checkWrites`, and always while the node refuses writes, a write check beside it (pipelined;
   * see NodeState#refusing). It runs at each connect and when a call met a refusal, not every
   * second: the hot path's own writes find a refusal, and each then asks for one.
   */
  probe(node: string, checkWrites = false): Promise<boolean> {
    const s = this.state(node);
    // A write check asked for while a plain probe is in flight runs after it, not never.
    if (s.probing) return checkWrites && !s.probingWrites ? s.probing.then(() => this.probe(node, true)) : s.probing;
    if (this.closed) return Promise.resolve(false);
    const target = this.conn.masters().find((m) => m.node === node)?.client;
    if (!this.conn.ready()) return Promise.resolve(false);
    if (!target) {
      // A cluster master the client holds no connection to (it dropped): ask the cluster for its
      // slot map again; once a replica is promoted its slots name another node.
      this.markDown(node, 'not connected');
      if (this.conn.mode === 'cluster') (this.conn.client as { refreshSlotsCache(): void }).refreshSlotsCache();
      return Promise.resolve(false);
    }
    const sent = Date.now();
    const checkingWrites = checkWrites || s.refusing !== undefined;
    const checks = Promise.all([target.time(), checkingWrites ? refusesWrites(target) : null, this.conn.stillMaster ? this.conn.stillMaster() : true]);
    s.probingWrites = checkingWrites;
    s.probing = within(checks, this.probeTimeoutMs, PROBE_TIMEOUT).then(
      ([t, refusal, master]) => {
        const received = Date.now();
        if (!master) {
          this.markDown(node, 'the node connected to is no longer the master (a failover demoted it): reconnecting');
          return false;
        }
        if (refusal !== null) {
          this.writes(node, refusal);
          if (isReplica(refusal)) return false;
        }
        this.answered(node, received);
        // TIME: [seconds, microseconds] (ioredis passes them as strings or numbers).
        const [sec, usec] = (t as unknown[]).map(Number) as [number, number];
        if (received - sent <= CLOCK_SAMPLE_MAX_RTT_MS) s.offsetMs = sec * 1000 + Math.floor(usec / 1000) - (sent + received) / 2;
        return true;
      },
      (err: unknown) => {
        this.markDown(node, err === PROBE_TIMEOUT ? 'not answering (health probe timed out)' : 'not reachable');
        return false;
      },
    ).finally(() => {
      s.probing = undefined;
      s.probingWrites = false;
    });
    return s.probing;
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    const at = Math.max(Date.now(), this.lastRound + ms);
    // Only ever bring the next round closer.
    if (this.timer && this.nextAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.nextAt = at;
    this.timer = setTimeout(() => void this.round(), at - Date.now());
    this.timer.unref();
  }

  private async round(): Promise<void> {
    this.timer = undefined;
    this.lastRound = Date.now();
    if (this.conn.ready()) await this.probeAll().catch(() => false);
    // Forget masters that no longer hold slots (a failover moved them on).
    const current = new Set(this.conn.masters().map((m) => m.node));
    for (const node of this.nodes.keys()) if (!current.has(node)) this.nodes.delete(node);
    this.schedule(this.anyDown() ? PROBE_DOWN_EVERY_MS : PROBE_EVERY_MS);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

/** Redis' refusal of a write on `client` (its first line: `OOM command not allowed …`), or undefined when it writes (or cannot tell: a Redis before 7 without script flags). */
function refusesWrites(client: Redis): Promise<string | undefined> {
  return client.eval(WRITE_CHECK, 0).then(
    () => undefined,
    (err: unknown) => {
      const code = replyCode(err);
      if (code === undefined || !WRITE_REFUSALS.has(code)) return undefined;
      return (err as Error).message.split('\n')[0]!.replace(/\.$/, '');
    },
  );
}
