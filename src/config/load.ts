// Reads a config file: YAML → ${VAR} interpolation → env overrides → zod validation. Collects every problem.
import { readFileSync } from 'node:fs';
import { parseDocument, parse as parseYamlScalar } from 'yaml';
import type { z } from 'zod';
import { isMapping, type ConfigIssue } from './primitives.js';
import { configSchema, type Config } from './schema.js';
import { applyStoreEnv } from './sections/store.js';

export type { ConfigIssue };

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
  // A warning is an unresolved tag (`!Ref x` read as the string "x"): a mistake, not a value.
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    // prettyErrors: the first line ends "at line L, column C:", followed by a source excerpt.
    return { ok: false, issues: problems.map((e) => ({ path: source, message: `invalid YAML: ${e.message.split('\n')[0]!.replace(/:$/, '')}` })) };
  }
  let raw: unknown;
  try {
    // An alias bomb ("billion laughs") parses, and is refused here, when its aliases are expanded.
    raw = doc.toJS() ?? {};
  } catch (err) {
    return { ok: false, issues: [{ path: source, message: `invalid YAML: ${err instanceof Error ? err.message : String(err)}` }] };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, issues: [{ path: '(root)', message: 'expected a mapping of sections (server, store, auth, rateLimit, conflict)' }] };
  }
  const issues: ConfigIssue[] = [];
  const typed: Typed[] = [];
  const interpolated = interpolate(raw, [], env, issues, typed);
  applyEnvOverrides(interpolated as Record<string, unknown>, env, issues);
  // reportInput: a missing field is told apart from a wrong one ("required"); inputs are never printed.
  let parsed = configSchema.safeParse(interpolated, { reportInput: true });
  // `issuer: ${ISSUER}` with ISSUER=123 was read as a number: where the schema wants none, it is the text.
  if (!parsed.success && untype(interpolated, typed, parsed.error.issues)) parsed = configSchema.safeParse(interpolated, { reportInput: true });
  if (!parsed.success) {
    // A field whose ${VAR} is unset is reported once, as that, not again as a type error.
    const unset = new Set(issues.map((i) => i.path));
    issues.push(...parsed.error.issues.flatMap(describeIssue).filter((i) => !unset.has(i.path)));
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, config: parsed.data as Config };
}

/** `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`, or `$$`. */
const EXPR_RE = /\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\})/y;
const DOLLAR_HELP = 'use ${VAR}, ${VAR:-default} or ${VAR:?message}, and $$ for a literal "$"';

type Piece = { text: string } | { name: string; op: '' | ':-' | '-' | ':?' | '?'; arg: string };

/** Splits a string into literal text and ${…} expressions; null (with the offending form) when a `$` is not one of them. */
function scan(s: string): Piece[] | { bad: string } {
  const out: Piece[] = [];
  let text = '';
  let i = 0;
  while (i < s.length) {
    const dollar = s.indexOf('$', i);
    if (dollar === -1) {
      text += s.slice(i);
      break;
    }
    text += s.slice(i, dollar);
    EXPR_RE.lastIndex = dollar;
    const m = EXPR_RE.exec(s);
    if (!m) {
      const close = s[dollar + 1] === '{' ? s.indexOf('}', dollar) : -1;
      return { bad: close !== -1 ? s.slice(dollar, close + 1) : s.slice(dollar).match(/^\$[A-Za-z0-9_]*/)![0] };
    }
    if (m[0] === '$$') text += '$';
    else {
      if (text !== '') out.push({ text });
      text = '';
      out.push({ name: m[1]!, op: ((m[2] ?? '') + (m[3] ?? '')) as '' | ':-' | '-' | ':?' | '?', arg: m[4] ?? '' });
    }
    i = dollar + m[0].length;
  }
  if (text !== '') out.push({ text });
  return out;
}

/** A whole-`${VAR}` value read as a number or boolean, and the text it was. */
interface Typed {
  path: PropertyKey[];
  text: string;
}

/**
 * Puts back the text of each typed value the schema refused for its type (a string expected, or a
 * union: `audience: ["${A}", "api"]` is refused as a whole), at or under the refused path; true when
 * any was. A number refused for its range (`limit: ${L}` with L=0) stays a number: its message is
 * the range, not "got string".
 */
function untype(root: unknown, typed: readonly Typed[], refused: readonly { code: string; path: PropertyKey[]; expected?: unknown }[]): boolean {
  const at = refused.filter((i) => i.code === 'invalid_union' || (i.code === 'invalid_type' && i.expected === 'string')).map((i) => renderPath(i.path));
  const under = (path: string) => at.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
  let any = false;
  for (const t of typed) {
    if (!under(renderPath(t.path))) continue;
    const parent = t.path.slice(0, -1).reduce<unknown>((node, k) => (node as Record<PropertyKey, unknown>)[k], root) as Record<PropertyKey, unknown>;
    parent[t.path[t.path.length - 1]!] = t.text;
    any = true;
  }
  return any;
}

