// Idempotency-Key records in Redis: one Lua script, one key per (client, key), so every call is single-slot.
// Self-contained on purpose (the Redis adapter is being split by job): redis.ts only defines the
// command and forwards its four port methods here.
import type { ChainableCommander, Redis } from 'ioredis';
import type { KeyLayout } from './keys.js';
import type { IdempotencyBegin, IdempotencyEnd, IdempotencyRecord } from './port.js';

/**
 * KEYS: idem:{scope}. ARGV[1] is the operation:
 *   begin fingerprint token inFlightMs ttlMs → {'recorded'} | {'exists', fingerprint, inFlightMs left, ended 0|1, token}
 *   peek                                     → {'missing'}  | {'exists', fingerprint, inFlightMs left, ended 0|1, token}
 *   end | forget                             → 'ended' | 'already_ended' | 'missing'
 *   rearm heldBy token inFlightMs            → 1 when it put an expired, not ended record held by `heldBy` back in flight, else 0
 *   abandon token keep                       → 'ok' (if `token` holds it: deletes it, or with keep=1 puts it out of flight)
 * The value is `<in flight until, ms>|<token>|<fingerprint>`: "until" 0 means the upstream ended it,
 * 1 that a refused retry gave it back; it is Redis' own clock (TIME), so replicas with skewed
 * clocks agree on when a key stops being in flight.
 */
export const LUA_IDEMPOTENCY = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local untilMs, token, fp
local cur = redis.call('GET', KEYS[1])
if cur then
  local a, b, c = string.match(cur, '^(%d+)|([^|]*)|(.*)$')
  if a then untilMs = tonumber(a); token = b; fp = c end
end
if op == 'begin' or op == 'peek' then
  if fp then return {'exists', fp, math.max(0, untilMs - now), untilMs == 0 and 1 or 0, token} end
  if op == 'peek' then return {'missing'} end
  redis.call('SET', KEYS[1], string.format('%.0f', now + tonumber(ARGV[4])) .. '|' .. ARGV[3] .. '|' .. ARGV[2], 'PX', ARGV[5])
  return {'recorded'}
end
if op == 'end' or op == 'forget' then
  if not fp then return 'missing' end
  local was = untilMs > now
  if op == 'forget' then
    redis.call('DEL', KEYS[1])
  elseif untilMs ~= 0 then
    redis.call('SET', KEYS[1], '0|' .. token .. '|' .. fp, 'KEEPTTL')
  end
  if was then return 'ended' end
  return 'already_ended'
end
if op == 'rearm' then
  if fp and token == ARGV[2] and untilMs ~= 0 and untilMs <= now then
    redis.call('SET', KEYS[1], string.format('%.0f', now + tonumber(ARGV[4])) .. '|' .. ARGV[3] .. '|' .. fp, 'KEEPTTL')
    return 1
  end
  return 0
end
if op == 'abandon' then
  if fp and token == ARGV[2] then
    if ARGV[3] == '1' then
      redis.call('SET', KEYS[1], '1|' .. token .. '|' .. fp, 'KEEPTTL')
    else
      redis.call('DEL', KEYS[1])
    end
  end
  return 'ok'
end
return redis.error_reply('cgIdem: unknown operation')
`;

export const IDEMPOTENCY_COMMAND = 'cgIdem';

type Reply = [string, string?, number?, number?, string?] | string;

/** Defines the script's command on a client (EVALSHA, reloaded by ioredis on NOSCRIPT). */
export function defineIdempotency(client: Redis): void {
  client.defineCommand(IDEMPOTENCY_COMMAND, { numberOfKeys: 1, lua: LUA_IDEMPOTENCY });
}

/** Queues the command on a pipeline (or sends it, given the client itself). */
export function sendIdempotency(p: ChainableCommander, key: string, args: (string | number)[]): unknown {
  return (p as unknown as Record<string, (...a: (string | number)[]) => unknown>)[IDEMPOTENCY_COMMAND]!(key, ...args);
}

/** The port's four idempotency methods over `send` (which adds the adapter's fail-fast and error mapping). */
export class IdempotencyOps {
  constructor(
    private readonly send: (key: string, args: (string | number)[]) => Promise<unknown>,
    private readonly keys: KeyLayout,
  ) {}

  async begin(scope: string, fingerprint: string, token: string, inFlightMs: number, ttlMs: number): Promise<IdempotencyBegin> {
    const r = (await this.send(this.keys.idempotency(scope), ['begin', fingerprint, token, Math.ceil(inFlightMs), Math.ceil(ttlMs)])) as Reply;
    return Array.isArray(r) && r[0] === 'exists' ? { kind: 'exists', record: record(r) } : { kind: 'recorded' };
  }

  async peek(scope: string): Promise<IdempotencyRecord | null> {
    const r = (await this.send(this.keys.idempotency(scope), ['peek'])) as Reply;
    return Array.isArray(r) && r[0] === 'exists' ? record(r) : null;
  }

  async end(scope: string, forget = false): Promise<IdempotencyEnd> {
    return (await this.send(this.keys.idempotency(scope), [forget ? 'forget' : 'end'])) as IdempotencyEnd;
  }

  async rearm(scope: string, heldBy: string, token: string, inFlightMs: number): Promise<boolean> {
    return Number(await this.send(this.keys.idempotency(scope), ['rearm', heldBy, token, Math.ceil(inFlightMs)])) === 1;
  }

  async abandon(scope: string, token: string, keep = false): Promise<void> {
    await this.send(this.keys.idempotency(scope), ['abandon', token, keep ? '1' : '0']);
  }
}

function record(r: [string, string?, number?, number?, string?]): IdempotencyRecord {
  return { fingerprint: r[1] ?? '', inFlightMs: Math.max(0, Number(r[2] ?? 0)), ended: Number(r[3]) === 1, token: r[4] ?? '' };
}
