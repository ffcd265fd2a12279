// Request paths: percent-decoding, dot-segments, `;` parameters, and `:name` / `*` patterns. Pure.

/** A normalised path as decoded, non-empty segments: `/a//b/` → `['a', 'b']`, `/` → `[]`. */
export type Segments = readonly string[];

/** How the upstream reads a path, which the gate must never read more strictly than. */
export interface PathSemantics {
  /**
   * `;` in a segment (matrix or path parameters, `..;`): `reject` (400, the default) or `strip`
   * (drop `;…` from each raw segment before decoding, as servlet containers do).
   */
  parameters: 'reject' | 'strip';
}

export const DEFAULT_PATH_SEMANTICS: PathSemantics = Object.freeze({ parameters: 'reject' });

export type NormalizeResult = { ok: true; path: string; segments: Segments; lower: Segments } | { ok: false; reason: string };

// A decoded segment must not hide a separator or a control byte (smuggling past a pattern).
// eslint-disable-next-line no-control-regex
const FORBIDDEN_RE = /[\u0000-\u001f\u007f/\\]/;
const UPPER_RE = /[A-Z]/;
const NON_ASCII_RE = /[^\x00-\x7f]/;

/**
 * ASCII case folding: only A-Z change. Non-ASCII letters are left alone because the case-insensitive
 * routers we match (Express and other RegExp `i` routers) never fold a non-ASCII letter onto an
 * ASCII one (`ı` is not `i`); folding more would let a public route match a path the upstream
 * routes elsewhere.
 */
export function asciiLower(s: string): string {
  if (!UPPER_RE.test(s)) return s;
  return NON_ASCII_RE.test(s) ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s.toLowerCase();
}

/**
 * Normalises the path of a request-target (`/a/%7Euser/../b?x=1` → `/a/b`). Each segment is
 * percent-decoded before dot-segments are removed (RFC 3986 §5.2.4), so `%2e%2e` cannot climb past
 * a pattern the way `..` cannot. A decoded `/`, NUL or control byte, or a broken escape, is refused.
 * So is a backslash, raw or decoded: WHATWG URL parsing (Node's `new URL`, so Hono and every
 * fetch-style router on Node) reads a raw `\` as `/`, and IIS and some servlet setups a decoded one,
 * so `/api\orders\42` would run the `/api/orders/42` handler past that path's rules. A raw
 * non-ASCII byte is refused too: the header arrives as Latin-1 (`é` sent raw reads `Ã©`), while an
 * upstream reading its request line as UTF-8 sees `é`: another resource, another rule.
 *
 * Empty segments are dropped: `//api/orders/42`, `/api//orders/42` and `/api/orders/42/` are all
 * `/api/orders/42`. Many upstreams merge slashes or ignore a trailing one, so a path that only
 * differs by them must meet the same scope, rate-limit and resource rules, not slip past them.
 *
 * `;` starts path parameters for servlet containers (Jetty, Tomcat strip `;…` from each segment
 * before routing, so `/api/orders;x=1/42` runs the `/api/orders/42` handler and `/public/..;/admin`
 * climbs out of `/public`). By default a `;` anywhere in the path, raw or decoded, is refused; with
 * `parameters: strip` the raw `;…` of each segment is dropped first, as those containers do, and a
 * `;` that only appears after decoding (`%3B`) is still refused.
 *
 * `lower` is `segments` with ASCII letters folded, for case-insensitive matching.
 */
