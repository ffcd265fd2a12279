// Redis adapter (ioredis): one Lua script per operation (EVALSHA via defineCommand), fail-fast client.
import { Redis, type ChainableCommander } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { keyLayout, type KeyLayout } from './keys.js';
import { limiterOf } from './limiter.js';
import { STORE_DOWN, STORE_NOT_READY, StoreError, type ClaimResult, type ClaimView, type IdempotencyBegin, type IdempotencyEnd, type IdempotencyRecord, type Limiter, type LimiterSpec, type PublishResult, type StoreHealth, type VersionStore } from './port.js';
import { defineIdempotency, IdempotencyOps, sendIdempotency } from './redis-idempotency.js';

/** Turns a client failure (ioredis, rate-limiter-flexible) into a StoreError; never leaks the raw message. */
export function toStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/timed out/i.test(msg)) return new StoreError('timeout', 'store command timed out');
  if (/enableOfflineQueue|not ready|Connection is closed|writeable/i.test(msg)) return new StoreError('not_ready', 'store is not connected');
  if (/^(MOVED|ASK|CROSSSLOT|CLUSTERDOWN)\b/.test(msg)) return new StoreError('cluster', 'store answered with a cluster redirection');
  if (/ERR|NOSCRIPT|script/i.test(msg)) return new StoreError('script', 'store script error');
  return new StoreError('other', 'store error');
}

// Ordered versions (`12`, `2.4.1`) compare component by component as big integers; `1.0` == `1`.
// This is core/versions.ts#compareOrdered in Lua: publish-if-newer must be atomic in Redis.
const LUA_ORDER = `
local function ordered(s)
  if not s or s == '' then return false end
  for part in (s .. '.'):gmatch('([^.]*)%.') do
    if not part:match('^%d+$') then return false end
  end
  return true
end
local function cmpPart(a, b)
  a = a:gsub('^0+(%d)', '%1'); b = b:gsub('^0+(%d)', '%1')
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function cmp(a, b)
  local pa, pb = {}, {}
  for p in (a .. '.'):gmatch('([^.]*)%.') do pa[#pa + 1] = p end
  for p in (b .. '.'):gmatch('([^.]*)%.') do pb[#pb + 1] = p end
  for i = 1, math.max(#pa, #pb) do
    local c = cmpPart(pa[i] or '0', pb[i] or '0')
    if c ~= 0 then return c end
  end
  return 0
end
`;

/** KEYS: ver, claim. ARGV: leaseMs, token. → {version|nil, 'taken'|'held', remainingMs} */
const LUA_CLAIM = `
local v = redis.call('GET', KEYS[1])
local bound = v or ''
local c = redis.call('GET', KEYS[2])
if c then
  local sep = string.find(c, ':', 1, true)
  if sep and string.sub(c, sep + 1) == bound then
    return {v, 'held', redis.call('PTTL', KEYS[2])}
  end
end
redis.call('SET', KEYS[2], ARGV[2] .. ':' .. bound, 'PX', ARGV[1])
return {v, 'taken', 0}
`;

/** KEYS: ver, claim. → {version|nil, remainingMs (0 when free)}: what LUA_CLAIM would find, taking nothing. */
const LUA_PEEK_CLAIM = `
local v = redis.call('GET', KEYS[1])
local bound = v or ''
local c = redis.call('GET', KEYS[2])
if c then
  local sep = string.find(c, ':', 1, true)
  if sep and string.sub(c, sep + 1) == bound then
    return {v, redis.call('PTTL', KEYS[2])}
  end
end
return {v, 0}
`;

/** KEYS: claim. ARGV: token. */
const LUA_RELEASE = `
local c = redis.call('GET', KEYS[1])
if c and string.sub(c, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then redis.call('DEL', KEYS[1]) end
return 0
`;

/** KEYS: ver, claim. ARGV: version, ttlMs (0: no expiry). → {'ok'|'stale', previous|nil} */
const LUA_PUBLISH = `${LUA_ORDER}
local cur = redis.call('GET', KEYS[1])
if cur and ordered(ARGV[1]) and ordered(cur) and cmp(ARGV[1], cur) < 0 then
  return {'stale', cur}
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('DEL', KEYS[2])
return {'ok', cur}
`;

/**
 * Commands issued during one turn of the event loop, across requests, go to Redis as one pipeline:
 * one write(2) for the lot instead of one per request (ioredis' own autopipelining batches only
 * within one tick, and every request arrives in its own I/O callback). Costs one setImmediate of
 * latency; each command keeps its own reply, error and commandTimeout.
 */
