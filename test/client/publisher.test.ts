// conflict-gate/client against real Redis and against the admin API over a socket.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { VersionPublisher } from 'conflict-gate/client';
import { startGate, type RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { jwks, makeKey } from '../helpers/tokens.js';

const prefix = uniquePrefix('client');
const raw = new Redis(SHARED_REDIS_URL);
let gate: RunningGate;
const ADMIN = 'client-test-admin-token';

beforeAll(async () => {
  const key = await makeKey('ES256');
  gate = await startGate({
    yaml: `store: { url: "${SHARED_REDIS_URL}", keyPrefix: "${prefix}" }\nauth: { jwksFile: jwks.json, algorithms: [ES256] }`,
    files: { 'jwks.json': JSON.stringify(jwks(key)) },
    env: { GATE_ADMIN_TOKEN: ADMIN },
  });
});
afterAll(async () => {
  await gate.stop();
  await flushPrefix(raw, prefix);
  raw.disconnect();
});

const targets = () =>
  [
    ['redis', new VersionPublisher({ redis: { url: SHARED_REDIS_URL, keyPrefix: prefix } })],
    ['admin API', new VersionPublisher({ admin: { url: gate.adminUrl, token: ADMIN } })],
  ] as const;

describe.each(['redis', 'admin API'])('VersionPublisher via %s', (name) => {
  let pub: VersionPublisher;
  beforeAll(() => {
    pub = targets().find(([n]) => n === name)![1];
  });
  afterAll(() => pub.close());

  test('publish, read back, publish-if-newer, remove', async () => {
    const k = `orders:${name}:1`;
    expect(await pub.get(k)).toBeNull();
    expect(await pub.publish(k, 3)).toEqual({ kind: 'published', previous: null });
    expect(await raw.get(`${prefix}ver:{${k}}`)).toBe('3');
    expect(await pub.publish(k, '2')).toEqual({ kind: 'stale', current: '3' });
    expect(await pub.publish(k, '3.1')).toEqual({ kind: 'published', previous: '3' });
    expect(await pub.get(k)).toBe('3.1');
    expect(await pub.remove(k)).toBe(true);
    expect(await pub.get(k)).toBeNull();
  });

  test('release ends a lease and keeps the version', async () => {
    const k = `orders:${name}:2`;
    await pub.publish(k, '7');
    await raw.set(`${prefix}claim:{${k}}`, 'tok:7', 'PX', 30000);
    await pub.release(k);
    expect(await raw.exists(`${prefix}claim:{${k}}`)).toBe(0);
    expect(await raw.get(`${prefix}ver:{${k}}`)).toBe('7');
  });

  test('release also ends a lease on a resource with no version yet', async () => {
    const k = `orders:${name}:new`;
    await raw.set(`${prefix}claim:{${k}}`, 'tok:', 'PX', 30000);
    await pub.release(k);
    expect(await raw.exists(`${prefix}claim:{${k}}`)).toBe(0);
    expect(await raw.exists(`${prefix}ver:{${k}}`)).toBe(0);
  });

  test('replicas publishing out of order never move a version backwards', async () => {
    const k = `orders:${name}:3`;
    await Promise.all(['5', '9', '1', '7', '3'].map((v) => pub.publish(k, v)));
    expect(await pub.get(k)).toBe('9');
  });

  test('what the admin API refuses is a TypeError on every target, and nothing moves', async () => {
    const k = `orders:${name}:4`;
    await pub.publish(k, 9);
    // -1 and 1e21 read as "-1" and "1e+21": versions with no order, which would replace 9.
    for (const v of [-1, 1.5, NaN, Infinity, 1e21, '', 'a\nb', '"9"', 'é', 'x'.repeat(257)]) {
      await expect(pub.publish(k, v)).rejects.toThrow(new TypeError('VersionPublisher: version: expected a non-negative safe integer or 1 to 256 visible ASCII characters, no double quote'));
    }
    expect(await pub.get(k)).toBe('9');
    const keyError = new TypeError('VersionPublisher: resource key: expected 1 to 512 characters, no control characters');
    for (const bad of ['', 'orders:\n1', 'k'.repeat(513)]) {
      await expect(pub.publish(bad, 1)).rejects.toThrow(keyError);
      await expect(pub.get(bad)).rejects.toThrow(keyError);
      await expect(pub.release(bad)).rejects.toThrow(keyError);
      await expect(pub.remove(bad)).rejects.toThrow(keyError);
    }
    expect(await pub.publish('k'.repeat(512), '1')).toEqual({ kind: 'published', previous: null });
    expect(await pub.remove('k'.repeat(512))).toBe(true);
  });
});

test('a wrong admin token is an error, not a silent no-op', async () => {
  const pub = new VersionPublisher({ admin: { url: gate.adminUrl, token: 'wrong' } });
  await expect(pub.publish('orders:x', '1')).rejects.toMatchObject({ name: 'PublishError', status: 401 });
});
