// Scenarios run against a test-owned Redis Cluster and Sentinel set: gate processes, load, failovers, invariants.
import { expect } from 'vitest';
import { VersionPublisher, type RedisPublisherOptions } from '../../src/client/index.js';
import { keyLayout } from '../../src/store/keys.js';
import { slotOf } from '../../src/store/redis/slot.js';
import { runFailover, type FailoverReport } from '../../bench/lib/failover.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { forward, ROOT, startGate, type RunningGate } from '../helpers/gate.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign, type TestKey } from '../helpers/tokens.js';

export { describeFailover, type FailoverReport } from '../../bench/lib/failover.js';
export const ADMIN_TOKEN = 'redis-modes-admin-token';
export const COMMAND_TIMEOUT_MS = 250;
/**
 * CONTRACT.md: a request makes at most two store calls and is answered within two command
 * timeouts plus 100 ms. The slack is for a loaded 2-core CI machine (processes, GC, the load
 * generator itself), not for the gate.
 */
export const LATENCY_BOUND_MS = 2 * COMMAND_TIMEOUT_MS + 100;
export const CI_SLACK_MS = 600;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Mode {
  name: string;
  /** The gate's env selecting the mode (REDIS_CLUSTER_NODES, or REDIS_SENTINELS + REDIS_SENTINEL_NAME). */
  env: Record<string, string>;
  /** The client library's target in this mode. */
  publisher: RedisPublisherOptions;
  /** The master (a stable id, e.g. its port) that serves `key` now. */
  masterOf(key: string): Promise<number>;
  /** Every master now. */
  masters(): Promise<number[]>;
}

let keyPromise: Promise<TestKey> | undefined;
export const testKey = () => (keyPromise ??= makeKey('ES256'));

/**
 * `commandTimeout`: the failover tests use the default-like 250 ms their bounds are stated in; the
 * exactness tests (one claim, N per client) give Redis 2 s, so that a loaded CI machine makes no
 * call fall to the fail mode, which is not what they are about.
 */
export function gateYaml(prefix: string, o: { limit?: number; claim?: boolean; conflictOnError?: 'allow' | 'deny'; rateOnError?: 'memory' | 'allow' | 'deny'; commandTimeoutMs?: number } = {}): string {
  return `
store: { keyPrefix: "${prefix}", commandTimeout: ${o.commandTimeoutMs ?? 2000}ms, connectTimeout: 500ms }
auth: { jwksFile: jwks.json, issuer: ${ISSUER}, audience: ${AUDIENCE}, algorithms: [ES256] }
rateLimit:
  onStoreError: ${o.rateOnError ?? 'memory'}
  rules:
    - { name: shared, limit: ${o.limit ?? 1_000_000}, window: 60s }
conflict:
  onStoreError: ${o.conflictOnError ?? 'deny'}
  claim: { enabled: ${o.claim ?? false}, lease: 5s }
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
`;
}

export async function startGates(mode: Mode, n: number, yaml: string): Promise<RunningGate[]> {
  const key = await testKey();
  const gates = await Promise.all(
    Array.from({ length: n }, () => startGate({ yaml, files: { 'jwks.json': JSON.stringify(jwks(key)) }, env: { ...mode.env, GATE_ADMIN_TOKEN: ADMIN_TOKEN, LOG_LEVEL: 'warn' } })),
  );
  await Promise.all(gates.map((g) => waitReady(g)));
  return gates;
}

export async function waitReady(g: RunningGate, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if ((await fetch(`${g.url}/readyz?strict=1`)).status === 200) return;
    await sleep(50);
  }
  throw new Error(`gate never became ready:\n${g.output()}`);
}

/** `count` distinct values of `make(i)` per master, the master chosen by the slot of `keyOf(value)`. */
export async function spreadOverMasters(mode: Mode, count: number, make: (i: number) => string, keyOf: (v: string) => string): Promise<Map<number, string[]>> {
  const masters = await mode.masters();
  const by = new Map<number, string[]>(masters.map((m) => [m, []]));
  const slotOwner = new Map<number, number>();
  for (let i = 0; [...by.values()].some((l) => l.length < count); i++) {
    if (i > 100_000) throw new Error('could not spread keys over every master');
    const v = make(i);
    const slot = slotOf(keyOf(v));
    let owner = slotOwner.get(slot);
    if (owner === undefined) slotOwner.set(slot, (owner = await mode.masterOf(keyOf(v))));
    const list = by.get(owner)!;
    if (list.length < count) list.push(v);
  }
  return by;
}

