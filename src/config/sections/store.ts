// `store`: where the version cache, leases, limits and replays live: one Redis node, a Cluster, a Sentinel set, or memory.
import { z } from 'zod';
import { durationMs } from '../../core/durations.js';
import { parseHostPort, parseNodeAddress, redisUrlProblem, type RedisAddress } from '../../store/redis/address.js';
import { duration, WITH_FIELD_PROBLEMS } from '../primitives.js';

export const DEFAULT_STORE_URL = 'redis://127.0.0.1:6379/0';
const MODES = ['url', 'cluster', 'sentinel'] as const;
const URL_RE = /^(memory|rediss?:\/\/.+)$/;

export const NODE_MSG = 'expected "host:port" or a redis:// URL with no credentials or path (they have their own fields)';
export const HOST_PORT_MSG = 'expected "host:port"';

const nodeAddress = z.string().refine((s) => parseNodeAddress(s) !== null, { message: NODE_MSG });
const hostPort = z.string().refine((s) => parseHostPort(s) !== null, { message: HOST_PORT_MSG });

export const storeSchema = z
  .strictObject({
    /** One node: `redis://…`, `rediss://…` (TLS), or `memory` (one replica only). The default when neither cluster nor sentinel is set. */
    url: z
      .string()
      .regex(URL_RE, { message: 'expected "memory" or a redis:// URL' })
      .superRefine((url, ctx) => {
        const problem = url !== 'memory' && URL_RE.test(url) ? redisUrlProblem(url) : undefined;
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    /** Redis Cluster: seed nodes; the rest of the cluster is discovered. */
    cluster: z.strictObject({ nodes: z.array(nodeAddress).min(1) }).optional(),
    /** Redis Sentinel: the monitored master's name and the sentinels; their own ACL user / password when they require one. */
    sentinel: z
      .strictObject({
        name: z.string().min(1),
        sentinels: z.array(hostPort).min(1),
        username: z.string().optional(),
        password: z.string().optional(),
      })
      .optional(),
    /** ACL user and password of the data nodes, in every mode (also possible in a one-node url). Empty is none (`${REDIS_PASSWORD:-}`). */
    username: z.string().optional(),
    password: z.string().optional(),
    /** TLS to Redis in every mode (a `rediss://` URL or node turns it on too). */
    tls: z.boolean().default(false),
    keyPrefix: z
      .string()
      // Keys put the resource key in braces, a Redis Cluster hash tag (store/keys.ts): a brace in the
      // prefix would become the hash tag instead, and a resource's version and lease could land on two slots.
      .refine((p) => !/[{}]/.test(p), { message: 'must not contain "{" or "}" (they would become the Redis Cluster hash tag of every key)' })
      .default('cg:'),
    /** Upper bound on one Redis command; past it the gate applies its fail mode. */
    commandTimeout: duration().default('250ms'),
    connectTimeout: duration().default('2s'),
  })
  // For editors (config.schema.json): at most one of the three modes.
  .meta({
    description: 'Where the shared state lives: exactly one of url (one node, the default), cluster, sentinel.',
    not: { anyOf: [{ required: ['url', 'cluster'] }, { required: ['url', 'sentinel'] }, { required: ['cluster', 'sentinel'] }] },
  })
  .superRefine(
    (s, ctx) => {
      // A mode written with nothing (`url: ~`) is its field's problem, not a second mode.
      const set = MODES.filter((m) => s[m] !== undefined && s[m] !== null);
      if (set.length > 1) {
        const named = set.length === 2 ? `${set[0]} and ${set[1]} are both set` : 'url, cluster and sentinel are all set';
        ctx.addIssue({ code: 'custom', message: `${named}: set exactly one of url, cluster, sentinel` });
      }
      const url = typeof s.url === 'string' && s.url !== 'memory' ? safeUrl(s.url) : undefined;
      const password = typeof s.password === 'string' && s.password !== '';
      const username = typeof s.username === 'string' && s.username !== '';
      if (url && (url.username !== '' || url.password !== '') && (username || password)) {
        ctx.addIssue({ code: 'custom', path: [password ? 'password' : 'username'], message: 'store.url has credentials too: give them in one place' });
      }
    },
    WITH_FIELD_PROBLEMS,
  )
  // `url` is the default only when no other mode is given.
  .transform((s) => (s.cluster === undefined && s.sentinel === undefined && s.url === undefined ? { ...s, url: DEFAULT_STORE_URL } : s));

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

export type StoreConfig = z.output<typeof storeSchema>;

export type StoreMode = 'memory' | 'single' | 'cluster' | 'sentinel';

export interface CompiledStore {
  mode: StoreMode;
  /** `memory`, or the one-node URL; undefined in cluster and sentinel mode. */
  url: string | undefined;
  cluster: { nodes: RedisAddress[] } | undefined;
  sentinel: { name: string; sentinels: RedisAddress[]; username: string | undefined; password: string | undefined } | undefined;
  username: string | undefined;
  password: string | undefined;
  /** TLS to Redis: `tls: true`, a `rediss://` url, or any `rediss://` cluster node. */
  tls: boolean;
  keyPrefix: string;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

export function compileStore(s: StoreConfig): CompiledStore {
  const nodes = s.cluster?.nodes.map((n) => parseNodeAddress(n)!);
  const mode: StoreMode = s.cluster ? 'cluster' : s.sentinel ? 'sentinel' : s.url === 'memory' ? 'memory' : 'single';
  return {
    mode,
    url: s.url,
    cluster: nodes && { nodes },
    sentinel: s.sentinel && { name: s.sentinel.name, sentinels: s.sentinel.sentinels.map((a) => parseHostPort(a)!), username: s.sentinel.username || undefined, password: s.sentinel.password || undefined },
    username: s.username || undefined,
    password: s.password || undefined,
    tls: s.tls || (s.url?.startsWith('rediss://') ?? false) || (nodes?.some((n) => n.tls) ?? false),
    keyPrefix: s.keyPrefix,
    commandTimeoutMs: durationMs(s.commandTimeout),
    connectTimeoutMs: durationMs(s.connectTimeout),
  };
}

/** The env forms of the store mode (CONTRACT.md, "Store modes"). */
export const STORE_ENV = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'] as const;

/**
 * Applies REDIS_URL / REDIS_CLUSTER_NODES / REDIS_SENTINELS (+ REDIS_SENTINEL_NAME) to the raw
 * `store` section: an env form replaces the file's mode whatever it was (the sentinels' own
 * username / password stay when the file was in sentinel mode too). Problems are named by the
 * variable: two forms set, one sentinel variable without the other, a malformed address.
 */
export function applyStoreEnv(store: Record<string, unknown>, env: Record<string, string | undefined>, issue: (path: string, message: string) => void): void {
  const given = STORE_ENV.filter((name) => env[name]);
  if (given.length > 1) {
    issue(given[0]!, `conflicts with ${given.slice(1).join(' and ')}: set only one of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS (with REDIS_SENTINEL_NAME)`);
    return;
  }
  if (env.REDIS_SENTINEL_NAME && !env.REDIS_SENTINELS) {
    issue('REDIS_SENTINELS', 'required when REDIS_SENTINEL_NAME is set (comma-separated host:port of the sentinels)');
    return;
  }
  const list = (name: string, parse: (s: string) => RedisAddress | null, msg: string): string[] | undefined => {
    const items = env[name]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = items.find((s) => parse(s) === null);
    if (items.length === 0 || bad !== undefined) {
      issue(name, bad !== undefined ? `"${bad}": ${msg}` : `${msg}, comma-separated`);
      return undefined;
    }
    return items;
  };
  const keepOnly = (mode: (typeof MODES)[number], value: unknown) => {
    for (const m of MODES) delete store[m];
    store[mode] = value;
  };
  if (env.REDIS_URL) keepOnly('url', env.REDIS_URL);
  else if (env.REDIS_CLUSTER_NODES) {
    const nodes = list('REDIS_CLUSTER_NODES', parseNodeAddress, NODE_MSG);
    if (nodes) keepOnly('cluster', { nodes });
  } else if (env.REDIS_SENTINELS) {
    if (!env.REDIS_SENTINEL_NAME) {
      issue('REDIS_SENTINEL_NAME', 'required when REDIS_SENTINELS is set (the name the sentinels monitor the master under)');
      return;
    }
    const sentinels = list('REDIS_SENTINELS', parseHostPort, HOST_PORT_MSG);
    const previous = store.sentinel;
    const auth = typeof previous === 'object' && previous !== null ? Object.fromEntries(Object.entries(previous).filter(([k]) => k === 'username' || k === 'password')) : {};
    if (sentinels) keepOnly('sentinel', { ...auth, name: env.REDIS_SENTINEL_NAME, sentinels });
  }
}
