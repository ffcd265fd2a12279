// core/bounded.ts: the chunked eviction every bounded cache uses.
import { describe, expect, test } from 'vitest';
import { dropOldest, makeRoom } from '../../src/core/bounded.js';

const filled = (n: number) => new Map(Array.from({ length: n }, (_, i) => [`k${i}`, i] as const));

describe('makeRoom / dropOldest', () => {
  test('below the bound nothing is dropped', () => {
    const m = filled(9);
    makeRoom(m, 10);
    expect(m.size).toBe(9);
  });

  test('at the bound the oldest max/64 entries go (insertion order), each reported once', () => {
    const m = filled(640);
    const gone: [string, number][] = [];
    makeRoom(m, 640, (k, v) => gone.push([k, v]));
    expect(gone).toEqual(Array.from({ length: 10 }, (_, i) => [`k${i}`, i]));
    expect(m.size).toBe(630);
    expect([...m.keys()][0]).toBe('k10');
  });

  test('a small bound drops one at a time, so a cache of 2 keeps the 2 newest', () => {
    const m = new Map<string, number>();
    for (let i = 0; i < 5; i++) {
      makeRoom(m, 2);
      m.set(`k${i}`, i);
      expect(m.size).toBeLessThanOrEqual(2);
    }
    expect([...m.keys()]).toEqual(['k3', 'k4']);
  });

  test('a map over its bound (the bound was lowered) comes back under it in one call', () => {
    const m = filled(100);
    makeRoom(m, 10);
    expect(m.size).toBe(9);
    expect(m.has('k99')).toBe(true);
  });

  test('the bound holds over many inserts, and a re-inserted key counts as new', () => {
    const m = new Map<number, number>();
    for (let i = 0; i < 100_000; i++) {
      makeRoom(m, 1000);
      m.delete(i % 1500);
      m.set(i % 1500, i);
      expect(m.size).toBeLessThanOrEqual(1000);
    }
    expect(m.size).toBeGreaterThanOrEqual(1000 - 1000 / 64 - 1);
    expect(m.has(99_999 % 1500)).toBe(true);
  });

  test('dropOldest stops at the count and at an empty map', () => {
    const m = filled(3);
    dropOldest(m, 2);
    expect([...m.keys()]).toEqual(['k2']);
    dropOldest(m, 0);
    expect([...m.keys()]).toEqual(['k2']);
    dropOldest(m, 5);
    expect(m.size).toBe(0);
  });
});
