// Reads a config file: YAML → ${VAR} interpolation → env overrides → zod validation. Collects every problem.
import { readFileSync } from 'node:fs';
import { parseDocument, parse as parseYamlScalar } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

/** One problem with a config, named by its field path (`rateLimit.rules[1].window`). */
export interface ConfigIssue {
  path: string;
  message: string;
}

export type LoadResult = { ok: true; config: Config } | { ok: false; issues: ConfigIssue[] };

export type Env = Record<string, string | undefined>;

/** Renders `['rateLimit', 'rules', 1, 'window']` as `rateLimit.rules[1].window`. */
export function renderPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Reads and validates a config file. Never throws for bad input. */
export function loadConfigFile(file: string, env: Env): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : 'cannot be read';
    return { ok: false, issues: [{ path: file, message: why }] };
  }
  return loadConfigText(text, env, file);
}

/** Validates config text (YAML). Never throws for bad input. */
export function loadConfigText(text: string, env: Env, source = '(config)'): LoadResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // prettyErrors: the first line ends "at line L, column C:", followed by a source excerpt.
    return { ok: false, issues: doc.errors.map((e) => ({ path: source, message: `invalid YAML: ${e.message.split('\n')[0]!.replace(/:$/, '')}` })) };
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, issues: [{ path: '(root)', message: 'expected a mapping of sections (server, store, auth, rateLimit, conflict)' }] };
  }
  const issues: ConfigIssue[] = [];
  const interpolated = interpolate(raw, [], env, issues);
  applyEnvOverrides(interpolated as Record<string, unknown>, env, issues);
  const parsed = configSchema.safeParse(interpolated);
  if (!parsed.success) {
    // A field whose ${VAR} is unset is reported once, as that, not again as a type error.
    const unset = new Set(issues.map((i) => i.path));
    issues.push(...parsed.error.issues.flatMap(describeIssue).filter((i) => !unset.has(i.path)));
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, config: parsed.data as Config };
}

const VAR_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const WHOLE_VAR_RE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/**
 * Replaces `${VAR}` in string values (never in keys, never in YAML structure: an env value cannot
 * add a section). A value that is exactly `${VAR}` is read as a YAML scalar, so `limit: ${LIMIT}`
 * gives a number.
 */
function interpolate(node: unknown, path: PropertyKey[], env: Env, issues: ConfigIssue[]): unknown {
  if (typeof node === 'string') {
    const whole = WHOLE_VAR_RE.exec(node);
    if (whole) {
      const value = env[whole[1]!];
      if (value === undefined) {
        issues.push({ path: renderPath(path), message: `environment variable ${whole[1]} is not set` });
        return node;
      }
      const scalar: unknown = safeScalar(value);
      return typeof scalar === 'number' || typeof scalar === 'boolean' ? scalar : value;
    }
    return node.replace(VAR_RE, (match, name: string) => {
      const value = env[name];
      if (value === undefined) {
        issues.push({ path: renderPath(path), message: `environment variable ${name} is not set` });
        return match;
      }
      return value;
    });
  }
  if (Array.isArray(node)) return node.map((item, i) => interpolate(item, [...path, i], env, issues));
  if (typeof node === 'object' && node !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolate(v, [...path, k], env, issues);
    return out;
  }
  return node;
}

function safeScalar(value: string): unknown {
  try {
    return parseYamlScalar(value);
  } catch {
    return value;
  }
}

const PORT_RE = /^\d{1,5}$/;

/** PORT, ADMIN_PORT, HOST, REDIS_URL override the file (LOG_LEVEL and GATE_ADMIN_TOKEN are read by the server). */
function applyEnvOverrides(root: Record<string, unknown>, env: Env, issues: ConfigIssue[]): void {
  const section = (name: string): Record<string, unknown> => {
    const existing = root[name];
    if (typeof existing === 'object' && existing !== null && !Array.isArray(existing)) return existing as Record<string, unknown>;
    const created: Record<string, unknown> = {};
    if (existing === undefined || existing === null) root[name] = created;
    return created;
  };
  const port = (name: string, key: string) => {
    const value = env[name];
    if (value === undefined || value === '') return;
    if (!PORT_RE.test(value) || Number(value) > 65535) {
      issues.push({ path: name, message: 'expected a port number (0-65535)' });
      return;
    }
    section('server')[key] = Number(value);
  };
  port('PORT', 'port');
  port('ADMIN_PORT', 'adminPort');
  if (env.HOST) section('server').host = env.HOST;
  if (env.REDIS_URL) section('store').url = env.REDIS_URL;
}

type ZodIssue = z.core.$ZodIssue;

/** Turns a zod issue into messages an operator can act on (one per unknown key). */
function describeIssue(issue: ZodIssue): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => ({ path: renderPath([...issue.path, k]), message: 'unknown key' }));
  }
  const path = renderPath(issue.path);
  // Our own messages (schema.ts) say what is expected already; zod's defaults start "Invalid".
  if (issue.code !== 'invalid_union' && !issue.message.startsWith('Invalid') && !/^(Too|Expected|Number must|String must)/.test(issue.message)) {
    return [{ path, message: issue.message }];
  }
  if (issue.code === 'invalid_type') {
    if (/received undefined$/.test(issue.message)) return [{ path, message: 'required' }];
    const received = /received (\w+)$/.exec(issue.message)?.[1];
    const expected = issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`;
    return [{ path, message: `expected ${expected}${received ? `, got ${received === 'object' ? 'a mapping' : received === 'array' ? 'a list' : received}` : ''}` }];
  }
  if (issue.code === 'too_small' && issue.origin === 'array') return [{ path, message: `expected at least ${String(issue.minimum)} item(s)` }];
  if (issue.code === 'too_small' && issue.origin === 'string') return [{ path, message: 'must not be empty' }];
  if (issue.code === 'too_small') return [{ path, message: `expected a number >= ${String(issue.minimum)}` }];
  if (issue.code === 'too_big') return [{ path, message: `expected a number <= ${String(issue.maximum)}` }];
  if (issue.code === 'invalid_union') {
    // Prefer the message of the branch that got furthest, else a generic one.
    const nested = issue.errors.flat().find((e) => e.code !== 'invalid_type' && e.code !== 'invalid_value');
    if (nested) return describeIssue({ ...nested, path: [...issue.path, ...nested.path] } as ZodIssue);
    return [{ path, message: issue.message.startsWith('Invalid input') ? 'invalid value' : issue.message }];
  }
  if (issue.code === 'invalid_format' && issue.format === 'url') return [{ path, message: issue.message.startsWith('Invalid') ? 'expected an http(s) URL' : issue.message }];
  return [{ path, message: issue.message }];
}
