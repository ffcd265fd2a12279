// Test-owned Redis Cluster and Sentinel sets: Debian's redis-server on free ports, stopped by PID.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForPort } from './net.js';

const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every server this process started: killed on exit too, so a crashed test leaves nothing behind. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) if (p.exitCode === null && p.pid) p.kill('SIGKILL');
});

/** One redis-server (data node or sentinel) started by this process. */
export interface ServerProc {
  port: number;
  /** `127.0.0.1:<port>`. */
  address: string;
  readonly pid: number | undefined;
  alive(): boolean;
  /** SIGKILL (an outage, not a shutdown); resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: the socket stays open, nothing answers. */
  pause(): void;
  resume(): void;
  /** Starts it again with the same arguments (same port, same dir). */
  restart(): Promise<void>;
}

async function server(args: string[], port: number, dir: string): Promise<ServerProc> {
  let proc: ChildProcess | undefined;
  const start = async () => {
    const p = spawn('redis-server', args, { cwd: dir, stdio: 'ignore' });
    live.add(p);
    p.once('exit', () => live.delete(p));
    proc = p;
    await waitForPort(port, 10_000);
  };
  await start();
  return {
    port,
    address: `${HOST}:${port}`,
    get pid() {
      return proc?.pid;
    },
    alive: () => proc !== undefined && proc.exitCode === null && proc.signalCode === null,
    kill: async () => {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      p.kill('SIGCONT');
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    },
    pause: () => void proc?.kill('SIGSTOP'),
    resume: () => void proc?.kill('SIGCONT'),
    restart: start,
  };
}

// A replica's first sync starts at once (Redis 7 otherwise waits 5 s for more replicas to share a diskless transfer).
const COMMON = ['--bind', HOST, '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--repl-diskless-sync-delay', '0'];

/** TLS files: a CA, and a server certificate it signed for 127.0.0.1. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** Makes a throwaway CA and a server certificate for 127.0.0.1 (openssl), in `dir`. */
export function makeTlsFiles(dir: string): TlsFiles {
  const f = { ca: join(dir, 'ca.pem'), caKey: join(dir, 'ca.key'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), csr: join(dir, 'server.csr'), ext: join(dir, 'san.ext') };
  writeFileSync(f.ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f.caKey, '-out', f.ca, '-days', '2', '-subj', '/CN=conflict-gate test CA']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f.key, '-out', f.csr, '-subj', '/CN=127.0.0.1']);
  run(['x509', '-req', '-in', f.csr, '-CA', f.ca, '-CAkey', f.caKey, '-CAcreateserial', '-out', f.cert, '-days', '2', '-extfile', f.ext]);
  return { ca: f.ca, cert: f.cert, key: f.key };
}

/** Passwords, ACL users and TLS for the servers a helper starts (all optional: none by default). */
export interface Security {
  /** requirepass of the default user; replicas use it as masterauth, the helpers' own admin commands too. */
  adminPassword?: string;
  /** ACL users, as `user` config directives: `gate on >pw ~cg:* +get ...`. */
  users?: string[];
  /** requirepass of the sentinels (and the password they give each other). */
  sentinelPassword?: string;
  /** TLS on every port: clients, replication, the cluster bus. */
  tls?: TlsFiles;
}

function dataArgs(port: number, sec: Security, cluster: boolean): string[] {
  const a = sec.tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', sec.tls.cert, '--tls-key-file', sec.tls.key, '--tls-ca-cert-file', sec.tls.ca, '--tls-auth-clients', 'no', '--tls-replication', 'yes', ...(cluster ? ['--tls-cluster', 'yes'] : [])]
    : ['--port', String(port)];
  if (sec.adminPassword) a.push('--requirepass', sec.adminPassword, '--masterauth', sec.adminPassword);
  for (const u of sec.users ?? []) a.push('--user', ...u.split(' '));
  return a;
}

function cliArgs(sec: Security): string[] {
  return [...(sec.adminPassword ? ['-a', sec.adminPassword, '--no-auth-warning'] : []), ...(sec.tls ? ['--tls', '--cacert', sec.tls.ca] : [])];
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(100);
  }
}

