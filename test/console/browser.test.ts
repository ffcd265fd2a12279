// The admin console in real headless Chromium (Debian's, driven by playwright-core) against the real CLI and real Redis.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { forward, runCli, startGate, type RunningGate } from '../helpers/gate.js';
import { flushPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign } from '../helpers/tokens.js';
import { decisionCounts } from './metrics-text.js';

/** Debian's chromium (`apt-get install chromium`); CONSOLE_CHROMIUM_BIN names another. Never a downloaded browser. */
const CHROMIUM = process.env.CONSOLE_CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ADMIN = 'console-browser-admin-token-0123456789';

const loud = (lines: string[]) => `\n${'!'.repeat(90)}\n${lines.map((l) => `!!! ${l}`).join('\n')}\n${'!'.repeat(90)}\n`;

if (!existsSync(CHROMIUM)) {
  const why = `Chromium is not installed at ${CHROMIUM}: the admin console's browser tests cannot run.`;
  if (process.env.CI === 'true') {
    test('chromium is installed (required when CI=true)', () => {
      throw new Error(`${why} Install it (apt-get install -y chromium).`);
    });
  } else {
    console.warn(loud([why, 'SKIPPING them. Install it with apt-get install -y chromium; with CI=true this is a failure.']));
    describe.skip('admin console in Chromium (not installed)', () => {
      test('skipped', () => undefined);
    });
  }
} else {
  consoleSuite();
}