export function normalizePath(target: string, semantics: PathSemantics = DEFAULT_PATH_SEMANTICS): NormalizeResult {
  let path = target;
  const q = path.search(/[?#]/);
  if (q !== -1) path = path.slice(0, q);
  if (/^https?:\/\//i.test(path)) {
    const slash = path.indexOf('/', path.indexOf('//') + 2);
    path = slash === -1 ? '/' : path.slice(slash);
  }
  if (!path.startsWith('/')) return { ok: false, reason: 'the forwarded URI is not an absolute path' };
  // A URI is ASCII (RFC 3986); nginx passes a client's raw bytes on, which Node reads as Latin-1.
  if (NON_ASCII_RE.test(path)) return { ok: false, reason: 'the forwarded URI has a raw non-ASCII byte in its path (percent-encode it)' };
  const strip = semantics.parameters === 'strip';
  if (!strip && path.includes(';')) return { ok: false, reason: 'the forwarded URI has a ";" path parameter' };
  const out: string[] = [];
  for (const raw of path.slice(1).split('/')) {
    let seg = raw;
    if (strip) {
      const semi = seg.indexOf(';');
      if (semi !== -1) seg = seg.slice(0, semi);
    }
    if (seg.includes('%')) {
      try {
        seg = decodeURIComponent(seg);
      } catch {
        return { ok: false, reason: 'the forwarded URI has a malformed percent-escape' };
      }
      if (seg.includes(';')) return { ok: false, reason: 'the forwarded URI has an encoded ";" in a segment' };
    }
    if (FORBIDDEN_RE.test(seg)) return { ok: false, reason: 'the forwarded URI has a backslash, an encoded slash or a control character in a segment' };
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  let lower: string[] = out;
  for (let i = 0; i < out.length; i++) {
    const folded = asciiLower(out[i]!);
    if (folded !== out[i]) {
      if (lower === out) lower = out.slice();
      lower[i] = folded;
    }
  }
  return { ok: true, path: '/' + out.join('/'), segments: out, lower };
}

/** How many normalised paths a normaliser remembers before it starts again. */
const MEMO_MAX = 8192;

/**
 * normalizePath with a bounded memory of the paths it has seen (the query string is not part of
 * the key: it never changes the path). Traffic hits a small set of paths again and again; a
 * result is a frozen value, so sharing it between requests is safe.
 */
export function memoNormalizer(semantics: PathSemantics = DEFAULT_PATH_SEMANTICS): (target: string) => NormalizeResult {
  const memo = new Map<string, NormalizeResult>();
  return (target) => {
    const q = target.indexOf('?');
    const key = q === -1 ? target : target.slice(0, q);
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const r = normalizePath(key, semantics);
    if (memo.size >= MEMO_MAX) memo.clear();
    if (r.ok) {
      Object.freeze(r.segments);
      Object.freeze(r.lower);
    }
    memo.set(key, Object.freeze(r));
    return r;
  };
}

/** A compiled pattern: the `:name` captures (in the case they were sent) on a match, else null. */
export type PathMatcher = (segments: Segments, lower: Segments) => Record<string, string> | null;

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * Compiles `/api/orders/:id` or `/public/*`. `:name` matches one segment; a final `*` matches the
 * rest, including nothing (`/api/*` matches `/api`, `/api/` and `/api/a/b`). Empty segments of the
 * pattern are dropped as they are in paths (normalizePath).
 *
 * Literal segments compare against the ASCII-folded path unless `caseSensitive` (`/API/Orders/42`
 * meets the rules of `/api/orders/:id`, as Express and ASP.NET route it); captures keep their case.
 * Throws a TypeError for a pattern with `*` anywhere but last (config validation reports it first).
 */
export function compilePattern(pattern: string, opts: { caseSensitive?: boolean } = {}): PathMatcher {
  const parts = pattern.split('/').filter((p) => p !== '');
  const star = parts.indexOf('*');
  if (star !== -1 && star !== parts.length - 1) throw new TypeError(`"*" must be the last segment of ${pattern}`);
  const sensitive = opts.caseSensitive === true;
  const fixed = (star === -1 ? parts : parts.slice(0, star)).map((p) => (p.startsWith(':') || sensitive ? p : asciiLower(p)));
  const hasStar = star !== -1;
  const params = fixed.some((p) => p.startsWith(':'));
  return (segments, lower) => {
    if (hasStar ? segments.length < fixed.length : segments.length !== fixed.length) return null;
    const compared = sensitive ? segments : lower;
    let captured: Record<string, string> | null = null;
    for (let i = 0; i < fixed.length; i++) {
      const want = fixed[i]!;
      if (params && want.startsWith(':')) {
        (captured ??= {})[want.slice(1)] = segments[i]!;
      } else if (want !== compared[i]) {
        return null;
      }
    }
    return captured ?? NO_PARAMS;
  };
}

/** Checks a pattern's shape without compiling it; returns a problem or null. */
export function patternProblem(pattern: string): string | null {
  const parts = pattern.split('/').filter((p) => p !== '');
  const star = parts.indexOf('*');
  if (star !== -1 && star !== parts.length - 1) return '"*" may only be the last segment';
  if (parts.some((p) => p.includes('*') && p !== '*')) return '"*" must be a whole segment';
  if (parts.some((p) => p === ':')) return '":" must be followed by a parameter name';
  if (parts.some((p) => p.includes(';'))) return '";" cannot appear in a pattern (path parameters are refused or stripped before matching)';
  return null;
}
