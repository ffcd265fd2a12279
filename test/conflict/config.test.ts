// The conflict gate's new config keys through `conflict-gate check` (the real CLI): each problem named by its field, exit 2.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { runCli } from '../helpers/gate.js';

const AUTH = 'auth: { jwksUrl: "https://idp.example/jwks" }\n';

async function check(conflict: string): Promise<{ code: number | null; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-conflict-config-'));
  const file = join(dir, 'gate.yaml');
  writeFileSync(file, `${AUTH}conflict:\n${conflict}\n`);
  const r = await runCli(['check', '--config', file]).finally(() => rmSync(dir, { recursive: true, force: true }));
  return { code: r.code, out: `${r.stdout}${r.stderr}` };
}

describe('conflict.idempotency, versionTtl, refundRateLimit, idempotencyBody', () => {
  test('a valid config passes', async () => {
    const r = await check(`  versionTtl: 24h
  refundRateLimit: true
  idempotency:
    - { methods: [POST], path: "/api/orders", require: true, inFlight: 30s, ttl: 24h, mode: shadow }
    - { path: "/api/payments/*" }
  idempotencyBody: { maxBytes: 65536, timeout: 500ms }`);
    expect(r.out).not.toMatch(/problem/);
    expect(r.code).toBe(0);
  });

  test.each<[string, string, string]>([
    ['ttl shorter than inFlight', '  idempotency: [{ path: "/api/orders", inFlight: 2m, ttl: 1m }]', 'conflict.idempotency[0].ttl: expected at least inFlight (2m)'],
    ['a safe method', '  idempotency: [{ methods: [GET], path: "/api/orders" }]', 'conflict.idempotency[0].methods[0]: expected POST, PUT, PATCH or DELETE'],
    ['an empty method list', '  idempotency: [{ methods: [], path: "/api/orders" }]', 'conflict.idempotency[0].methods: expected at least 1 item(s)'],
    ['require not a boolean', '  idempotency: [{ path: "/api/orders", require: "yes" }]', 'conflict.idempotency[0].require: expected a boolean, got string'],
    ['an unknown key in a rule', '  idempotency: [{ path: "/api/orders", inflight: 30s }]', 'conflict.idempotency[0].inflight: unknown key'],
    ['a bad path', '  idempotency: [{ path: "api/orders" }]', 'conflict.idempotency[0].path: expected a path pattern starting with "/"'],
    ['versionTtl 0', '  versionTtl: 0s', 'conflict.versionTtl: expected a duration above 0'],
    ['versionTtl a number', '  versionTtl: 60', 'conflict.versionTtl: expected a duration like "60s"'],
    ['refundRateLimit not a boolean', '  refundRateLimit: sometimes', 'conflict.refundRateLimit: expected a boolean, got string'],
    ['maxBytes too large', '  idempotencyBody: { maxBytes: 100000000 }', 'conflict.idempotencyBody.maxBytes: expected at most 67108864 (64 MiB)'],
    ['a timeout of 0', '  idempotencyBody: { timeout: 0ms }', 'conflict.idempotencyBody.timeout: expected a duration above 0'],
  ])('%s: exit 2, the field named', async (_n, yaml, line) => {
    const r = await check(yaml);
    expect(r.code).toBe(2);
    expect(r.out).toContain(line);
    expect(r.out).not.toMatch(/\n\s+at /); // never a stack trace
  });
});
