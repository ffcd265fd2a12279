// One suite, two adapters: any semantic that differs between memory.ts and redis.ts is a bug in one.
import { describe, expect, test } from 'vitest';
import type { VersionStore } from '../../src/store/port.js';

export interface StoreHarness {
  store: VersionStore;
  /** Lets `ms` pass: a fake clock moves, a real one is waited for. */
  advance(ms: number): Promise<void>;
  /** Writes a version the way an upstream's raw SET would. */
  rawSet(key: string, version: string): Promise<void>;
}

export function runStoreContract(name: string, make: () => Promise<StoreHarness>): void {
  describe(`store contract: ${name}`, () => {
    let n = 0;
    const key = () => `res:${Date.now()}:${n++}`;

    test('an unknown resource has no version; publish sets it', async () => {
      const { store } = await make();
      const k = key();
      expect(await store.getVersion(k)).toBeNull();
      expect(await store.publish(k, '1')).toEqual({ kind: 'published', previous: null });
      expect(await store.getVersion(k)).toBe('1');
    });

    test('publish-if-newer: ordered versions never move backwards; equal is accepted', async () => {
      const { store } = await make();
      const k = key();
      await store.publish(k, '1.10');
      expect(await store.publish(k, '1.9')).toEqual({ kind: 'stale', current: '1.10' });
      expect(await store.publish(k, '1.10.0')).toEqual({ kind: 'published', previous: '1.10' });
      expect(await store.publish(k, '2')).toEqual({ kind: 'published', previous: '1.10.0' });
      expect(await store.getVersion(k)).toBe('2');
    });

    test('unordered versions always replace', async () => {
      const { store } = await make();
      const k = key();
      await store.publish(k, 'b');
      expect(await store.publish(k, 'a')).toEqual({ kind: 'published', previous: 'b' });
      expect(await store.publish(k, '3')).toEqual({ kind: 'published', previous: 'a' });
    });

    test('remove forgets the version', async () => {
      const { store } = await make();
      const k = key();
      await store.publish(k, '4');
      expect(await store.remove(k)).toBe(true);
      expect(await store.remove(k)).toBe(false);
      expect(await store.getVersion(k)).toBeNull();
    });

    test('claim: the first takes the lease, the second sees it held with its remaining time', async () => {
      const { store } = await make();
      const k = key();
      await store.publish(k, '5');
      expect(await store.claim(k, 1000, 'a')).toEqual({ version: '5', claim: { kind: 'taken' } });
      const second = await store.claim(k, 1000, 'b');
      expect(second.version).toBe('5');
      expect(second.claim.kind).toBe('held');
      if (second.claim.kind === 'held') {
        expect(second.claim.remainingMs).toBeGreaterThan(500);
        expect(second.claim.remainingMs).toBeLessThanOrEqual(1000);
      }
    });

    test('claim on an unknown resource is bound to "no version"', async () => {
      const { store } = await make();
      const k = key();
      expect(await store.claim(k, 1000, 'a')).toEqual({ version: null, claim: { kind: 'taken' } });
      expect((await store.claim(k, 1000, 'b')).claim.kind).toBe('held');
    });

    test('a lease ends at expiry', async () => {
      const { store, advance } = await make();
      const k = key();
      await store.publish(k, '1');
      await store.claim(k, 150, 'a');
      await advance(300);
      expect((await store.claim(k, 150, 'b')).claim).toEqual({ kind: 'taken' });
    });

    test('a lease is void once the version changes (even by a raw SET)', async () => {
      const { store, rawSet } = await make();
      const k = key();
      await store.publish(k, '1');
      await store.claim(k, 10_000, 'a');
      await rawSet(k, '2');
      expect(await store.claim(k, 10_000, 'b')).toEqual({ version: '2', claim: { kind: 'taken' } });
    });

    test('publish releases the lease, even when the version is unchanged (a failed upstream write)', async () => {
      const { store } = await make();
      const k = key();
      await store.publish(k, '1');
      await store.claim(k, 10_000, 'a');
      await store.publish(k, '1');
      expect((await store.claim(k, 10_000, 'b')).claim).toEqual({ kind: 'taken' });
    });

    test('endClaim ends any lease, on a known or an unknown resource', async () => {
      const { store } = await make();
      const k = key();
      await store.claim(k, 10_000, 'a');
      await store.endClaim(k);
      expect((await store.claim(k, 10_000, 'b')).claim).toEqual({ kind: 'taken' });
      await store.publish(k, '1');
      await store.claim(k, 10_000, 'c');
      await store.endClaim(k);
      expect(await store.claim(k, 10_000, 'd')).toEqual({ version: '1', claim: { kind: 'taken' } });
    });

    test('release frees only the holder’s lease', async () => {
      const { store } = await make();
      const k = key();
      await store.publish(k, '1');
      await store.claim(k, 10_000, 'a');
      await store.release(k, 'b');
      expect((await store.claim(k, 10_000, 'c')).claim.kind).toBe('held');
      await store.release(k, 'a');
      expect((await store.claim(k, 10_000, 'c')).claim).toEqual({ kind: 'taken' });
    });

    test('remember / recall keep a value for its TTL', async () => {
      const { store, advance } = await make();
      const id = key();
      // TTLs of a second: on a real store the next call must come within the TTL, whatever the load
      await store.remember(id, 'v', 1000);
      expect(await store.recall(id)).toBe('v');
      await advance(1200);
      expect(await store.recall(id)).toBeNull();
    });

    test('20 concurrent claims on one version: exactly one is taken', async () => {
      const { store } = await make();
      const k = key();
      await store.publish(k, '9');
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.claim(k, 5000, `t${i}`)));
      expect(results.filter((r) => r.claim.kind === 'taken')).toHaveLength(1);
    });

    test('a store-backed rate limiter counts; peek takes nothing; refund gives a point back', async () => {
      const { store } = await make();
      const limiter = store.limiter({ rule: `rl-${key()}`, points: 2, durationS: 60 });
      expect(await limiter.peek('c')).toMatchObject({ kind: 'allowed', remaining: 1 });
      expect(await limiter.consume('c')).toMatchObject({ kind: 'allowed', remaining: 1 });
      expect(await limiter.peek('c')).toMatchObject({ kind: 'allowed', remaining: 0 });
      expect(await limiter.consume('c')).toMatchObject({ kind: 'allowed', remaining: 0 });
      expect(await limiter.peek('c')).toMatchObject({ kind: 'limited' });
      await limiter.refund('c');
      expect(await limiter.consume('c')).toMatchObject({ kind: 'allowed', remaining: 0 });
      const limited = await limiter.consume('c');
      expect(limited.kind).toBe('limited');
      expect(limited.resetMs).toBeGreaterThan(50_000);
    });

    test('peekClaim sees what claim would, and takes nothing', async () => {
      const { store } = await make();
      const k = key();
      await store.publish(k, '3');
      expect(await store.peekClaim(k)).toEqual({ version: '3', claim: { kind: 'free' } });
      await store.claim(k, 5000, 'a');
      const seen = await store.peekClaim(k);
      expect(seen.version).toBe('3');
      expect(seen.claim.kind).toBe('held');
      await store.release(k, 'a');
      expect(await store.peekClaim(k)).toEqual({ version: '3', claim: { kind: 'free' } });
      expect((await store.claim(k, 5000, 'b')).claim).toEqual({ kind: 'taken' });
    });

    test('a version published with a TTL expires unless published again', async () => {
      const { store, advance } = await make();
      const k = key();
      // On a real store each wait is real: '2' must still have room (400 ms) when it is read.
      await store.publish(k, '1', 1000);
      expect(await store.getVersion(k)).toBe('1');
      await advance(600);
      await store.publish(k, '2', 1000);
      await advance(600); // '1' alone would be gone by now
      expect(await store.getVersion(k)).toBe('2');
      await advance(500);
      expect(await store.getVersion(k)).toBeNull();
    });

    test('Idempotency-Key: the first request records; the next sees its record; end, then forget', async () => {
      const { store } = await make();
      const scope = `idem-${key()}`;
      expect(await store.beginIdempotent(scope, 'fp-1', 't1', 5000, 60_000)).toEqual({ kind: 'recorded' });
      const again = await store.beginIdempotent(scope, 'fp-2', 't2', 5000, 60_000);
      expect(again).toMatchObject({ kind: 'exists', record: { fingerprint: 'fp-1', token: 't1', ended: false } });
      if (again.kind === 'exists') expect(again.record.inFlightMs).toBeGreaterThan(3000);
      expect(await store.peekIdempotent(scope)).toMatchObject({ fingerprint: 'fp-1', ended: false });
      expect(await store.endIdempotent(scope)).toBe('ended');
      expect(await store.endIdempotent(scope)).toBe('already_ended');
      expect(await store.peekIdempotent(scope)).toMatchObject({ fingerprint: 'fp-1', ended: true, inFlightMs: 0 });
      expect(await store.endIdempotent(scope, true)).toBe('already_ended');
      expect(await store.peekIdempotent(scope)).toBeNull();
      expect(await store.endIdempotent(`idem-${key()}`)).toBe('missing');
    });

    test('Idempotency-Key: a record whose in-flight time ran out is re-armed by its holder only; abandon gives it back', async () => {
      const { store, advance } = await make();
      const scope = `idem-${key()}`;
      await store.beginIdempotent(scope, 'fp', 't1', 1000, 60_000);
      expect(await store.rearmIdempotent(scope, 't1', 't2', 5000)).toBe(false); // still in flight
      await advance(1200);
      expect(await store.rearmIdempotent(scope, 'other', 't3', 5000)).toBe(false);
      expect(await store.rearmIdempotent(scope, 't1', 't2', 5000)).toBe(true);
      expect(await store.rearmIdempotent(scope, 't1', 't4', 5000)).toBe(false); // t2 holds it now
      expect(await store.peekIdempotent(scope)).toMatchObject({ token: 't2', ended: false });
      await store.abandonIdempotent(scope, 'not-the-holder');
      expect(await store.peekIdempotent(scope)).toMatchObject({ token: 't2' });
      await store.abandonIdempotent(scope, 't2', true); // kept, out of flight
      expect(await store.peekIdempotent(scope)).toMatchObject({ token: 't2', ended: false, inFlightMs: 0 });
      await store.abandonIdempotent(scope, 't2');
      expect(await store.peekIdempotent(scope)).toBeNull();
    });

    test('ping answers', async () => {
      const { store } = await make();
      expect(await store.ping()).toBe(true);
      expect(store.available()).toBe(true);
    });
  });
}
