// Request paths: percent-decoding, dot-segment removal and `:name` / `*` patterns. Pure.

/** A normalised path as decoded, non-empty segments: `/a//b/` → `['a', 'b']`, `/` → `[]`. */
export type Segments = readonly string[];

export type NormalizeResult = { ok: true; path: string; segments: Segments } | { ok: false; reason: string };

// A decoded segment must not hide a separator or a control byte (smuggling past a pattern).
// eslint-disable-next-line no-control-regex
const FORBIDDEN_RE = /[\u0000-\u001f\u007f/]/;

/**
 * Normalises the path of a request-target (`/a/%7Euser/../b?x=1` → `/a/b`). Each segment is
 * percent-decoded before dot-segments are removed (RFC 3986 §5.2.4), so `%2e%2e` cannot climb past
 * a pattern the way `..` cannot. A decoded `/`, NUL or control byte, or a broken escape, is refused.
 *
 * Empty segments are dropped: `//api/orders/42`, `/api//orders/42` and `/api/orders/42/` are all
 * `/api/orders/42`. Many upstreams merge slashes or ignore a trailing one, so a path that only
 * differs by them must meet the same scope, rate-limit and resource rules, not slip past them.
 */
export function normalizePath(target: string): NormalizeResult {
  let path = target;
  const q = path.search(/[?#]/);
  if (q !== -1) path = path.slice(0, q);
  if (/^https?:\/\//i.test(path)) {
    const slash = path.indexOf('/', path.indexOf('//') + 2);
    path = slash === -1 ? '/' : path.slice(slash);
  }
  if (!path.startsWith('/')) return { ok: false, reason: 'the forwarded URI is not an absolute path' };
  const out: string[] = [];
  for (const raw of path.slice(1).split('/')) {
    let seg = raw;
    if (seg.includes('%')) {
      try {
        seg = decodeURIComponent(seg);
      } catch {
        return { ok: false, reason: 'the forwarded URI has a malformed percent-escape' };
      }
    }
    if (FORBIDDEN_RE.test(seg)) return { ok: false, reason: 'the forwarded URI has an encoded slash or control character in a segment' };
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return { ok: true, path: '/' + out.join('/'), segments: out };
}

/** A compiled pattern: returns the `:name` captures on a match, else null. */
export type PathMatcher = (segments: Segments) => Record<string, string> | null;

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * Compiles `/api/orders/:id` or `/public/*`. `:name` matches one segment; a final `*` matches the
 * rest, including nothing (`/api/*` matches `/api`, `/api/` and `/api/a/b`). Empty segments of the
 * pattern are dropped as they are in paths (normalizePath).
 * Throws a TypeError for a pattern with `*` anywhere but last (config validation reports it first).
 */
export function compilePattern(pattern: string): PathMatcher {
  const parts = pattern.split('/').filter((p) => p !== '');
  const star = parts.indexOf('*');
  if (star !== -1 && star !== parts.length - 1) throw new TypeError(`"*" must be the last segment of ${pattern}`);
  const fixed = star === -1 ? parts : parts.slice(0, star);
  const hasStar = star !== -1;
  const params = fixed.some((p) => p.startsWith(':'));
  return (segments) => {
    if (hasStar ? segments.length < fixed.length : segments.length !== fixed.length) return null;
    let captured: Record<string, string> | null = null;
    for (let i = 0; i < fixed.length; i++) {
      const want = fixed[i]!;
      const got = segments[i]!;
      if (params && want.startsWith(':')) {
        (captured ??= {})[want.slice(1)] = got;
      } else if (want !== got) {
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
  return null;
}