/**
 * Replaces `${VAR}` in string values (never in keys, never in YAML structure: an env value cannot
 * add a section), with the compose forms `${VAR:-default}` (unset or empty), `${VAR-default}`
 * (unset), `${VAR:?message}` / `${VAR?message}` (required, with a message). Any other `$` form is
 * a problem, not a literal: `$JWT_ISSUER` or `${A:+b}` would otherwise become a literal issuer and
 * refuse every token; `$$` is a literal `$`. A value that is exactly one `${…}` is read as a YAML
 * scalar, so `limit: ${LIMIT}` gives a number (kept in `typed`: where the schema wants text, the
 * text is used).
 */
function interpolate(node: unknown, path: PropertyKey[], env: Env, issues: ConfigIssue[], typed: Typed[]): unknown {
  if (typeof node === 'string') {
    if (!node.includes('$')) return node;
    const pieces = scan(node);
    if (!Array.isArray(pieces)) {
      issues.push({ path: renderPath(path), message: `unsupported "${pieces.bad}": ${DOLLAR_HELP}` });
      return node;
    }
    let failed = false;
    const values = pieces.map((p) => {
      if ('text' in p) return p.text;
      const value = env[p.name];
      const unset = value === undefined;
      const empty = unset || value === '';
      if (p.op === ':-' && empty) return p.arg;
      if (p.op === '-' && unset) return p.arg;
      if ((p.op === ':?' && empty) || (p.op === '?' && unset) || (p.op === '' && unset)) {
        failed = true;
        const why = p.arg !== '' && (p.op === ':?' || p.op === '?') ? `: ${p.arg}` : '';
        issues.push({ path: renderPath(path), message: `environment variable ${p.name} is not set${why}` });
        return '';
      }
      return value!;
    });
    if (failed) return node;
    const whole = pieces.length === 1 && !('text' in pieces[0]!);
    if (whole) {
      const scalar: unknown = safeScalar(values[0]!);
      if (typeof scalar !== 'number' && typeof scalar !== 'boolean') return values[0];
      typed.push({ path, text: values[0]! });
      return scalar;
    }
    return values.join('');
  }
  if (Array.isArray(node)) return node.map((item, i) => interpolate(item, [...path, i], env, issues, typed));
  if (typeof node === 'object' && node !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolate(v, [...path, k], env, issues, typed);
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

/**
 * PORT, ADMIN_PORT, METRICS_PORT, HOST and the store's env forms (REDIS_URL, REDIS_CLUSTER_NODES,
 * REDIS_SENTINELS + REDIS_SENTINEL_NAME) override the file (LOG_LEVEL and GATE_ADMIN_TOKEN are read by the server).
 */
function applyEnvOverrides(root: Record<string, unknown>, env: Env, issues: ConfigIssue[]): void {
  const section = (name: string): Record<string, unknown> => {
    const existing = root[name];
    if (isMapping(existing)) return existing;
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
  port('METRICS_PORT', 'metricsPort');
  if (env.HOST) section('server').host = env.HOST;
  if (env.REDIS_URL || env.REDIS_CLUSTER_NODES || env.REDIS_SENTINELS || env.REDIS_SENTINEL_NAME) {
    applyStoreEnv(section('store'), env, (path, message) => issues.push({ path, message }));
  }
}

type ZodIssue = z.core.$ZodIssue;

/** Turns a zod issue into messages an operator can act on (one per unknown key). */
function describeIssue(issue: ZodIssue): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(issue.path);
    return issue.keys.map((k) => {
      const near = closest(k, known);
      return { path: renderPath([...issue.path, k]), message: near ? `unknown key (did you mean ${near}?)` : 'unknown key' };
    });
  }
  const path = renderPath(issue.path);
  if (issue.code === 'invalid_type' && 'input' in issue && issue.input === undefined) return [{ path, message: 'required' }];
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

/** The keys an object of the schema accepts at `path` (for "did you mean"). */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  type Def = { type: string; innerType?: { _zod: { def: Def } }; shape?: Record<string, unknown>; element?: { _zod: { def: Def } }; valueType?: { _zod: { def: Def } }; in?: { _zod: { def: Def } } };
  const unwrap = (d: Def): Def => {
    let cur = d;
    while (cur.innerType || (cur.type === 'pipe' && cur.in)) cur = (cur.innerType ?? cur.in)!._zod.def;
    return cur;
  };
  let def = unwrap((configSchema as unknown as { _zod: { def: Def } })._zod.def);
  for (const part of path) {
    if (def.type === 'object' && typeof part === 'string' && def.shape?.[part]) def = unwrap((def.shape[part] as { _zod: { def: Def } })._zod.def);
    else if (def.type === 'array' && typeof part === 'number' && def.element) def = unwrap(def.element._zod.def);
    else if (def.type === 'record' && def.valueType) def = unwrap(def.valueType._zod.def);
    else return [];
  }
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** The known key within two edits of `key` (or equal but for case), if there is one. */
export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