/** The security of the servers started by this process, by port (for the helpers' own admin connections). */
const securityOf = new Map<number, { sec: Security; sentinel: boolean }>();

/** A short-lived connection for one admin command (never the gate's client). */
async function withNode<T>(port: number, f: (r: Redis) => Promise<T>): Promise<T> {
  const known = securityOf.get(port);
  const sec = known?.sec ?? {};
  const password = known?.sentinel ? sec.sentinelPassword : sec.adminPassword;
  const r = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
    commandTimeout: 2000,
    ...(password ? { password } : {}),
    ...(sec.tls ? { tls: { ca: readFileSync(sec.tls.ca) } } : {}),
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await f(r);
  } finally {
    r.disconnect();
  }
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

// ---------------------------------------------------------------------------------------------
// Cluster

export interface OwnCluster {
  nodes: ServerProc[];
  /** `127.0.0.1:<port>` of every node, for store.cluster.nodes / REDIS_CLUSTER_NODES. */
  seeds: string[];
  /** The node serving a slot as master now (asks a live node). */
  masterOf(slot: number): Promise<ServerProc>;
  /** Ports of the masters that hold slots now. */
  masters(): Promise<ServerProc[]>;
  /** The live replicas of `master` (by their own INFO replication). */
  replicasOf(master: ServerProc): Promise<ServerProc[]>;
  /** Until every live node says cluster_state:ok and all 16384 slots are served by a live master. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Moves `slots` (a count, from `from` to `to`) with `redis-cli --cluster reshard`, keys and all. */
  reshard(from: ServerProc, to: ServerProc, slots: number): Promise<{ code: number | null; output: string }>;
  stop(): Promise<void>;
}

async function clusterId(port: number): Promise<string> {
  return withNode(port, async (r) => String(await r.call('CLUSTER', 'MYID')));
}

