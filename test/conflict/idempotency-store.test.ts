// The store port's Idempotency-Key operations, one suite for both adapters (memory on a fake clock, Redis for real).
import { Redis } from 'ioredis';
import { afterAll, describe, expect, test } from 'vitest';
import { keyLayout } from '../../src/store/keys.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { VersionStore } from '../../src/store/port.js';
import { RedisStore } from '../../src/store/redis.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';

const prefix = uniquePrefix('idem-store');
const raw = new Redis(SHARED_REDIS_URL);
afterAll(async () => {
  await flushPrefix(raw, prefix);
  raw.disconnect();
});

interface Subject {
  store: VersionStore;
  /** Lets `ms` pass: the fake clock moves, or real time passes (Redis keeps its own). */
  pass(ms: number): Promise<void>;
  close(): Promise<void>;
}

function memory(): Subject {
  let t = 1_000_000;
  return { store: new MemoryStore(() => t), pass: async (ms) => void (t += ms), close: async () => {} };
}

async function redis(): Promise<Subject> {
  const store = new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 1000, connectTimeoutMs: 2000 });
  for (let i = 0; i < 100 && !store.available(); i++) await new Promise((r) => setTimeout(r, 20));
  return { store, pass: (ms) => new Promise((r) => setTimeout(r, ms)), close: () => store.close() };
}

let n = 0;
const scope = () => `scope${++n}-${Math.random().toString(36).slice(2, 8)}`;

describe.each([
  ['memory', async () => memory()],
  ['redis', redis],
] as const)('%s adapter', (_name, make) => {
  test('begin records once; a second begin sees the record and its time in flight', async () => {
    const s = await make();
    const sc = scope();
    expect(await s.store.beginIdempotent(sc, 'fp1', 'tok1', 5000, 60_000)).toEqual({ kind: 'recorded' });
    const again = await s.store.beginIdempotent(sc, 'fp2', 'tok2', 5000, 60_000);
    expect(again.kind).toBe('exists');
    if (again.kind !== 'exists') return;
    expect(again.record.fingerprint).toBe('fp1');
    expect(again.record.inFlightMs).toBeGreaterThan(0);
    expect(again.record.inFlightMs).toBeLessThanOrEqual(5000);
    await s.close();
  });

  test('in flight ends when inFlight runs out; the record stays until ttl', async () => {
    const s = await make();
    const sc = scope();
    await s.store.beginIdempotent(sc, 'fp', 'tok', 150, 60_000);
    await s.pass(250);
    expect(await s.store.peekIdempotent(sc)).toEqual({ fingerprint: 'fp', inFlightMs: 0, ended: false, token: 'tok' });
    await s.close();
  });

  test('the record is gone after ttl', async () => {
    const s = await make();
    const sc = scope();
    await s.store.beginIdempotent(sc, 'fp', 'tok', 100, 200);
    await s.pass(300);
    expect(await s.store.peekIdempotent(sc)).toBeNull();
    expect(await s.store.beginIdempotent(sc, 'fp2', 'tok2', 100, 200)).toEqual({ kind: 'recorded' });
    await s.close();
  });

  test('end: ended, then already_ended; missing for no record; forget deletes', async () => {
    const s = await make();
    const sc = scope();
    expect(await s.store.endIdempotent(sc)).toBe('missing');
    await s.store.beginIdempotent(sc, 'fp', 'tok', 60_000, 120_000);
    expect(await s.store.endIdempotent(sc)).toBe('ended');
    expect(await s.store.peekIdempotent(sc)).toEqual({ fingerprint: 'fp', inFlightMs: 0, ended: true, token: 'tok' });
    expect(await s.store.endIdempotent(sc)).toBe('already_ended');
    expect(await s.store.endIdempotent(sc, true)).toBe('already_ended');
    expect(await s.store.peekIdempotent(sc)).toBeNull();
    await s.close();
  });

  test('abandon deletes only the record the token made', async () => {
    const s = await make();
    const sc = scope();
    await s.store.beginIdempotent(sc, 'fp', 'mine', 60_000, 120_000);
    await s.store.abandonIdempotent(sc, 'someone-else');
    expect(await s.store.peekIdempotent(sc)).not.toBeNull();
    await s.store.abandonIdempotent(sc, 'mine');
    expect(await s.store.peekIdempotent(sc)).toBeNull();
    await s.close();
  });

  test('end marks a record whose in-flight time ran out as ended too', async () => {
    const s = await make();
    const sc = scope();
    await s.store.beginIdempotent(sc, 'fp', 'tok', 100, 60_000);
    await s.pass(200);
    expect(await s.store.endIdempotent(sc)).toBe('already_ended');
    expect((await s.store.peekIdempotent(sc))?.ended).toBe(true);
    await s.close();
  });

  test('rearm: only an expired, not ended record, only by the request that holds it, only once', async () => {
    const s = await make();
    const sc = scope();
    // (in flight for a second: the next call must come within it, on a loaded machine too)
    await s.store.beginIdempotent(sc, 'fp', 'first', 1000, 60_000);
    expect(await s.store.rearmIdempotent(sc, 'first', 'second', 5000)).toBe(false); // still in flight
    await s.pass(1200);
    expect(await s.store.rearmIdempotent(sc, 'someone', 'second', 5000)).toBe(false);
    expect(await s.store.rearmIdempotent(sc, 'first', 'second', 5000)).toBe(true);
    expect(await s.store.rearmIdempotent(sc, 'first', 'third', 5000)).toBe(false); // another retry got there first
    const held = await s.store.peekIdempotent(sc);
    expect(held).toMatchObject({ fingerprint: 'fp', ended: false, token: 'second' });
    expect(held!.inFlightMs).toBeGreaterThan(0);
    // a refused re-armed retry puts it back out of flight, keeping the record
    await s.store.abandonIdempotent(sc, 'second', true);
    expect(await s.store.peekIdempotent(sc)).toMatchObject({ inFlightMs: 0, ended: false, token: 'second' });
    // an ended record is never re-armed
    await s.store.endIdempotent(sc);
    expect(await s.store.rearmIdempotent(sc, 'second', 'fourth', 5000)).toBe(false);
    await s.close();
  });

  test('peek takes nothing', async () => {
    const s = await make();
    const sc = scope();
    expect(await s.store.peekIdempotent(sc)).toBeNull();
    expect(await s.store.beginIdempotent(sc, 'fp', 'tok', 1000, 2000)).toEqual({ kind: 'recorded' });
    await s.close();
  });
});

describe('Redis layout', () => {
  test('one key per scope, <prefix>idem:{<scope>}, with the ttl as its expiry', async () => {
    const store = new RedisStore({ url: SHARED_REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 1000, connectTimeoutMs: 2000 });
    for (let i = 0; i < 100 && !store.available(); i++) await new Promise((r) => setTimeout(r, 20));
    const sc = scope();
    await store.beginIdempotent(sc, 'fp', 'tok', 1000, 90_000);
    const key = keyLayout(prefix).idempotency(sc);
    expect(key).toBe(`${prefix}idem:{${sc}}`);
    expect(await raw.get(key)).toMatch(/^\d+\|tok\|fp$/);
    const ttl = await raw.pttl(key);
    expect(ttl > 80_000 && ttl <= 90_000).toBe(true);
    await store.endIdempotent(sc);
    expect(await raw.get(key)).toBe('0|tok|fp');
    expect(await raw.pttl(key)).toBeGreaterThan(80_000); // ending keeps the ttl
    await store.close();
  });
});