class Batcher {
  // `add` queues its command on a pipeline, or (given the client itself) sends it and returns its promise.
  private queue: { add: (p: ChainableCommander) => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;

  constructor(private readonly client: Redis) {}

  run<T>(add: (p: ChainableCommander) => unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ add, resolve: resolve as (v: unknown) => void, reject });
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
    if (batch.length === 1) {
      // Alone in its turn: a pipeline would only add its own bookkeeping.
      const only = batch[0]!;
      Promise.resolve(only.add(this.client as unknown as ChainableCommander)).then(only.resolve, only.reject);
      return;
    }
    const pipeline = this.client.pipeline();
    for (const item of batch) item.add(pipeline);
    pipeline.exec().then(
      (results) => {
        batch.forEach((item, i) => {
          const [err, value] = results?.[i] ?? [new Error('no reply'), undefined];
          if (err) item.reject(err);
          else item.resolve(value);
        });
      },
      (err: unknown) => batch.forEach((item) => item.reject(err)),
    );
  };
}

interface ScriptPipeline extends ChainableCommander {
  cgClaim(ver: string, claim: string, leaseMs: number, token: string): ScriptPipeline;
  rlflxIncr(args: string[]): ScriptPipeline;
}

interface ScriptClient extends Redis {
  cgClaim(ver: string, claim: string, leaseMs: number, token: string): Promise<[string | null, 'taken' | 'held', number]>;
  cgPeekClaim(ver: string, claim: string): Promise<[string | null, number]>;
  cgRelease(claim: string, token: string): Promise<number>;
  cgPublish(ver: string, claim: string, version: string, ttlMs: number): Promise<['ok' | 'stale', string | null]>;
}

const HEALTH_PING_MS = 1000;
/** Unhealthy once no PING has been answered for this long (two missed pings and a margin). */
const HEALTH_STALE_MS = 2500;

export interface RedisStoreOptions {
  url: string;
  keyPrefix: string;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  /** Told of connection errors (already rate-limited by ioredis' reconnect backoff). */
  onConnectionError?: (message: string) => void;
}

export class RedisStore implements VersionStore {
  readonly kind = 'redis' as const;
  readonly client: ScriptClient;
  private readonly keys: KeyLayout;
  private readonly batcher: Batcher;
  private readonly healthTimer: NodeJS.Timeout;
  private readonly idem: IdempotencyOps;
  private lastAnswerAt = 0;

  constructor(opts: RedisStoreOptions) {
    this.keys = keyLayout(opts.keyPrefix);
    const client = new Redis(opts.url, {
      // Fail fast: no queueing while disconnected, a bound on every command.
      enableOfflineQueue: false,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: opts.connectTimeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      lazyConnect: false,
      // After a refused connection the old socket never emits 'close'; do not hold shutdown for 2 s.
      disconnectTimeout: 200,
    });
    client.on('error', (err: Error) => opts.onConnectionError?.(err.message));
    client.defineCommand('cgClaim', { numberOfKeys: 2, lua: LUA_CLAIM });
    client.defineCommand('cgPeekClaim', { numberOfKeys: 2, lua: LUA_PEEK_CLAIM });
    client.defineCommand('cgRelease', { numberOfKeys: 1, lua: LUA_RELEASE });
    client.defineCommand('cgPublish', { numberOfKeys: 2, lua: LUA_PUBLISH });
    defineIdempotency(client);
    this.client = client as ScriptClient;
    this.batcher = new Batcher(client);
    this.idem = new IdempotencyOps((key, args) => this.run(() => this.batcher.run((p) => sendIdempotency(p, key, args))), this.keys);
    // Health: a connected socket is not an answering server (a stopped or overloaded Redis keeps
    // the socket open). A PING every second, bounded by commandTimeout, keeps isHealthy() honest.
    client.on('ready', () => (this.lastAnswerAt = Date.now()));
    this.healthTimer = setInterval(() => {
      if (client.status !== 'ready') return;
      client.ping().then(
        () => (this.lastAnswerAt = Date.now()),
        () => undefined,
      );
    }, HEALTH_PING_MS);
    this.healthTimer.unref();
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    if (this.client.status !== 'ready') throw STORE_NOT_READY;
    if (!this.answering()) throw STORE_DOWN;
    try {
      return await op();
    } catch (err) {
      throw toStoreError(err);
    }
  }

  getVersion(key: string): Promise<string | null> {
    return this.run(() => this.batcher.run<string | null>((p) => p.get(this.keys.version(key))));
  }

  async claim(key: string, leaseMs: number, token: string): Promise<ClaimResult> {
    const [version, state, ttl] = await this.run(() =>
      this.batcher.run<[string | null, 'taken' | 'held', number]>((p) => (p as ScriptPipeline).cgClaim(this.keys.version(key), this.keys.claim(key), leaseMs, token)),
    );
    return {
      version: version ?? null,
      claim: state === 'held' ? { kind: 'held', remainingMs: Math.max(Number(ttl), 1) } : { kind: 'taken' },
    };
  }

  async peekClaim(key: string): Promise<ClaimView> {
    const [version, ttl] = await this.run(() => this.client.cgPeekClaim(this.keys.version(key), this.keys.claim(key)));
    const remainingMs = Number(ttl);
    return { version: version ?? null, claim: remainingMs > 0 ? { kind: 'held', remainingMs } : { kind: 'free' } };
  }