/** Starts `masters` masters with `replicas` replicas each (cluster-node-timeout `nodeTimeoutMs`). */
export async function startCluster(opts: { masters?: number; replicas?: number; nodeTimeoutMs?: number; security?: Security } = {}): Promise<OwnCluster> {
  const sec = opts.security ?? {};
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 1;
  const total = masters * (1 + replicas);
  const dir = mkdtempSync(join(tmpdir(), 'cg-cluster-'));
  const nodes: ServerProc[] = [];
  try {
    for (let i = 0; i < total; i++) {
      const port = await freePort();
      const bus = await freePort();
      securityOf.set(port, { sec, sentinel: false });
      const args = [
        ...dataArgs(port, sec, true), ...COMMON,
        '--cluster-enabled', 'yes', '--cluster-port', String(bus),
        '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1000),
        // A replica promotes itself however long it was cut off (the tests kill masters right after start).
        '--cluster-replica-validity-factor', '0',
        '--dir', dir,
      ];
      nodes.push(await server(args, port, dir));
    }
    const create = spawnSync('redis-cli', [...cliArgs(sec), '--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8', timeout: 60_000 });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`);
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const byPort = new Map(nodes.map((n) => [n.port, n]));
  const anyLive = () => nodes.find((n) => n.alive())!;
  const slotsTable = async (): Promise<[number, number, number][]> =>
    withNode(anyLive().port, async (r) => ((await r.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][]).map(([a, b, m]) => [a, b, Number(m[1])]));

  const cluster: OwnCluster = {
    nodes,
    seeds: nodes.map((n) => n.address),
    masterOf: async (slot) => {
      const row = (await slotsTable()).find(([a, b]) => slot >= a && slot <= b);
      if (!row) throw new Error(`slot ${slot} is not served`);
      return byPort.get(row[2])!;
    },
    masters: async () => [...new Set((await slotsTable()).map(([, , p]) => p))].map((p) => byPort.get(p)!),
    replicasOf: async (master) => {
      const out: ServerProc[] = [];
      for (const n of nodes.filter((x) => x.alive() && x !== master)) {
        const info = await withNode(n.port, async (r) => String(await r.call('INFO', 'replication')));
        if (infoField(info, 'role') === 'slave' && Number(infoField(info, 'master_port')) === master.port) out.push(n);
      }
      return out;
    },
    waitHealthy: async (timeoutMs = 30_000) => {
      await waitFor(
        'a healthy cluster',
        async () => {
          for (const n of nodes.filter((x) => x.alive())) {
            const info = await withNode(n.port, async (r) => String(await r.call('CLUSTER', 'INFO')));
            if (infoField(info, 'cluster_state') !== 'ok' || infoField(info, 'cluster_slots_ok') !== '16384') return undefined;
          }
          const table = await slotsTable();
          const covered = table.reduce((s, [a, b]) => s + (b - a + 1), 0);
          if (covered !== 16384 || table.some(([, , p]) => !byPort.get(p)?.alive())) return undefined;
          return true;
        },
        timeoutMs,
      );
    },
    reshard: async (from, to, slots) => {
      const [fromId, toId] = await Promise.all([clusterId(from.port), clusterId(to.port)]);
      const args = [...cliArgs(sec), '--cluster', 'reshard', to.address, '--cluster-from', fromId, '--cluster-to', toId, '--cluster-slots', String(slots), '--cluster-yes', '--cluster-pipeline', '50'];
      const proc = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
      proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
      return { code, output };
    },
    stop: async () => {
      await Promise.all(nodes.map((n) => n.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await cluster.waitHealthy();
    // Every node must know every other, and every replica be in sync, before a test kills a master.
    await waitFor('every node to see the full cluster, every replica in sync', async () => {
      let synced = 0;
      for (const n of nodes) {
        const info = await withNode(n.port, async (r) => String(await r.call('CLUSTER', 'INFO')));
        if (infoField(info, 'cluster_known_nodes') !== String(total)) return undefined;
        const repl = await withNode(n.port, async (r) => String(await r.call('INFO', 'replication')));
        if (infoField(repl, 'role') === 'slave') {
          if (infoField(repl, 'master_link_status') !== 'up') return undefined;
          synced++;
        }
      }
      return synced === masters * replicas ? true : undefined;
    });
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** What a node says its replication role is now (`master` / `slave`), or undefined when it does not answer. */
export async function roleOf(node: ServerProc): Promise<string | undefined> {
  if (!node.alive()) return undefined;
  return withNode(node.port, async (r) => infoField(String(await r.call('INFO', 'replication')), 'role')).catch(() => undefined);
}

/** The clients connected to a node (CLIENT LIST): each one's name and the last command it ran. */
export async function clientList(node: ServerProc): Promise<{ name: string; cmd: string }[]> {
  const text = await withNode(node.port, async (r) => String(await r.call('CLIENT', 'LIST')));
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => ({ name: / name=(\S*)/.exec(line)?.[1] ?? '', cmd: / cmd=(\S*)/.exec(line)?.[1] ?? '' }));
}

/** The names of the clients connected to a node. */
export async function clientNames(node: ServerProc): Promise<string[]> {
  return (await clientList(node)).map((c) => c.name);
}

// ---------------------------------------------------------------------------------------------
// Sentinel

export interface OwnSentinelSet {
  name: string;
  /** The data nodes: [initial master, replica, replica]. */
  nodes: ServerProc[];
  sentinels: ServerProc[];
  /** `127.0.0.1:<port>` of each sentinel, for store.sentinel.sentinels / REDIS_SENTINELS. */
  sentinelAddresses: string[];
  /** The data node the sentinels name as master now. */
  master(): Promise<ServerProc>;
  /** Until a quorum of sentinels names a live master that says role:master, with `replicas` linked replicas. */
  waitHealthy(opts?: { replicas?: number; timeoutMs?: number; notPort?: number }): Promise<ServerProc>;
  stop(): Promise<void>;
}

/** One master, `replicas` replicas, `sentinels` sentinels (quorum 2, or 1 with one sentinel; down-after `downAfterMs`). */
export async function startSentinelSet(opts: { replicas?: number; sentinels?: number; downAfterMs?: number; name?: string; security?: Security } = {}): Promise<OwnSentinelSet> {
  const sec = opts.security ?? {};
  const name = opts.name ?? 'cgmaster';
  const dir = mkdtempSync(join(tmpdir(), 'cg-sentinel-'));
  const nodes: ServerProc[] = [];
  const sentinels: ServerProc[] = [];
  const stop = async () => {
    await Promise.all([...sentinels, ...nodes].map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const masterPort = await freePort();
    securityOf.set(masterPort, { sec, sentinel: false });
    nodes.push(await server([...dataArgs(masterPort, sec, false), ...COMMON, '--dir', dir], masterPort, dir));
    for (let i = 0; i < (opts.replicas ?? 2); i++) {
      const port = await freePort();
      securityOf.set(port, { sec, sentinel: false });
      nodes.push(await server([...dataArgs(port, sec, false), ...COMMON, '--dir', dir, '--replicaof', HOST, String(masterPort)], port, dir));
    }
    for (let i = 0; i < (opts.sentinels ?? 3); i++) {
      const port = await freePort();
      securityOf.set(port, { sec, sentinel: true });
      const conf = join(dir, `sentinel-${port}.conf`);
      const tls = sec.tls;
      writeFileSync(
        conf,
        [
          ...(tls ? ['port 0', `tls-port ${port}`, `tls-cert-file ${tls.cert}`, `tls-key-file ${tls.key}`, `tls-ca-cert-file ${tls.ca}`, 'tls-auth-clients no', 'tls-replication yes'] : [`port ${port}`]),
          ...(sec.sentinelPassword ? [`requirepass ${sec.sentinelPassword}`, `sentinel sentinel-pass ${sec.sentinelPassword}`] : []),
          `bind ${HOST}`,
          'protected-mode no',
          `dir ${dir}`,
          `sentinel monitor ${name} ${HOST} ${masterPort} ${Math.min(2, opts.sentinels ?? 3)}`,
          ...(sec.adminPassword ? [`sentinel auth-pass ${name} ${sec.adminPassword}`] : []),
          `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 2`,
          '',
        ].join('\n'),
      );
      sentinels.push(await server([conf, '--sentinel'], port, dir));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const byPort = new Map(nodes.map((n) => [n.port, n]));
  const masterFrom = async (s: ServerProc): Promise<number> =>
    withNode(s.port, async (r) => Number(((await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string])[1]));
  const set: OwnSentinelSet = {
    name,
    nodes,
    sentinels,
    sentinelAddresses: sentinels.map((s) => s.address),
    master: async () => byPort.get(await masterFrom(sentinels.find((s) => s.alive())!))!,
    waitHealthy: async ({ replicas = nodes.length - 1, timeoutMs = 30_000, notPort } = {}) =>
      waitFor(
        'a healthy sentinel set',
        async () => {
          const ports = await Promise.all(sentinels.filter((s) => s.alive()).map((s) => masterFrom(s).catch(() => -1)));
          const port = ports[0]!;
          if (port === notPort || ports.filter((p) => p === port).length < Math.min(2, sentinels.length)) return undefined;
          const m = byPort.get(port);
          if (!m?.alive()) return undefined;
          const info = await withNode(port, async (r) => String(await r.call('INFO', 'replication')));
          if (infoField(info, 'role') !== 'master') return undefined;
          // Replicas connected and in sync (state=online), not merely connected (state=wait_bgsave):
          // a replica promoted before its first sync has no data.
          if ((info.match(/^slave\d+:.*state=online/gm) ?? []).length < replicas) return undefined;
          // Each sentinel must know the others (for a quorum) and the replicas (to promote one).
          for (const s of sentinels.filter((x) => x.alive())) {
            const fields = await withNode(s.port, async (r) => (await r.call('SENTINEL', 'MASTER', name)) as string[]);
            const get = (f: string) => fields[fields.indexOf(f) + 1];
            if (Number(get('num-other-sentinels')) < sentinels.filter((x) => x.alive()).length - 1 || Number(get('num-slaves')) < replicas) return undefined;
          }
          return m;
        },
        timeoutMs,
      ),
    stop,
  };
  try {
    await set.waitHealthy();
  } catch (err) {
    await stop();
    throw err;
  }
  return set;
}
