// A model of how a lenient upstream routes a request: what the gate must never read more strictly.
//
// The upstream decodes each segment, strips servlet `;` parameters, merges slashes, resolves dot
// segments, compares literals case-insensitively, and runs the GET handler for HEAD. It reads a
// backslash as a slash, raw (as WHATWG URL parsing does: Node's `new URL`, so Hono and every
// fetch-style router on Node) or decoded from `%5C` (as IIS and some servlet setups do). The gate
// may refuse what such an upstream would route (a 400), but it must never allow a request that
// this upstream would hand to a route whose rule the request does not satisfy.

/** The upstream's routes, each with what the gate's config demands for it. */
export interface ModelRoute {
  name: string;
  methods: readonly string[];
  /** Literal segments, `:param` or a final `*`. */
  pattern: readonly string[];
  /** Scopes a token must hold (undefined: a public route, no token needed). */
  scopes?: readonly string[];
  /** The resource whose cached version If-Match must name, from the `:id` capture. */
  resource?: (params: Record<string, string>) => string;
}

export function upstreamSegments(path: string): string[] | null {
  const q = path.search(/[?#]/);
  const p = q === -1 ? path : path.slice(0, q);
  const out: string[] = [];
  for (const raw of p.replaceAll('\\', '/').split('/')) {
    let seg = raw;
    const semi = seg.indexOf(';');
    if (semi !== -1) seg = seg.slice(0, semi);
    try {
      seg = decodeURIComponent(seg);
    } catch {
      return null;
    }
    const semi2 = seg.indexOf(';');
    if (semi2 !== -1) seg = seg.slice(0, semi2);
    for (const part of seg.split('\\')) {
      if (part === '' || part === '.') continue;
      if (part === '..') out.pop();
      else out.push(part);
    }
  }
  return out;
}

/** The route the lenient upstream would run, with its captures. */
export function route(routes: readonly ModelRoute[], method: string, path: string): { route: ModelRoute; params: Record<string, string> } | null {
  const segs = upstreamSegments(path);
  if (segs === null) return null;
  const m = method === 'HEAD' ? 'GET' : method;
  for (const r of routes) {
    if (!r.methods.includes(m)) continue;
    const star = r.pattern.at(-1) === '*';
    const fixed = star ? r.pattern.slice(0, -1) : r.pattern;
    if (star ? segs.length < fixed.length : segs.length !== fixed.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < fixed.length && ok; i++) {
      const want = fixed[i]!;
      if (want.startsWith(':')) params[want.slice(1)] = segs[i]!;
      else ok = want.toLowerCase() === segs[i]!.toLowerCase();
    }
    if (ok) return { route: r, params };
  }
  return null;
}

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
