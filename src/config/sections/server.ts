// `server`: listeners, trusted proxies, how paths are read, and the nginx replay window.
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { durationMs } from '../../core/durations.js';
import type { IpClassifier } from '../../core/forwarded.js';
import type { PathSemantics } from '../../core/paths.js';
import { ipv4Number, ipv4Ranges } from '../../core/ip.js';
import { cidr, duration, parseCidr, positiveDuration, WITH_FIELD_PROBLEMS } from '../primitives.js';

export const DEFAULT_TRUSTED_PROXIES = [
  '127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7',
];

export const serverSchema = z.strictObject({
  trustedProxies: z.array(cidr).default(DEFAULT_TRUSTED_PROXIES),
  port: z.number().int().min(0).max(65535).default(8080),
  adminPort: z.number().int().min(0).max(65535).default(9090),
  /** Serve /metrics on this port too (alone, so a NetworkPolicy can open it without the admin API). */
  metricsPort: z.number().int().min(0).max(65535).optional(),
  /**
   * The listeners' address. Unset: `::`, which takes IPv6 and IPv4 clients (dual stack), or
   * 0.0.0.0 on a machine without IPv6. HOST overrides.
   */
  host: z.string().min(1).optional(),
  /** Fraction of allows that get a log line (0: none, the default; 1: every one). Denials always do. */
  logAllows: z.number({ message: 'expected a number from 0 to 1' }).min(0, { message: 'expected a number from 0 to 1' }).max(1, { message: 'expected a number from 0 to 1' }).default(0),
  /** How long a denial is kept for a proxy's replay (nginx auth_request), see http/replay.ts. */
  replayTtl: duration().default('10s'),
  /** How the upstream reads paths; the gate must not read them more strictly (core/paths.ts). */
  paths: z
    .strictObject({
      /** Literal pattern segments compare ASCII case-insensitively unless this is true. */
      caseSensitive: z.boolean().default(false),
      /** A `;` in a path: `reject` (400) or `strip` parameters before matching, as servlet containers do. */
      parameters: z.enum(['reject', 'strip'], { message: 'expected reject or strip' }).default('reject'),
    })
    .prefault({}),
  /** Reload when the config file or a key file it names changes (also the symlink swap of a Kubernetes ConfigMap). */
  watchConfig: z.boolean().default(false),
  /** A connection that has sent no byte within this is closed (connections held open starve the fd table). */
  idleTimeout: positiveDuration().default('10s'),
  /** `X-HTTP-Method-Override` and its kin naming another method: `reject` (400) or `ignore`. */
  methodOverride: z.enum(['reject', 'ignore'], { message: 'expected reject or ignore' }).default('reject'),
}).superRefine(
  (s, ctx) => {
    if (typeof s.metricsPort === 'number' && s.metricsPort !== 0 && (s.metricsPort === s.port || s.metricsPort === s.adminPort)) {
      ctx.addIssue({ code: 'custom', path: ['metricsPort'], message: `must differ from ${s.metricsPort === s.port ? 'port' : 'adminPort'} (${s.metricsPort})` });
    }
  },
  WITH_FIELD_PROBLEMS,
);

export type ServerConfig = z.output<typeof serverSchema>;

/** The address listeners use when HOST and server.host are not set: dual stack (see `dualStack`). */
export const DEFAULT_HOST = '::';

export interface CompiledServer {
  port: number;
  adminPort: number;
  metricsPort: number | undefined;
  host: string;
  /** The host is the default `::`: listen on 0.0.0.0 instead where IPv6 is unavailable. */
  dualStack: boolean;
  logAllows: number;
  classifyIp: IpClassifier;
  replayTtlMs: number;
  idleTimeoutMs: number;
  watchConfig: boolean;
  paths: PathSemantics & { caseSensitive: boolean };
  methodOverride: 'reject' | 'ignore';
}

export function compileServer(s: ServerConfig): CompiledServer {
  const blocks = new BlockList();
  const v4: { ip: string; prefix: number }[] = [];
  for (const c of s.trustedProxies) {
    const parsed = parseCidr(c)!;
    blocks.addSubnet(parsed.ip, parsed.prefix, parsed.family);
    if (parsed.family === 'ipv4') v4.push(parsed);
  }
  return {
    port: s.port,
    adminPort: s.adminPort,
    metricsPort: s.metricsPort,
    host: s.host ?? DEFAULT_HOST,
    dualStack: s.host === undefined,
    logAllows: s.logAllows,
    classifyIp: ipClassifier(blocks, ipv4Ranges(v4)),
    replayTtlMs: durationMs(s.replayTtl),
    idleTimeoutMs: durationMs(s.idleTimeout),
    watchConfig: s.watchConfig,
    paths: { caseSensitive: s.paths.caseSensitive, parameters: s.paths.parameters },
    methodOverride: s.methodOverride,
  };
}

/** Strips a port or brackets and unmaps `::ffff:a.b.c.d`; null when what is left is no IP address. */
export function normalizeIp(raw: string): string | null {
  let s = raw;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end === -1) return null;
    s = s.slice(1, end);
  } else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(s)) {
    s = s.slice(0, s.lastIndexOf(':'));
  }
  if (/^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(s)) s = s.slice(7);
  return isIP(s) === 0 ? null : s;
}

/**
 * Every /auth call classifies its peer and each X-Forwarded-For hop. A plain IPv4 address (the
 * common case) is parsed and matched against the IPv4 ranges directly; anything else (IPv6, a port,
 * brackets, a mapped address) goes through normalizeIp and Node's BlockList, whose check builds a
 * SocketAddress per call, behind a bounded memo.
 */
function ipClassifier(blocks: BlockList, trustedV4: (ip: number) => boolean): IpClassifier {
  const memo = new Map<string, { ip: string; trusted: boolean } | null>();
  return (raw) => {
    const v4 = ipv4Number(raw);
    if (v4 !== null) return { ip: raw, trusted: trustedV4(v4) };
    const hit = memo.get(raw);
    if (hit !== undefined) return hit;
    const ip = normalizeIp(raw);
    const result = ip === null ? null : { ip, trusted: blocks.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6') };
    if (memo.size >= 4096) memo.clear();
    memo.set(raw, result);
    return result;
  };
}
