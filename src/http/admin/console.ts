// Admin GET /console (the page and its assets, no data in them) and GET /console/data (admin token): what the page polls.
import type { Context, Hono, MiddlewareHandler } from 'hono';
import type { Compiled } from '../../config/compile.js';
import type { VerifierStats } from '../../gates/auth/verify.js';
import { activityOf, CONFLICT_KEYS_TRACKED, type ActivitySnapshot, type ConflictKeyEntry } from '../../obs/activity.js';
import type { Metrics } from '../../obs/metrics.js';
import { CONSOLE_CSS, CONSOLE_HTML, CONSOLE_JS, FAVICON_SVG } from '../console/page.js';
import { summarizeConfig, type ConfigSummary } from '../console/summary.js';
import type { Readiness } from '../health.js';

export interface ConsoleDeps {
  metrics: Metrics;
  /** What /readyz answers. */
  ready: Readiness;
  /**
   * The running generation, read per request (a reload is seen at once). server.ts passes the whole
   * Generation, so `compiled` and `sha256` are there whenever the gate runs a config (the admin app
   * types `current` by what its other routes read: the gates).
   */
  current: () => { gates: unknown; compiled?: Compiled; sha256?: string; verifier?: { stats(): VerifierStats } };
}

/** What GET /console/data answers. */
export interface ConsoleData {
  health: ReturnType<Readiness>;
  config: ConfigSummary | null;
  /** Signing keys: how many are loaded, when they last loaded, JWKS fetches, token-cache use. Counts only. */
  keys: VerifierStats | null;
  activity: Omit<ActivitySnapshot, 'conflicts'>;
  conflicts: { top: ConflictKeyEntry[]; note: string };
}

/**
 * Scripts and styles only from the gate itself (no inline script or style, no CDN, no font), data
 * only from the gate, no framing, no form posting anywhere: an injected string could neither run
 * nor send the token away.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'Content-Security-Policy': CONSOLE_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
};

const TOP_CONFLICTS = 20;

/** Everything the console shows, as of now. */
export function consoleData(deps: ConsoleDeps): ConsoleData {
  const gen = deps.current();
  const { conflicts, ...activity } = activityOf(deps.metrics).snapshot(TOP_CONFLICTS);
  return {
    health: deps.ready(),
    config: gen.compiled ? summarizeConfig(gen.compiled, gen.sha256 || null) : null,
    keys: gen.verifier ? gen.verifier.stats() : null,
    activity,
    conflicts: {
      top: conflicts,
      note: `This replica's own count since it started: conflict denials (enforced and shadowed) by resource key, the ${CONFLICT_KEYS_TRACKED} hottest keys tracked.`,
    },
  };
}

/** Mounts the console. `guard` is the admin-token middleware: the data needs the token, the page does not. */
export function mountConsole(app: Hono, deps: ConsoleDeps, guard: MiddlewareHandler): void {
  const asset = (body: string, type: string) => (c: Context) => c.body(body, 200, { 'Content-Type': type, ...SECURITY_HEADERS });
  app.get('/console', asset(CONSOLE_HTML, 'text/html; charset=utf-8'));
  app.get('/console/app.js', asset(CONSOLE_JS, 'text/javascript; charset=utf-8'));
  app.get('/console/app.css', asset(CONSOLE_CSS, 'text/css; charset=utf-8'));
  app.get('/console/favicon.svg', asset(FAVICON_SVG, 'image/svg+xml'));
  app.get('/console/data', guard, (c) => c.json(consoleData(deps), 200, { 'Cache-Control': 'no-store' }));
}
