// Reads the deploy files (YAML, Dockerfile, compose) the way their tools do, for test/deploy.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { ROOT } from '../helpers/gate.js';

export { ROOT };

export function readText(rel: string): string {
  return readFileSync(join(ROOT, rel), 'utf8');
}

/** Every document of a YAML file, as plain objects; throws on a syntax error or a duplicate key. */
export function yamlDocs(rel: string): Record<string, any>[] {
  const docs = parseAllDocuments(readText(rel), { uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(docs)) return [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${rel}: ${d.errors.map((e) => e.message).join('; ')}`);
  }
  return docs.map((d) => d.toJS() as Record<string, any>).filter((d) => d !== null);
}

export function yamlDoc(rel: string): Record<string, any> {
  const docs = yamlDocs(rel);
  if (docs.length !== 1) throw new Error(`${rel}: expected one YAML document, got ${docs.length}`);
  return docs[0]!;
}

/** Every YAML file this deploy kit ships. */
export const YAML_FILES = [
  'docker-compose.yml',
  'deploy/gate.yaml',
  'traefik/traefik.yml',
  'traefik/dynamic.yml',
  ...readdirSync(join(ROOT, 'kubernetes'))
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .map((f) => `kubernetes/${f}`),
];

/** The gate's own defaults (port, adminPort, host): the `server` section of an empty config, per the schema. */
export const GATE_DEFAULTS = configSchema.shape.server.parse(undefined);

/** The environment variables the contract (CONTRACT.md, "Processes and commands") says the gate reads. */
export const CONTRACT_ENV = ['PORT', 'ADMIN_PORT', 'HOST', 'REDIS_URL', 'GATE_ADMIN_TOKEN', 'LOG_LEVEL', 'GATE_CONFIG'];

/**
 * Traefik v3 ForwardAuth option names (file provider `forwardAuth` and CRD `spec.forwardAuth`), from
 * FORWARDAUTH.md §3: traefik pkg/config/dynamic/middlewares.go as of v3.7.9.
 */
export const FORWARD_AUTH_OPTIONS = [
  'address', 'tls', 'trustForwardHeader', 'authResponseHeaders', 'authResponseHeadersRegex', 'authRequestHeaders',
  'addAuthCookiesToResponse', 'headerField', 'forwardBody', 'maxBodySize', 'preserveLocationHeader',
  'preserveRequestMethod', 'maxResponseBodySize', 'authSigninURL',
];

/** deploy/gate.yaml, as the gate's loader reads it (YAML), before ${VAR} interpolation. */
export function gateYaml(): Record<string, any> {
  return yamlDoc('deploy/gate.yaml');
}

/** The `${VAR}` names deploy/gate.yaml needs: in string values, as the loader reads them (comments do not count). */
export function gateYamlVars(): string[] {
  const names = new Set<string>();
  const walk = (n: unknown): void => {
    if (typeof n === 'string') for (const m of n.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) names.add(m[1]!);
    else if (n && typeof n === 'object') Object.values(n).forEach(walk);
  };
  walk(gateYaml());
  return [...names].sort();
}

/** The header names of deploy/gate.yaml's auth.forwardClaims. */
export function gateForwardClaimHeaders(): string[] {
  return Object.keys((gateYaml().auth?.forwardClaims ?? {}) as Record<string, string>);
}

/**
 * Compose variable substitution, as `docker compose` applies it to values after parsing:
 * `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`.
 */
export function composeInterpolate<T>(node: T, env: Record<string, string | undefined>): T {
  const RE = /\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\})/g;
  const sub = (s: string) =>
    s.replace(RE, (_m, dollar: string | undefined, bare: string | undefined, name: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (dollar) return '$';
      const key = (bare ?? name)!;
      const value = env[key];
      // With a colon, an empty value counts as unset.
      const unsetOrEmpty = value === undefined || (op !== undefined && op.startsWith(':') && value === '');
      switch (op) {
        case undefined:
          return value ?? '';
        case ':-':
        case '-':
          return unsetOrEmpty ? arg! : value!;
        case ':?':
        case '?':
          if (unsetOrEmpty) throw new Error(`compose: required variable ${key} is missing: ${arg}`);
          return value!;
        default: // ':+' and '+'
          return unsetOrEmpty ? '' : arg!;
      }
    });
  const walk = (n: unknown): unknown => {
    if (typeof n === 'string') return sub(n);
    if (Array.isArray(n)) return n.map(walk);
    if (n && typeof n === 'object') return Object.fromEntries(Object.entries(n).map(([k, v]) => [k, walk(v)]));
    return n;
  };
  return walk(node) as T;
}

/** Compose `environment:` in either form (mapping or KEY=VALUE list) as a mapping. */
export function composeEnv(service: Record<string, any>): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e: string) => [e.split('=')[0]!, e.slice(e.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v == null ? '' : String(v)]));
}

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  cmd: string;
  /** Everything after the keyword, continuation lines joined. */
  args: string;
  /** The stage (0-based FROM index) it belongs to. */
  stage: number;
}

/** A Dockerfile as its instructions (comments and parser directives dropped, `\` continuations joined). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (pending === '' && /^\s*#/.test(line)) continue;
    if (pending !== '' && /^\s*#/.test(line)) continue; // comments inside a continuation are skipped too
    const cont = line.endsWith('\\');
    pending += (pending ? ' ' : '') + (cont ? line.slice(0, -1) : line).trim();
    if (cont) continue;
    const full = pending.trim();
    pending = '';
    if (full === '') continue;
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    const cmd = m[1]!.toUpperCase();
    if (cmd === 'FROM') stage++;
    out.push({ cmd, args: m[2]!, stage });
  }
  return out;
}

/** The JSON array of an exec-form instruction (`CMD ["a", "b"]`), or null for shell form. */
export function execForm(args: string): string[] | null {
  const trimmed = args.trim();
  if (!trimmed.startsWith('[')) return null;
  const parsed: unknown = JSON.parse(trimmed);
  return Array.isArray(parsed) && parsed.every((s) => typeof s === 'string') ? (parsed as string[]) : null;
}

/**
 * Whether `.dockerignore` keeps `path` in the build context: Docker's rules (last matching pattern
 * wins, `!` re-includes, a pattern matching a parent directory matches everything below it).
 */
export function dockerignoreKeeps(ignoreText: string, path: string): boolean {
  const patterns = ignoreText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const toRe = (glob: string) =>
    new RegExp(
      '^' +
        glob
          .replace(/\/+$/, '')
          .replace(/^\/+/, '')
          .split('')
          .map((c, i, all) => {
            if (c === '*') return all[i + 1] === '*' ? '' : all[i - 1] === '*' ? '.*' : '[^/]*';
            if (c === '?') return '[^/]';
            return c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
          })
          .join('') +
        '(?:/.*)?$',
    );
  let kept = true;
  for (const p of patterns) {
    const negate = p.startsWith('!');
    if (toRe(negate ? p.slice(1) : p).test(path)) kept = negate;
  }
  return kept;
}