  async release(key: string, token: string): Promise<void> {
    await this.run(() => this.client.cgRelease(this.keys.claim(key), token));
  }

  async endClaim(key: string): Promise<void> {
    await this.run(() => this.client.del(this.keys.claim(key)));
  }

  async publish(key: string, version: string, ttlMs = 0): Promise<PublishResult> {
    const [state, other] = await this.run(() => this.client.cgPublish(this.keys.version(key), this.keys.claim(key), version, ttlMs));
    return state === 'stale' ? { kind: 'stale', current: other! } : { kind: 'published', previous: other ?? null };
  }

  async remove(key: string): Promise<boolean> {
    const [[, removed]] = (await this.run(() => this.client.multi().del(this.keys.version(key)).del(this.keys.claim(key)).exec())) as [[null, number], [null, number]];
    return removed > 0;
  }

  beginIdempotent(scope: string, fingerprint: string, token: string, inFlightMs: number, ttlMs: number): Promise<IdempotencyBegin> {
    return this.idem.begin(scope, fingerprint, token, inFlightMs, ttlMs);
  }

  peekIdempotent(scope: string): Promise<IdempotencyRecord | null> {
    return this.idem.peek(scope);
  }

  endIdempotent(scope: string, forget?: boolean): Promise<IdempotencyEnd> {
    return this.idem.end(scope, forget);
  }

  rearmIdempotent(scope: string, heldBy: string, token: string, inFlightMs: number): Promise<boolean> {
    return this.idem.rearm(scope, heldBy, token, inFlightMs);
  }

  abandonIdempotent(scope: string, token: string, keep?: boolean): Promise<void> {
    return this.idem.abandon(scope, token, keep);
  }

  async remember(id: string, value: string, ttlMs: number): Promise<void> {
    await this.run(() => this.client.set(this.keys.replay(id), value, 'PX', ttlMs));
  }

  recall(id: string): Promise<string | null> {
    return this.run(() => this.client.get(this.keys.replay(id)));
  }

  limiter(spec: LimiterSpec): Limiter {
    const rlf = new RateLimiterRedis({
      storeClient: this.limiterClient(),
      keyPrefix: this.keys.rateLimit(spec.rule),
      points: spec.points,
      duration: spec.durationS,
      rejectIfRedisNotReady: true,
      // Once Redis says a client is over, answer locally until its window ends (no round trip).
      inMemoryBlockOnConsumed: spec.points + 1,
    });
    const inner = limiterOf(rlf, spec.points, spec.durationS, (err) => {
      throw toStoreError(err);
    });
    // Known down: fail at once rather than through rate-limiter-flexible's own error path.
    const guard = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => (...a: A): Promise<R> => (this.available() ? f(...a) : Promise.reject(this.client.status === 'ready' ? STORE_DOWN : STORE_NOT_READY));
    return { consume: guard(inner.consume), peek: guard(inner.peek), refund: guard(inner.refund) };
  }

  /**
   * What rate-limiter-flexible sees as its ioredis client: the real one for defining its Lua
   * script and for the connection state, with its consume script sent through the batcher.
   * consume() and reward() call `rlflxIncr`, get() calls `multi().get().pttl().exec()`; delete and
   * block are not called by the gate.
   */
  private limiterClient(): unknown {
    const client = this.client;
    const batcher = this.batcher;
    return {
      get status() {
        return client.status;
      },
      defineCommand: (name: string, def: { numberOfKeys: number; lua: string }) => client.defineCommand(name, def),
      multi: () => client.multi(),
      rlflxIncr: (args: string[]) => batcher.run((p) => (p as ScriptPipeline).rlflxIncr(args)),
    };
  }

  /** A health PING was answered recently (a connected socket is not an answering server). */
  private answering(): boolean {
    return Date.now() - this.lastAnswerAt < HEALTH_STALE_MS;
  }

  available(): boolean {
    return this.client.status === 'ready' && this.answering();
  }

  health(): StoreHealth {
    if (this.client.status !== 'ready') return { up: false, reason: 'not connected' };
    if (!this.answering()) return { up: false, reason: 'not answering health pings' };
    return { up: true };
  }

  async ping(): Promise<boolean> {
    try {
      // Not through run(): a ping is how a store that stopped answering is found answering again.
      if (this.client.status !== 'ready') return false;
      const pong = (await this.client.ping()) === 'PONG';
      if (pong) this.lastAnswerAt = Date.now();
      return pong;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.healthTimer);
    // Not connected: stop the reconnect loop now. Connected: QUIT lets queued replies arrive.
    if (this.client.status !== 'ready') {
      this.client.disconnect();
      return;
    }
    const timer = setTimeout(() => this.client.disconnect(), 1000);
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    } finally {
      clearTimeout(timer);
    }
  }
}
