// readForwarded: the original request from the proxy's headers, and the ambiguities refused with 400.
import { describe, expect, test } from 'vitest';
import { readForwarded, type HeaderSource } from '../../src/core/forwarded.js';

const classifyIp = (raw: string) => (/^\d+\.\d+\.\d+\.\d+$/.test(raw) ? { ip: raw, trusted: raw.startsWith('10.') } : null);
const opts = { classifyIp, paths: { parameters: 'reject' as const }, methodOverride: 'reject' as const };

/** Headers as Node parses them: repeated fields joined with ", ", and remembered as repeated. */
function headers(fields: [string, string][]): HeaderSource {
  const map = new Map<string, string[]>();
  for (const [k, v] of fields) map.set(k.toLowerCase(), [...(map.get(k.toLowerCase()) ?? []), v]);
  return { get: (n) => map.get(n)?.join(', '), repeated: (n) => (map.get(n)?.length ?? 0) > 1 };
}

const base: [string, string][] = [['X-Forwarded-Method', 'GET'], ['X-Forwarded-Uri', '/api/x']];

describe('readForwarded', () => {
  test('reads method, path, and the client IP (rightmost untrusted X-Forwarded-For hop)', () => {
    const f = readForwarded(headers([...base, ['X-Forwarded-For', '203.0.113.7, 10.0.0.2']]), '10.0.0.1', opts);
    expect(f).toMatchObject({ method: 'GET', path: '/api/x', clientIp: '203.0.113.7' });
  });

  test.each(['X-Forwarded-Uri', 'X-Forwarded-Method', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'X-Original-URI', 'X-Original-Method'])(
    'a second %s is a 400, never two readings of one request',
    (name) => {
      const f = readForwarded(headers([...base, [name, name.endsWith('Method') ? 'GET' : '/public/x'], [name, name.endsWith('Method') ? 'GET' : '/api/admin/x']]), '10.0.0.1', opts);
      expect(f).toMatchObject({ kind: 'deny', code: 'bad_forward_request' });
    },
  );

  test.each(['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override'])('%s naming another method is a 400 (an upstream may honour it)', (name) => {
    expect(readForwarded(headers([['X-Forwarded-Method', 'POST'], ['X-Forwarded-Uri', '/a'], [name, 'DELETE']]), '10.0.0.1', opts)).toMatchObject({ kind: 'deny', code: 'bad_forward_request' });
    expect(readForwarded(headers([['X-Forwarded-Method', 'POST'], ['X-Forwarded-Uri', '/a'], [name, 'post']]), '10.0.0.1', opts)).toMatchObject({ method: 'POST' });
    expect(readForwarded(headers([['X-Forwarded-Method', 'POST'], ['X-Forwarded-Uri', '/a'], [name, 'DELETE']]), '10.0.0.1', { ...opts, methodOverride: 'ignore' })).toMatchObject({ method: 'POST' });
  });

  test('a ";" in the path is a 400 by default and stripped when configured', () => {
    const semi = headers([['X-Forwarded-Method', 'PUT'], ['X-Forwarded-Uri', '/api/orders/77;v=1']]);
    expect(readForwarded(semi, '10.0.0.1', opts)).toMatchObject({ kind: 'deny', code: 'bad_forward_request' });
    expect(readForwarded(semi, '10.0.0.1', { ...opts, paths: { parameters: 'strip' } })).toMatchObject({ path: '/api/orders/77' });
  });
});