function consoleSuite(): void {
  const prefix = uniquePrefix('console');
  const raw = new Redis(SHARED_REDIS_URL);
  const dir = mkdtempSync(join(tmpdir(), 'cg-console-'));
  const configFile = join(dir, 'gate.yaml');
  let gate: RunningGate;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let writer: string;
  let reader: string;
  let xssClient: string;
  /** Every URL any page of the context asked for. */
  const requests: string[] = [];
  /** Console errors and uncaught exceptions, by the phase they happened in. */
  const errors: { phase: string; text: string }[] = [];
  let phase = 'start';

  beforeAll(async () => {
    const key = await makeKey('ES256');
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
    writeFileSync(
      configFile,
      `
store: { url: "${SHARED_REDIS_URL}", keyPrefix: "${prefix}" }
auth:
  jwksFile: jwks.json
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
  publicRoutes: ["GET /public/*"]
  requireScopes:
    - { methods: [PUT, POST], path: "/api/*", scopes: ["orders:write"] }
rateLimit:
  rules:
    - { name: tight, path: "/api/tight/*", limit: 2, window: 60s }
    - { name: soft, path: "/api/soft/*", limit: 1, window: 60s, mode: shadow }
conflict:
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
`,
    );
    writer = `Bearer ${await sign(key, { sub: 'alice', scope: 'orders:write' })}`;
    reader = `Bearer ${await sign(key, { sub: 'bob', scope: 'orders:read' })}`;
    xssClient = `Bearer ${await sign(key, { sub: '<script>alert(2)</script><img src=y onerror=alert(3)>', scope: 'orders:write' })}`;
    await raw.set(`${prefix}ver:{orders:42}`, '7');
    await raw.set(`${prefix}ver:{orders:43}`, '3');
    [gate, browser] = await Promise.all([
      startGate({ configFile, env: { GATE_ADMIN_TOKEN: ADMIN } }),
      chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true }),
    ]);
    // A fresh profile per context: nothing carried over between runs.
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    context.on('request', (r) => requests.push(r.url()));
    context.on('page', (p) => {
      p.on('console', (m) => {
        if (m.type() === 'error') errors.push({ phase, text: m.text() });
      });
      p.on('pageerror', (e) => errors.push({ phase, text: `uncaught: ${e.message}` }));
      p.on('dialog', (d) => {
        errors.push({ phase, text: `dialog: ${d.message()}` });
        void d.dismiss();
      });
    });
    for (let i = 0; i < 100 && (await fetch(`${gate.adminUrl}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  });

  afterAll(async () => {
    await browser?.close();
    await gate?.stop();
    await flushPrefix(raw, prefix);
    raw.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const visibleText = (p: Page) => p.evaluate(() => document.body.innerText);

  test('without the token the page shows nothing but the token prompt, and asks the gate for no data', async () => {
    phase = 'no token';
    page = await context.newPage();
    await page.goto(`${gate.adminUrl}/console`);
    await page.waitForSelector('#login:not([hidden])');
    expect(await page.isVisible('#token')).toBe(true);
    expect(await page.isHidden('#app')).toBe(true);
    expect(await page.isHidden('#badge')).toBe(true);
    const text = await visibleText(page);
    expect(text).toContain('Admin token');
    expect(text).not.toMatch(/ready|allow|denied|missing_token|sha256/i);
    expect(requests.filter((u) => u.includes('/console/data'))).toEqual([]);
  });

  test('a wrong token goes back to the prompt, forgotten', async () => {
    phase = 'wrong token';
    await page.fill('#token', `${ADMIN}-wrong`);
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => (document.getElementById('login-error')?.textContent ?? '').includes('refused'));
    expect(await page.isHidden('#app')).toBe(true);
    expect(await page.isVisible('#token')).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    // The browser reports the 401 itself; nothing else may go wrong.
    expect(errors.filter((e) => e.phase === 'wrong token' && !/status of 401/.test(e.text))).toEqual([]);
  });

  test('after a known burst of traffic its numbers equal /metrics, with the denials, shadowed denials and hot resources', async () => {
    phase = 'console';
    await page.fill('#token', ADMIN);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#app:not([hidden])');

    // Client-sent text first, so it sits at the bottom of the denial list.
    const xss = [
      await forward(gate.url, 'GET', '/api/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E'),
      await forward(gate.url, 'PUT', '/api/orders/42', { Authorization: xssClient, 'If-Match': '"1"' }),
    ].map((r) => r.status);
    expect(xss).toEqual([401, 412]);
    const burst: [string, string, Record<string, string>, number][] = [
      ['GET', '/public/x', {}, 200],
      ['GET', '/api/orders/1', { Authorization: writer }, 200],
      ['GET', '/api/orders/1', { Authorization: reader }, 200],
      ['PUT', '/api/orders/42', { Authorization: writer, 'If-Match': '"7"' }, 200],
      ['GET', '/api/orders/1', {}, 401],
      ['GET', '/api/orders/2', {}, 401],
      ['GET', '/api/orders/1', { Authorization: 'Bearer a.b.c' }, 401],
      ['PUT', '/api/orders/42', { Authorization: reader, 'If-Match': '"7"' }, 403],
      ['GET', '/api/tight/1', { Authorization: writer }, 200],
      ['GET', '/api/tight/1', { Authorization: writer }, 200],
      ['GET', '/api/tight/1', { Authorization: writer }, 429],
      ['GET', '/api/tight/1', { Authorization: writer }, 429],
      ['GET', '/api/soft/1', { Authorization: writer }, 200],
      ['GET', '/api/soft/1', { Authorization: writer }, 200], // shadowed rate_limited
      ['GET', '/api/soft/1', { Authorization: writer }, 200], // shadowed rate_limited
      ['PUT', '/api/orders/42', { Authorization: writer, 'If-Match': '"6"' }, 412],
      ['PUT', '/api/orders/42', { Authorization: writer, 'If-Match': '"5"' }, 412],
      ['PUT', '/api/orders/43', { Authorization: writer, 'If-Match': '"1"' }, 412],
      ['PUT', '/api/orders/43', { Authorization: writer, 'If-Match': '"2"' }, 412],
      ['PUT', '/api/orders/42', { Authorization: writer, 'If-Match': '"6"' }, 412],
      ['PUT', '/api/orders/44', { Authorization: writer }, 428],
    ];
    const statuses: number[] = [];
    for (const [method, uri, headers] of burst) statuses.push((await forward(gate.url, method, uri, headers)).status);
    expect(statuses).toEqual(burst.map((b) => b[3]));

    const metricsText = await (await fetch(`${gate.adminUrl}/metrics`)).text();
    const metrics = decisionCounts(metricsText);
    // The burst, as /metrics counts it: the test's own check that the traffic was what it meant.
    expect(metrics).toEqual({
      'allow//': 9,
      'deny/auth/missing_token': 3,
      'deny/auth/invalid_token': 1,
      'deny/auth/insufficient_scope': 1,
      'deny/ratelimit/rate_limited': 2,
      'deny/conflict/precondition_failed': 6,
      'deny/conflict/precondition_required': 1,
      'shadow/ratelimit/rate_limited': 2,
    });
    const all = Object.values(metrics).reduce((a, b) => a + b);

    // The page polls: wait until it has seen the whole burst, then read every number it shows.
    await page.waitForFunction(
      (want) => {
        let t = 0;
        document.querySelectorAll('#rates tbody tr[data-series] [data-col=total]').forEach((c) => (t += Number((c.textContent ?? '').replace(/,/g, ''))));
        return t === want;
      },
      all,
      { timeout: 15_000, polling: 100 },
    );
    const shown = await page.evaluate(() => {
      const read = (sel: string, col: string) =>
        Object.fromEntries(Array.from(document.querySelectorAll(`${sel} tbody tr[data-series]`)).map((tr) => [tr.getAttribute('data-series'), Number((tr.querySelector(`[data-col=${col}]`)?.textContent ?? '').replace(/,/g, ''))]));
      return { total: read('#rates', 'total'), window: read('#rates', 'window'), shadowTotal: read('#shadow-counts', 'total') };
    });
    const nonZero = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v > 0));
    expect(nonZero(shown.total)).toEqual(metrics);
    expect(nonZero(shown.window)).toEqual(metrics); // all of it within the last 15 minutes
    expect(shown.shadowTotal).toEqual({ 'shadow/ratelimit/rate_limited': 2 });

    // Health at a glance, and the config the gate runs.
    expect(await page.textContent('#badge')).toBe('Ready');
    expect(await page.getAttribute('[data-check=store]', 'data-ok')).toBe('true');
    expect(await page.getAttribute('[data-check=keys]', 'data-ok')).toBe('true');
    expect(await page.textContent('#keys-line')).toMatch(/^1 signing key, loaded \d\d:\d\d:\d\d$/);
    const sha = /conflict_gate_config_info\{sha256="([0-9a-f]{12})"\} 1/.exec(metricsText)![1]!;
    expect(await page.textContent('#config-sha')).toBe(`sha256 ${sha}`);
    const config = await visibleText(page);
    for (const s of ['/api/orders/:id', 'if-match', 'tight', 'soft', 'shadow', 'jwksFile (1 key)', 'PUT,POST /api/*']) expect(config).toContain(s);

    // The denials, newest first: one row per enforced denial.
    const denials = await page.$$eval('#denials tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => td.textContent)));
    const denyCount = Object.entries(metrics).filter(([k]) => k.startsWith('deny/')).reduce((a, [, v]) => a + v, 0);
    expect(denials).toHaveLength(denyCount);
    expect(denials[0]).toEqual([expect.any(String), 'conflict', 'precondition_required', '428', '/api/orders/:id', 'PUT', '/api/orders/44', 'alice']);
    expect(denials[1]!.slice(1)).toEqual(['conflict', 'precondition_failed', '412', '/api/orders/:id', 'PUT', '/api/orders/42', 'alice']);
    // Client-sent text is text: shown as sent, never markup, never run.
    expect(denials.at(-1)!.slice(1)).toEqual(['auth', 'missing_token', '401', '', 'GET', '/api/<img src=x onerror=alert(1)>', 'ip 127.0.0.1']);
    expect(denials.at(-2)!.slice(1)).toEqual(['conflict', 'precondition_failed', '412', '/api/orders/:id', 'PUT', '/api/orders/42', '<script>alert(2)</script><img src=y onerror=alert(3)>']);
    expect(await page.$$eval('#app img, #app script', (els) => els.length)).toBe(0);

    // Shadowed denials: the rule that would have refused.
    const shadowed = await page.$$eval('#shadowed tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td')).slice(1).map((td) => td.textContent)));
    expect(shadowed).toEqual([
      ['ratelimit', 'rate_limited', 'soft', 'GET', '/api/soft/1', 'alice'],
      ['ratelimit', 'rate_limited', 'soft', 'GET', '/api/soft/1', 'alice'],
    ]);

    // Hottest resources by conflict denials.
    const hot = await page.$$eval('#conflicts tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td')).slice(0, 4).map((td) => td.textContent)));
    expect(hot).toEqual([
      ['orders:42', '/api/orders/:id', '4', '0'],
      ['orders:43', '/api/orders/:id', '2', '0'],
      ['orders:44', '/api/orders/:id', '1', '0'],
    ]);

    // No token of any client, nor the admin token, is shown.
    const html = await page.content();
    for (const t of [writer, reader, xssClient]) expect(html).not.toContain(t.slice(7));
    expect(html).not.toContain(ADMIN);
  });

  test('its explain result is the trace `conflict-gate explain` prints for the same request', async () => {
    phase = 'console';
    const args = ['--method', 'PUT', '--uri', '/api/orders/42', '-H', `Authorization: ${writer}`, '-H', 'If-Match: "6"'];
    const cli = runCli(['explain', '--config', configFile, ...args, '--json'], {}, dir);

    await page.selectOption('#x-method', 'PUT');
    await page.fill('#x-uri', '/api/orders/42');
    await page.fill('#x-headers', `Authorization: ${writer}\nIf-Match: "6"`);
    await page.click('#explain-form button[type=submit]');
    await page.waitForSelector('#explain-json', { state: 'attached' });
    const fromPage = JSON.parse((await page.textContent('#explain-json'))!);
    const r = await cli;
    expect(r.code, r.stderr).toBe(1);
    expect(fromPage).toEqual(JSON.parse(r.stdout));

    // And the table says it in words: who allowed, who denied, why.
    const rows = await page.$$eval('#trace tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-gate'), tr.querySelector('[data-col=result]')?.textContent, tr.querySelector('[data-col=code]')?.textContent]));
    expect(rows).toEqual([
      ['auth', 'allow', ''],
      ['ratelimit', 'skip', ''],
      ['conflict', 'deny', 'precondition_failed'],
    ]);
    expect(await page.textContent('#answer')).toBe('answer: 412 precondition_failed');
    expect(await page.textContent('#explain-result')).not.toContain(writer.slice(7));
  });

  test('no console error, no uncaught exception, no dialog, and no request left the gate', () => {
    expect(errors.filter((e) => e.phase !== 'wrong token')).toEqual([]);
    const origin = new URL(gate.adminUrl).origin;
    expect(requests.length).toBeGreaterThan(5);
    expect(requests.filter((u) => new URL(u).origin !== origin)).toEqual([]);
    // The scripted <img src=x> never turned into a request either.
    expect(requests.filter((u) => !/\/(console(\/(app\.js|app\.css|favicon\.svg|data))?|explain)$/.test(new URL(u).pathname))).toEqual([]);
  });
}
