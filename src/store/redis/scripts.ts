// The store's Lua scripts (one atomic round trip per operation), defined on a client with defineCommand (EVALSHA).
import type { ChainableCommander, Cluster, Redis } from 'ioredis';

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

/**
 * KEYS: ver, claim. ARGV: leaseMs, token, deadline (ms since the epoch, on Redis' clock).
 * → {version|nil, 'taken'|'held'|'late', remainingMs}
 *
 * The deadline is when the gate stops waiting for this answer. A claim that reaches Redis later
 * (a hung Redis that resumes, a command re-sent after a failover) takes nothing and answers
 * 'late': the gate has already applied its fail mode to that write, and a lease nobody waits for
 * would block the resource for a whole lease. Worked example, commandTimeout 250 ms: the gate sends
 * the claim at t=0 with deadline t=250 and Redis is stopped (SIGSTOP); at t=250 the gate gives up
 * (conflict.onStoreError); at t=4000 Redis resumes and runs the claim, sees 4000 > 250, and leaves
 * the resource free for the next writer.
 *
 * A claim key with no expiry (PTTL -1) was not written by a gate, which always sets one: it is no
 * lease, and is replaced by one (else a raw SET of it would block the resource forever).
 */
const LUA_CLAIM = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local v = redis.call('GET', KEYS[1])
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[3]) then
  return {v, 'late', 0}
end
local bound = v or ''
local c = redis.call('GET', KEYS[2])
if c then
  local sep = string.find(c, ':', 1, true)
  local ms = redis.call('PTTL', KEYS[2])
  if sep and string.sub(c, sep + 1) == bound and ms > 0 then
    return {v, 'held', ms}
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
  local ms = redis.call('PTTL', KEYS[2])
  if sep and string.sub(c, sep + 1) == bound and ms > 0 then
    return {v, ms}
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
 * rate-limiter-flexible 11's consume script (RateLimiterRedis' incrTtlLuaScript), verbatim. The
 * facade (rlf-client.ts) merges a batch's increments into one LUA_INCR_MANY only while the script
 * RateLimiterRedis defines is this one: an upgrade that changes it turns merging off, not wrong.
 */
export const RLF_INCR_LUA = `redis.call('set', KEYS[1], 0, 'EX', ARGV[2], 'NX') \
local consumed = redis.call('incrby', KEYS[1], ARGV[1]) \
local ttl = redis.call('pttl', KEYS[1]) \
if ttl == -1 then \
  redis.call('expire', KEYS[1], ARGV[2]) \
  ttl = 1000 * ARGV[2] \
end \
return {consumed, ttl} \
`;

/**
 * RLF_INCR_LUA on each of KEYS in turn, as a pipeline of them would run it (the same key twice
 * counts twice). KEYS: k1..kn. ARGV: runs of (count, points, secDuration), in key order: the first
 * `count` keys take the first run's points and window, and so on (a batch's increments mostly share
 * theirs: one run, three arguments, where a pair per key made Redis build 2n Lua strings).
 * → {consumed1, pttl1, … consumedN, pttlN}. Many keys in one command: one-node and Sentinel only
 * (in a Cluster the keys of one batch live in many slots).
 *
 * The same outcome in two calls per key where RLF_INCR_LUA makes three: its `SET k 0 EX sec NX`
 * only gives a new key its window before INCRBY, which the `ttl == -1` branch does here (a key
 * INCRBY has just created has no expiry yet). Same count, same expiry, the same key with no expiry
 * mended the same way; a new key's pttl is reported as the window (RLF_INCR_LUA reads it back, a
 * millisecond less at most). Redis spent ~86 µs per call of ~19 keys with the SET (INFO
 * commandstats under `compare`'s mix): the SET was the dearest of the three, and the gate waits for
 * this call with every decision of its batch.
 */
const LUA_INCR_MANY = `
local out = {}
local i = 1
for r = 1, #ARGV, 3 do
  local points, sec = ARGV[r + 1], ARGV[r + 2]
  for _ = 1, tonumber(ARGV[r]) do
    local k = KEYS[i]
    local consumed = redis.call('incrby', k, points)
    local ttl = redis.call('pttl', k)
    if ttl == -1 then
      redis.call('expire', k, sec)
      ttl = 1000 * sec
    end
    out[2 * i - 1] = consumed
    out[2 * i] = ttl
    i = i + 1
  end
end
return out
`;

/** Every script but cgIncrMany takes its keys under one hash tag (store/keys.ts), so each runs on one slot. */
export const SCRIPTS = {
  cgClaim: { numberOfKeys: 2, lua: LUA_CLAIM },
  cgPeekClaim: { numberOfKeys: 2, lua: LUA_PEEK_CLAIM },
  cgRelease: { numberOfKeys: 1, lua: LUA_RELEASE },
  cgPublish: { numberOfKeys: 2, lua: LUA_PUBLISH },
  // No numberOfKeys: the caller passes the count first.
  cgIncrMany: { lua: LUA_INCR_MANY },
} as const;

export type ClaimReply = [version: string | null, state: 'taken' | 'held' | 'late', remainingMs: number];
export type PeekReply = [version: string | null, remainingMs: number];
export type PublishReply = ['ok' | 'stale', string | null];

/**
 * A client or a pipeline with the scripts defined. On a client each call returns its reply's
 * promise; on a pipeline it queues the command (the reply comes from exec()).
 */
export interface ScriptCommands {
  cgClaim(ver: string, claim: string, leaseMs: number, token: string, deadlineMs: number): Promise<ClaimReply>;
  cgPeekClaim(ver: string, claim: string): Promise<PeekReply>;
  cgRelease(claim: string, token: string): Promise<number>;
  cgPublish(ver: string, claim: string, version: string, ttlMs: number): Promise<PublishReply>;
  /** `count` keys, then runs of (count, points, secDuration) in key order: a flat {consumed, pttl} per key. */
  cgIncrMany(count: number, ...keysThenRuns: (string | number)[]): Promise<number[]>;
  /** rate-limiter-flexible's consume script, defined by RateLimiterRedis itself (see rlf-client.ts). */
  rlflxIncr(args: string[]): Promise<[number, number]>;
}

/** What a batched command is given: a client or a pipeline, both with the scripts (ioredis' Commander). */
export type Commands = ChainableCommander & ScriptCommands;

/**
 * Defines the scripts. ioredis sends EVALSHA, and EVAL the first time on each connection (so a
 * promoted replica or a new node learns the script), and once more as EVAL after a NOSCRIPT
 * (a SCRIPT FLUSH, a restarted node): NOSCRIPT never reaches the gate as an answer.
 */
export function defineScripts(client: Redis | Cluster): void {
  for (const [name, def] of Object.entries(SCRIPTS)) client.defineCommand(name, def);
}
