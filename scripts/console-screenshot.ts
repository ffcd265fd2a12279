// Regenerates docs/console.png: the real CLI, about 90 s of mixed traffic, the console in Debian's Chromium.
// Run: npm run build && npx tsx scripts/console-screenshot.ts [--seconds 90] [--out docs/console.png]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { forward, ROOT, startGate } from '../test/helpers/gate.js';
import { AUDIENCE, ISSUER, jwks, makeKey, sign } from '../test/helpers/tokens.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '90' }, out: { type: 'string', default: 'docs/console.png' } } });
const seconds = Number(values.seconds);
const out = resolve(ROOT, values.out!);
const ADMIN = 'screenshot-admin-token';

const dir = mkdtempSync(join(tmpdir(), 'cg-shot-'));
const key = await makeKey('ES256');
writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks(key)));
writeFileSync(
  join(dir, 'gate.yaml'),
  `
store: { url: memory }
auth:
  jwksFile: jwks.json
  issuer: ${ISSUER}
  audience: ${AUDIENCE}
  algorithms: [ES256]
  publicRoutes: ["GET /public/*"]
  requireScopes:
    - { methods: [POST, PUT, PATCH, DELETE], path: "/api/orders/*", scopes: ["orders:write"] }
rateLimit:
  rules:
    - { name: writes, methods: [POST, PUT, PATCH, DELETE], path: "/api/*", limit: 40, window: 10s }
    - { name: search, path: "/api/search/*", limit: 15, window: 10s, mode: shadow }
    - { name: default, limit: 60, window: 10s }
conflict:
  claim: { enabled: true, lease: 1s }
  resources:
    - { path: "/api/orders/:id", key: "orders:{id}", require: if-match }
    - { path: "/api/carts/:id", key: "carts:{id}", require: client-version, mode: shadow }
`,
);

const gate = await startGate({ configFile: join(dir, 'gate.yaml'), env: { GATE_ADMIN_TOKEN: ADMIN, LOG_LEVEL: 'warn' } });
const browser = await chromium.launch({ executablePath: process.env.CONSOLE_CHROMIUM_BIN || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const bearer = async (sub: string, scope: string, exp?: number) => `Bearer ${await sign(key, { sub, scope, ...(exp ? { exp } : {}) })}`;
  const writers = await Promise.all(['alice', 'bob', 'carol'].map((s) => bearer(s, 'orders:write')));
  const reader = await bearer('dave', 'orders:read');
  const scraper = await bearer('scraper-7', 'orders:read');
  const expired = await bearer('erin', 'orders:write', Math.floor(Date.now() / 1000) - 3600);
  const versions = new Map<number, number>();
  const publish = async (id: number, v: number) => {
    versions.set(id, v);
    await fetch(`${gate.adminUrl}/versions/orders:${id}`, { method: 'PUT', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ version: String(v) }) });
  };
  for (let id = 1000; id < 1010; id++) await publish(id, 1);

  const pick = <T>(a: T[]): T => a[Math.floor(Math.random() * a.length)]!;
  const until = Date.now() + seconds * 1000;
  for (let tick = 0; Date.now() < until; tick++) {
    // A wave: a quiet minute, then a busy one, with a burst of stale writes on two hot orders.
    const busy = 1 + Math.sin(tick / 40) * 0.8;
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < Math.round(6 * busy); i++) jobs.push(forward(gate.url, 'GET', `/api/orders/${1000 + Math.floor(Math.random() * 10)}`, { Authorization: pick([...writers, reader]) }));
    if (Math.random() < 0.5 * busy) {
      const id = pick([1000, 1001, 1001, 1001, 1002, 1002, 1005]);
      const seen = versions.get(id)! - (Math.random() < 0.35 ? 1 : 0);
      jobs.push(
        forward(gate.url, 'PUT', `/api/orders/${id}`, { Authorization: pick(writers), 'If-Match': `"${seen}"` }).then(async (r) => {
          if (r.status === 200) await publish(id, versions.get(id)! + 1);
        }),
      );
    }
    if (Math.random() < 0.15) jobs.push(forward(gate.url, 'PUT', `/api/orders/${1003}`, { Authorization: pick(writers) }));
    if (Math.random() < 0.2) jobs.push(forward(gate.url, 'GET', '/api/orders/1000'));
    if (Math.random() < 0.08) jobs.push(forward(gate.url, 'GET', '/api/orders/1000', { Authorization: expired }));
    if (Math.random() < 0.1) jobs.push(forward(gate.url, 'DELETE', '/api/orders/1004', { Authorization: reader, 'If-Match': '"1"' }));
    if (tick % 3 === 0) jobs.push(forward(gate.url, 'GET', `/api/search/orders?q=${tick}`, { Authorization: scraper }));
    if (Math.random() < 0.2) jobs.push(forward(gate.url, 'PATCH', '/api/carts/77', { Authorization: pick(writers), 'Client-Version': '3' }));
    if (Math.random() < 0.3) jobs.push(forward(gate.url, 'GET', '/public/catalog', { 'X-Forwarded-For': `203.0.113.${tick % 20}` }));
    await Promise.all(jobs);
    await new Promise((r) => setTimeout(r, 200));
  }

  // bypassCSP only so the picture can hide rows with a style tag; the console itself never needs it.
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 }, bypassCSP: true })).newPage();
  await page.goto(`${gate.adminUrl}/console`);
  await page.fill('#token', ADMIN);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
  await page.fill('#x-uri', '/api/orders/1001');
  await page.fill('#x-headers', `Authorization: ${writers[0]}\nIf-Match: "1"`);
  await page.click('#explain-form button[type=submit]');
  await page.waitForSelector('#trace');
  // No token in a picture, even a throwaway one.
  await page.fill('#x-headers', 'Authorization: Bearer <token>\nIf-Match: "1"');
  // Keep the picture to the top of the denial list.
  await page.addStyleTag({ content: '#denials tbody tr:nth-child(n+13) { display: none; }' });
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await gate.stop();
  rmSync(dir, { recursive: true, force: true });
}
