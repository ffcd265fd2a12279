// Routes: a method set plus a path pattern, compiled once and matched against a request. Pure.
import { compilePattern, type PathMatcher, type Segments } from './paths.js';

/** What a route is matched against: the method and the normalised path (RequestFacts has both). */
export interface RouteTarget {
  method: string;
  segments: Segments;
  /** `segments` with ASCII letters folded (paths.ts#normalizePath). */
  lower: Segments;
}

/** A method set (null = any method) plus a path matcher. */
export interface Route {
  methods: ReadonlySet<string> | null;
  match: PathMatcher;
}

export interface RouteOptions {
  /** Compare literal segments case-sensitively (default: ASCII case-insensitively). */
  caseSensitive?: boolean;
}

/**
 * A rule that lists GET also applies to HEAD: every upstream we know runs the GET handler for a HEAD
 * (RFC 9110 §9.3.2), so a GET-only scope or limit must not be skipped by asking for HEAD.
 */
export function compileRoute(methods: readonly string[] | undefined | null, pattern: string | undefined, opts: RouteOptions = {}): Route {
  let set: Set<string> | null = null;
  if (methods && methods.length > 0) {
    set = new Set(methods);
    if (set.has('GET')) set.add('HEAD');
  }
  return { methods: set, match: compilePattern(pattern ?? '/*', opts) };
}

/** `"GET /public/*"` or `"/public/*"` (any method), as `auth.publicRoutes` lists them. */
export function compileRouteEntry(entry: string, opts: RouteOptions = {}): Route {
  const sp = entry.indexOf(' ');
  return sp === -1 ? compileRoute(null, entry, opts) : compileRoute([entry.slice(0, sp)], entry.slice(sp + 1), opts);
}

/** The route's `:name` captures when it applies to this request, else null. */
export function routeMatches(r: Route, t: RouteTarget): Record<string, string> | null {
  if (r.methods !== null && !r.methods.has(t.method)) return null;
  return r.match(t.segments, t.lower);
}

/** The first route of a list that applies, with its captures. */
export function firstMatch<T extends Route>(routes: readonly T[], t: RouteTarget): { route: T; params: Record<string, string> } | null {
  for (const route of routes) {
    const params = routeMatches(route, t);
    if (params !== null) return { route, params };
  }
  return null;
}
