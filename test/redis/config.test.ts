// The store modes as the config, the env forms, the JSON Schema and the client library read them.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, test } from 'vitest';
import { PublishError, VersionPublisher } from '../../src/client/index.js';
import { readConfigText } from '../../src/config/read.js';
import { RedisStore } from '../../src/store/redis.js';
import { ROOT, runCli } from '../helpers/gate.js';
import { uniquePrefix } from '../helpers/redis.js';

const AUTH = 'auth: { secret: "0123456789abcdef0123456789abcdef" }\n';

async function storeOf(yaml: string, env: Record<string, string> = {}) {
  const r = await readConfigText(AUTH + yaml, env);
  if (!r.ok) throw new Error(r.issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  return r.compiled.store;
}

describe('store modes in the file', () => {
  test('url is the default only when neither cluster nor sentinel is given', async () => {
    expect(await storeOf('')).toMatchObject({ mode: 'single', url: 'redis://127.0.0.1:6379/0', cluster: undefined, sentinel: undefined, tls: false });
    expect(await storeOf('store: { cluster: { nodes: ["10.0.0.1:6379"] } }')).toMatchObject({ mode: 'cluster', url: undefined, cluster: { nodes: [{ host: '10.0.0.1', port: 6379, tls: false }] } });
    expect(await storeOf('store: { url: memory }')).toMatchObject({ mode: 'memory', url: 'memory' });
  });

  test('cluster seeds as host:port or URLs; a rediss:// seed turns TLS on; credentials apply to every node', async () => {
    const s = await storeOf('store: { cluster: { nodes: ["rediss://redis-0.example:6380", "[::1]:7000", "redis://10.0.0.3"] }, username: app, password: pw }');
    expect(s).toMatchObject({
      mode: 'cluster',
      tls: true,
      username: 'app',
      password: 'pw',
      cluster: { nodes: [{ host: 'redis-0.example', port: 6380, tls: true }, { host: '::1', port: 7000, tls: false }, { host: '10.0.0.3', port: 6379, tls: false }] },
    });
  });

  test('sentinel: name, sentinels and their own credentials; tls: true; an empty password is none', async () => {
    const s = await storeOf('store: { sentinel: { name: mymaster, sentinels: ["10.0.0.1:26379", "sentinel-1.example:26379"], password: "" }, password: "${P:-}", tls: true }');
    expect(s).toMatchObject({
      mode: 'sentinel',
      tls: true,
      password: undefined,
      sentinel: { name: 'mymaster', sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'sentinel-1.example', port: 26379 }], username: undefined, password: undefined },
    });
  });
});

describe('store modes from the environment: an env form replaces the file mode whatever it was', () => {
  const cluster = 'store: { cluster: { nodes: ["10.0.0.1:6379"] }, keyPrefix: "app:" }';
  const sentinel = 'store: { sentinel: { name: old, sentinels: ["10.0.0.9:26379"], username: s, password: spw } }';
  test('REDIS_URL → one node', async () => {
    expect(await storeOf(cluster, { REDIS_URL: 'rediss://cache:6380/1' })).toMatchObject({ mode: 'single', url: 'rediss://cache:6380/1', cluster: undefined, tls: true, keyPrefix: 'app:' });
  });
  test('REDIS_CLUSTER_NODES → cluster (comma-separated, spaces allowed)', async () => {
    expect(await storeOf(sentinel, { REDIS_CLUSTER_NODES: '10.0.0.1:6379, 10.0.0.2:6379' })).toMatchObject({ mode: 'cluster', sentinel: undefined, cluster: { nodes: [{ host: '10.0.0.1' }, { host: '10.0.0.2' }] } });
  });
  test('REDIS_SENTINELS + REDIS_SENTINEL_NAME → sentinel; the file\'s sentinel credentials stay', async () => {
    expect(await storeOf(sentinel, { REDIS_SENTINELS: 'a:26379,b:26379', REDIS_SENTINEL_NAME: 'mymaster' })).toMatchObject({
      mode: 'sentinel',
      sentinel: { name: 'mymaster', sentinels: [{ host: 'a', port: 26379 }, { host: 'b', port: 26379 }], username: 's', password: 'spw' },
    });
    expect(await storeOf(cluster, { REDIS_SENTINELS: 'a:26379', REDIS_SENTINEL_NAME: 'm' })).toMatchObject({ mode: 'sentinel', cluster: undefined, sentinel: { username: undefined } });
  });
});