export async function metricsText(g: RunningGate): Promise<string> {
  return (await fetch(`${g.adminUrl}/metrics`)).text();
}

/** Sum of a counter's samples whose labels match `labels` (a substring of the label set); the name with or without the conflict_gate_ prefix. */
export function counterSum(text: string, name: string, labels = ''): number {
  let sum = 0;
  const re = new RegExp(`^(conflict_gate_)?${name}[{ ]`);
  for (const line of text.split('\n')) {
    if (!re.test(line)) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export async function adminPut(g: RunningGate, key: string, version: string): Promise<Response> {
  return fetch(`${g.adminUrl}/versions/${encodeURIComponent(key)}`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ version }) });
}

export async function bearer(sub: string): Promise<Record<string, string>> {
  return { Authorization: `Bearer ${await sign(await testKey(), { sub })}` };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/** Three gates share one budget per client, for clients whose counters live on every master. */
export async function exactLimitAcrossGates(mode: Mode, prefix: string): Promise<void> {
  const limit = 10;
  const gates = await startGates(mode, 3, gateYaml(prefix, { limit }));
  try {
    const layout = keyLayout(prefix);
    const byMaster = await spreadOverMasters(mode, 2, (i) => `client-${i}`, (sub) => `${layout.rateLimit('shared')}:c:${sub}`);
    const subs = [...byMaster.values()].flat();
    const tokens = await Promise.all(subs.map((s) => bearer(s)));
    // 3 × limit requests per client, round-robin over the gates, all in flight at once.
    const results = await Promise.all(
      subs.flatMap((_, ci) => Array.from({ length: 3 * limit }, (_, i) => forward(gates[i % 3]!.url, 'GET', '/api/x', tokens[ci]!).then((r) => ({ ci, status: r.status })))),
    );
    for (let ci = 0; ci < subs.length; ci++) {
      const mine = results.filter((r) => r.ci === ci).map((r) => r.status);
      expect({ client: subs[ci], allowed: mine.filter((s) => s === 200).length, limited: mine.filter((s) => s === 429).length }).toEqual({ client: subs[ci], allowed: limit, limited: 2 * limit });
    }
    for (const g of gates) expect(counterSum(await metricsText(g), 'store_errors_total')).toBe(0);
  } finally {
    await Promise.all(gates.map((g) => g.stop()));
  }
}

/** Claim mode: 20 concurrent writes to one resource version, over three gates, admit exactly one; for resources on every master. */
export async function oneClaimPerVersion(mode: Mode, prefix: string): Promise<void> {
  const gates = await startGates(mode, 3, gateYaml(prefix, { claim: true }));
  try {
    const layout = keyLayout(prefix);
    const byMaster = await spreadOverMasters(mode, 2, (i) => String(1000 + i), (id) => layout.version(`orders:${id}`));
    const ids = [...byMaster.values()].flat();
    for (const id of ids) expect((await adminPut(gates[0]!, `orders:${id}`, '7')).status).toBe(200);
    const auth = await bearer('writer');
    const results = await Promise.all(
      ids.flatMap((id) => Array.from({ length: 20 }, (_, i) => forward(gates[i % 3]!.url, 'PUT', `/api/orders/${id}`, { ...auth, 'If-Match': '"7"' }).then(async (r) => ({ id, status: r.status, code: r.status === 200 ? '' : ((await r.json()) as { code: string }).code })))),
    );
    for (const id of ids) {
      const mine = results.filter((r) => r.id === id);
      expect({ id, admitted: mine.filter((r) => r.status === 200).length, inProgress: mine.filter((r) => r.code === 'write_in_progress').length }).toEqual({ id, admitted: 1, inProgress: 19 });
    }
  } finally {
    await Promise.all(gates.map((g) => g.stop()));
  }
}

/** The admin API and the client library publish on every master, and the gates read what they published. */
export async function publishesEverywhere(mode: Mode, prefix: string): Promise<void> {
  const [g] = await startGates(mode, 1, gateYaml(prefix));
  const pub = new VersionPublisher({ redis: { ...mode.publisher, keyPrefix: prefix } });
  try {
    const layout = keyLayout(prefix);
    const ids = [...(await spreadOverMasters(mode, 2, (i) => String(5000 + i), (id) => layout.version(`orders:${id}`))).values()].flat();
    const auth = await bearer('publisher-test');
    for (const [n, id] of ids.entries()) {
      const key = `orders:${id}`;
      if (n % 2 === 0) {
        // Through the admin API: publish-if-newer, 409 for a lower version, GET, DELETE.
        expect((await adminPut(g!, key, '3')).status).toBe(200);
        expect((await adminPut(g!, key, '2')).status).toBe(409);
        const got = await fetch(`${g!.adminUrl}/versions/${key}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
        expect(await got.json()).toEqual({ key, version: '3' });
      } else {
        // Through the client library, in this mode.
        expect(await pub.publish(key, 3)).toEqual({ kind: 'published', previous: null });
        expect(await pub.publish(key, 2)).toEqual({ kind: 'stale', current: '3' });
        expect(await pub.get(key)).toBe('3');
      }
      // The gate reads it: a stale If-Match is 412, the current one passes with the version.
      expect((await forward(g!.url, 'PUT', `/api/orders/${id}`, { ...auth, 'If-Match': '"2"' })).status).toBe(412);
      const ok = await forward(g!.url, 'PUT', `/api/orders/${id}`, { ...auth, 'If-Match': '"3"' });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-resource-version')).toBe('3');
    }
    // release and remove through the library
    const first = `orders:${ids[1]}`;
    await pub.release(first);
    expect(await pub.remove(first)).toBe(true);
    expect(await pub.get(first)).toBeNull();
  } finally {
    await pub.close();
    await g!.stop();
  }
}

/**
 * A script that uses the client library (the built package, in its own process) ends by itself
 * once it has closed its publisher: close() leaves no connection behind, in this mode's topology
 * (Sentinel's failover detector holds one to each sentinel).
 */
export async function publisherLetsProcessExit(mode: Mode, prefix: string): Promise<void> {
  const client = pathToFileURL(join(ROOT, 'dist/client/index.js')).href;
  const script = `
    import { VersionPublisher } from ${JSON.stringify(client)};
    const pub = new VersionPublisher({ redis: JSON.parse(process.argv[1]) });
    await pub.publish('orders:exit', 1);
    console.log('got', await pub.get('orders:exit'));
    await pub.close();
    console.log('closed');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify({ ...mode.publisher, keyPrefix: prefix })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(timer);
  expect({ code, out }).toEqual({ code: 0, out: 'got 1\nclosed\n' });
}

/** nginx's replay: a kept denial is served again by another gate, for ids kept on every master, at no cost. */
export async function replayAcrossGates(mode: Mode, prefix: string): Promise<void> {
  const gates = await startGates(mode, 2, gateYaml(prefix, { limit: 1 }));
  try {
    const layout = keyLayout(prefix);
    const ids = [...(await spreadOverMasters(mode, 1, (i) => `req-${1_000_000 + i}`, (id) => layout.replay(id))).values()].flat();
    for (const [n, id] of ids.entries()) {
      const auth = await bearer(`replayer-${n}`);
      expect((await forward(gates[0]!.url, 'GET', '/api/x', auth)).status).toBe(200); // spends the one point
      const first = await forward(gates[0]!.url, 'GET', '/api/x', { ...auth, 'X-Request-Id': id });
      expect(first.status).toBe(429);
      const body = await first.text();
      const replay = await forward(gates[1]!.url, 'GET', '/api/x', { ...auth, 'X-Request-Id': id, 'X-Auth-Replay': '429' });
      expect(replay.status).toBe(429);
      expect(await replay.text()).toBe(body);
    }
  } finally {
    await Promise.all(gates.map((g) => g.stop()));
  }
}

// ---------------------------------------------------------------------------------------------
// Failover under a bounded load (the load and its measures live in bench/lib/failover.ts)

/**
 * One gate (conflict.onStoreError: deny, rate limits falling back to memory) under a steady load
 * of current and stale writes on resources of every master, while `kill` takes the victim master
 * down (kill -9) and `promoted` says when a replica has taken over.
 */
export async function failoverUnderLoad(
  mode: Mode,
  prefix: string,
  o: { victimIds: string[]; otherIds: string[]; kill: () => Promise<void>; promoted: () => Promise<boolean>; gate?: RunningGate },
): Promise<FailoverReport> {
  const [g] = o.gate ? [o.gate] : await startGates(mode, 1, gateYaml(prefix, { conflictOnError: 'deny', commandTimeoutMs: COMMAND_TIMEOUT_MS }));
  try {
    const report = await runFailover({ gateUrl: g!.url, adminUrl: g!.adminUrl, adminToken: ADMIN_TOKEN, auth: await bearer('failover-load'), ...o });
    expect(g!.proc.exitCode).toBeNull();
    return report;
  } finally {
    if (!o.gate) await g!.stop();
  }
}
