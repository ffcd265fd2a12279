// Idempotency-Key records in Redis: one Lua script, one key per (client, key), so every call is single-slot.
// Self-contained on purpose (the Redis adapter is being split by job): redis.ts only defines the
// command and forwards its four port methods here.
import type { ChainableCommander, Redis } from 'ioredis';
import type { KeyLayout } from './keys.js';
import type { IdempotencyBegin, IdempotencyEnd, IdempotencyRecord } from './port.js';

/**
 * KEYS: idem:{scope}. ARGV[1] is the operation:
 *   begin fingerprint token inFlightMs ttlMs → {'recorded'} | {'exists', fingerprint, inFlightMs left}
 *   peek                                     → {'missing'}  | {'exists', fingerprint, inFlightMs left}
 *   end | forget                             → 'ended' | 'already_ended' | 'missing'
 *   abandon token                            → 'ok' (deletes the record if `token` made it)
 * The value is `<in flight until, ms>|<token>|<fingerprint>`; "until" is Redis' own clock (TIME),
 * so replicas with skewed clocks agree on when a key stops being in flight.
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
  if fp then return {'exists', fp, math.max(0, untilMs - now)} end
  if op == 'peek' then return {'missing'} end
  redis.call('SET', KEYS[1], string.format('%.0f', now + tonumber(ARGV[4])) .. '|' .. ARGV[3] .. '|' .. ARGV[2], 'PX', ARGV[5])
  return {'recorded'}
end
if op == 'end' or op == 'forget' then
  if not fp then return 'missing' end
  local was = untilMs > now
  if op == 'forget' then
    redis.call('DEL', KEYS[1])
  elseif was then
    redis.call('SET', KEYS[1], '0|' .. token .. '|' .. fp, 'KEEPTTL')
  end
  if was then return 'ended' end
  return 'already_ended'
end
if op == 'abandon' then
  if token == ARGV[2] then redis.call('DEL', KEYS[1]) end
  return 'ok'
end
return redis.error_reply('cgIdem: unknown operation')
`;

export const IDEMPOTENCY_COMMAND = 'cgIdem';

type Reply = [string, string?, number?] | string;

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

  async abandon(scope: string, token: string): Promise<void> {
    await this.send(this.keys.idempotency(scope), ['abandon', token]);
  }
}

function record(r: [string, string?, number?]): IdempotencyRecord {
  return { fingerprint: r[1] ?? '', inFlightMs: Math.max(0, Number(r[2] ?? 0)) };
}