describe('config.schema.json', () => {
  const schema = JSON.parse(readFileSync(join(ROOT, 'config.schema.json'), 'utf8')) as Record<string, unknown>;
  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(schema);
  test.each([
    ['url', { url: 'redis://a:6379/0' }, true],
    ['cluster', { cluster: { nodes: ['a:6379'] } }, true],
    ['sentinel', { sentinel: { name: 'm', sentinels: ['a:26379'] }, password: 'x', tls: true }, true],
    ['url and cluster', { url: 'redis://a:6379/0', cluster: { nodes: ['a:6379'] } }, false],
    ['cluster and sentinel', { cluster: { nodes: ['a:6379'] }, sentinel: { name: 'm', sentinels: ['a:26379'] } }, false],
    ['an unknown key', { clusterNodes: ['a:6379'] }, false],
  ])('store with %s: valid %s', (_, store, valid) => {
    expect(validate({ auth: { secret: 'x'.repeat(32) }, store })).toBe(valid);
  });
});

describe('conflict-gate/client in the three modes: misuse is a TypeError at creation', () => {
  test.each([
    [{}, 'VersionPublisher: give exactly one of redis.url, redis.cluster, redis.sentinel'],
    [{ url: 'redis://a', cluster: { nodes: ['a:1'] } }, 'VersionPublisher: give exactly one of redis.url, redis.cluster, redis.sentinel (got url, cluster)'],
    [{ cluster: { nodes: [] } }, 'VersionPublisher: redis.cluster.nodes needs at least one address'],
    [{ cluster: { nodes: ['nope'] } }, 'VersionPublisher: redis.cluster.nodes: "nope" is not host:port'],
    [{ sentinel: { name: '', sentinels: ['a:1'] } }, 'VersionPublisher: redis.sentinel.name is required'],
    [{ sentinel: { name: 'm', sentinels: ['redis://a:1'] } }, 'VersionPublisher: redis.sentinel.sentinels: "redis://a:1" is not host:port'],
    [{ url: 'http://a' }, 'VersionPublisher: redis.url: expected a redis:// or rediss:// URL'],
    [{ url: 'redis://127.0.0.1:6379/abc' }, 'VersionPublisher: redis.url: the path is the database index: /0, /1, ...'],
    [{ url: 'redis://[::1' }, 'VersionPublisher: redis.url: not a URL (expected redis://[user:password@]host[:port][/db])'],
    [{ url: 'redis://127.0.0.1:6379/0?db=3' }, 'VersionPublisher: redis.url: no query or fragment: the options have their own fields'],
  ])('%j', (redis, message) => {
    expect(() => new VersionPublisher({ redis })).toThrow(new TypeError(message));
  });
});

describe('a database index Redis refuses (the shared Redis has 16): refused, never served from database 0', () => {
  const url = 'redis://127.0.0.1:6379/99';
  const reason = "store.url selects database 99, which Redis refuses (ERR DB index is out of range): check its `databases` setting, or the URL's /db";

  test('serve exits 2 naming store.url; check, which stays offline, passes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-db-'));
    const file = join(dir, 'gate.yaml');
    writeFileSync(file, `${AUTH}store: { url: "${url}" }\n`);
    const served = await runCli(['--config', file], { PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1' });
    expect(served.code).toBe(2);
    expect(served.stderr).toBe(`conflict-gate: invalid config ${file} (1 problem):\nstore.url: ${reason.replace(/^store\.url /, '')}\n`);
    expect((await runCli(['check', '--config', file])).code).toBe(0);
  });

  test('the store says why in its health and refuses every call; the client library rejects', async () => {
    const store = new RedisStore({ url, keyPrefix: uniquePrefix('db99'), commandTimeoutMs: 500, connectTimeoutMs: 500 });
    try {
      await store.firstAnswer(2000);
      expect(store.health()).toEqual({ up: false, reason });
      await expect(store.getVersion('x')).rejects.toMatchObject({ code: 'other', message: reason });
    } finally {
      await store.close();
    }
    const publisher = new VersionPublisher({ redis: { url } });
    try {
      await expect(publisher.publish('db99:1', '1')).rejects.toThrow(new PublishError(reason));
    } finally {
      await publisher.close();
    }
  });
});
