// optimisticWrite against an HTTP API that answers as the gate does, one scripted answer per request (a real socket).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
// The source, not the package entry (dist/, built only by `npm test`): this file alone then tests the code as it is.
import { optimisticWrite, OptimisticWriteError, retryAfterMs, type OptimisticOptions, type RetryEvent } from '../../src/client/optimistic.js';
import { ROOT } from '../helpers/gate.js';
import { freePort } from '../helpers/net.js';

interface Seen {
  method: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Answer = (res: ServerResponse, req: Seen) => void;

let server: Server;
let url: string;
let script: Answer[] = [];
let seen: Seen[] = [];

const problem = (status: number, code: string, headers: Record<string, string> = {}): Answer => (res) => {
  res.writeHead(status, { 'Content-Type': 'application/problem+json', ...headers });
  res.end(JSON.stringify({ type: `https://conflict-gate.dev/problems/${code}`, title: code, status, detail: code, code }));
};
const read = (value: number, version: string): Answer => (res) => {
  res.writeHead(200, { 'Content-Type': 'application/json', ETag: `"${version}"` });
  res.end(JSON.stringify({ value }));
};
const ok: Answer = (res) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end('{"ok":true}');
};
const drop: Answer = (res) => res.socket?.destroy();

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(s);
      const next = script.shift();
      if (!next) {
        res.writeHead(500);
        res.end('script exhausted');
        return;
      }
      next(res, s);
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/orders/1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  script = [];
  seen = [];
});

const inc = (c: { value: number }) => ({ value: c.value + 1 });
const writes = () => seen.filter((s) => s.method === 'PUT');

describe('the retry table', () => {
  test('2xx at once: one read, one write with If-Match, Idempotency-Key, Content-Type and Content-Digest', async () => {
    script = [read(1, '7'), ok];
    const r = await optimisticWrite<{ value: number }>({ url, apply: inc, headers: { Authorization: 'Bearer t' } });
    expect(r.response.status).toBe(200);
    expect(r.value).toEqual({ value: 2 });
    const [w] = writes();
    expect(w!.headers['if-match']).toBe('"7"');
    expect(w!.headers.authorization).toBe('Bearer t');
    expect(w!.headers['content-type']).toBe('application/json');
    expect(w!.headers['idempotency-key']).toBe(`"${r.idempotencyKey}"`);
    expect(r.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(w!.headers['content-digest']).toBe(`sha-256=:${createHash('sha256').update(w!.body).digest('base64')}:`);
    expect(r.stats).toMatchObject({ attempts: 2, reads: 1, writes: 1, rereads: 0, resends: 0, waits: 0 });
  });

  test('412: read again, apply the change to the new value, write again under the same key', async () => {
    script = [read(1, '7'), problem(412, 'precondition_failed', { ETag: '"8"' }), read(5, '8'), ok];
    const retries: RetryEvent[] = [];
    const r = await optimisticWrite<{ value: number }>({ url, apply: inc, onRetry: (e) => retries.push(e) });
    const [w1, w2] = writes();
    expect([w1!.body, w2!.body]).toEqual(['{"value":2}', '{"value":6}']);
    expect([w1!.headers['if-match'], w2!.headers['if-match']]).toEqual(['"7"', '"8"']);
    expect(w2!.headers['idempotency-key']).toBe(w1!.headers['idempotency-key']);
    expect(r.stats).toMatchObject({ rereads: 1, waits: 0, answers: { '412': 1 } });
    expect(retries).toEqual([{ kind: 'reread', status: 412, waitMs: 0, attempt: 2 }]);
  });

  test('409 stale_client_version: read again (Client-Version mode, the version from the body)', async () => {
    script = [read(1, 'ignored'), problem(409, 'stale_client_version'), read(2, 'ignored'), ok];
    const r = await optimisticWrite<{ value: number }>({ url, apply: inc, precondition: 'client-version', version: (_res, v) => String(v.value * 10) });
    expect(writes().map((w) => [w.headers['client-version'], w.headers['if-match']])).toEqual([
      ['10', undefined],
      ['20', undefined],
    ]);
    expect(r.stats.answers).toEqual({ '409 stale_client_version': 1 });
  });

  test('409 precondition_failed (a gate with conflict.ifMatchStatus: 409): read again, like a 412', async () => {
    script = [read(1, '7'), problem(409, 'precondition_failed', { ETag: '"8"' }), read(5, '8'), ok];
    const retries: RetryEvent[] = [];
    const r = await optimisticWrite<{ value: number }>({ url, apply: inc, onRetry: (e) => retries.push(e) });
    expect(r.response.status).toBe(200);
    expect(writes().map((w) => [w.body, w.headers['if-match']])).toEqual([
      ['{"value":2}', '"7"'],
      ['{"value":6}', '"8"'],
    ]);
    expect(retries).toEqual([{ kind: 'reread', status: 409, code: 'precondition_failed', waitMs: 0, attempt: 2 }]);
    expect(r.stats).toMatchObject({ rereads: 1, answers: { '409 precondition_failed': 1 } });
  });

  test('409 write_in_progress: wait Retry-After (capped, jittered), then read again', async () => {
    script = [read(1, '7'), problem(409, 'write_in_progress', { 'Retry-After': '5' }), read(2, '8'), ok];
    const retries: RetryEvent[] = [];
    const r = await optimisticWrite<{ value: number }>({ url, apply: inc, maxWaitMs: 40, random: () => 0, onRetry: (e) => retries.push(e) });
    // min(5000, 40) × (0.5 + 0 × 0.5)
    expect(retries).toEqual([{ kind: 'reread', status: 409, code: 'write_in_progress', waitMs: 20, attempt: 2 }]);
    expect(r.stats).toMatchObject({ waits: 1, waitedMs: 20, rereads: 1 });
    expect(writes()[1]!.body).toBe('{"value":3}');
  });

  test.each<[string, Answer]>([
    ['409 idempotency_in_flight', problem(409, 'idempotency_in_flight', { 'Retry-After': '1' })],
    ['429', problem(429, 'rate_limited', { 'Retry-After': '2' })],
    ['503', problem(503, 'store_unavailable', { 'Retry-After': '1' })],
    ['a network error', drop],
  ])('%s: wait, then send the very same write again (same body, version and key; no re-read)', async (_n, answer) => {
    script = [read(1, '7'), answer, ok];
    let applied = 0;
    const r = await optimisticWrite<{ value: number }>({
      url,
      apply: (c) => (applied++, inc(c)),
      maxWaitMs: 30,
      baseDelayMs: 10,
      random: () => 1,
    });
    expect(applied).toBe(1);
    const [w1, w2] = writes();
    expect(w2!.body).toBe(w1!.body);
    expect(w2!.headers['if-match']).toBe(w1!.headers['if-match']);
    expect(w2!.headers['idempotency-key']).toBe(w1!.headers['idempotency-key']);
    expect(r.stats).toMatchObject({ reads: 1, writes: 2, resends: 1, waits: 1 });
    expect(r.stats.waitedMs).toBe(answer === drop ? 10 : 30);
  });

  test('a read answered 503 is read again after Retry-After', async () => {
    script = [problem(503, 'store_unavailable', { 'Retry-After': '1' }), read(1, '7'), ok];
    const r = await optimisticWrite<{ value: number }>({ url, apply: inc, maxWaitMs: 10, random: () => 1 });
    expect(r.stats).toMatchObject({ reads: 2, readRetries: 1, writes: 1, waits: 1, waitedMs: 10 });
  });

  test.each<[string, Answer, string]>([
    ['422 idempotency_key_reused', problem(422, 'idempotency_key_reused'), 'refused'],
    ['428 precondition_required', problem(428, 'precondition_required'), 'refused'],
    ['400', problem(400, 'idempotency_key_malformed'), 'refused'],
    ['403', problem(403, 'insufficient_scope'), 'refused'],
    ['an upstream 409 without a known code', problem(409, 'duplicate'), 'refused'],
  ])('%s is final: OptimisticWriteError %s, with the answer', async (_n, answer, code) => {
    script = [read(1, '7'), answer];
    const err = await optimisticWrite<{ value: number }>({ url, apply: inc }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OptimisticWriteError);
    expect((err as OptimisticWriteError).code).toBe(code);
    expect((err as OptimisticWriteError).response?.status).toBeGreaterThanOrEqual(400);
    expect(writes()).toHaveLength(1);
  });

  test('a failed read is final (read_failed)', async () => {
    script = [problem(404, 'not_found')];
    const err = (await optimisticWrite({ url, apply: inc }).catch((e: unknown) => e)) as OptimisticWriteError;
    expect(err.code).toBe('read_failed');
    expect(err.response?.status).toBe(404);
  });
});

describe('bounds', () => {
  test('maxAttempts bounds the requests, reads and writes together', async () => {
    script = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? read(i, String(i)) : problem(412, 'precondition_failed')));
    const err = (await optimisticWrite<{ value: number }>({ url, apply: inc, maxAttempts: 5 }).catch((e: unknown) => e)) as OptimisticWriteError;
    expect(err).toBeInstanceOf(OptimisticWriteError);
    expect(err.code).toBe('attempts_exhausted');
    expect(seen).toHaveLength(5);
    expect(err.stats).toMatchObject({ attempts: 5, reads: 3, writes: 2, rereads: 2 });
  });

  test('an AbortSignal ends a wait at once and rejects with its reason', async () => {
    script = [read(1, '7'), problem(409, 'write_in_progress', { 'Retry-After': '30' })];
    const ac = new AbortController();
    const p = optimisticWrite<{ value: number }>({ url, apply: inc, maxWaitMs: 60_000, signal: ac.signal, onRetry: () => ac.abort(new Error('caller gave up')) });
    await expect(p).rejects.toThrow('caller gave up');
    expect(seen).toHaveLength(2);
  });

  test('an already aborted signal sends nothing', async () => {
    const err = await optimisticWrite({ url, apply: inc, signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(seen).toHaveLength(0);
  });

  test('idempotencyKey: a given key is used as is; false sends none; contentDigest: false sends none', async () => {
    script = [read(1, '7'), ok, read(1, '7'), ok];
    await optimisticWrite<{ value: number }>({ url, apply: inc, idempotencyKey: 'order-42-qty' });
    await optimisticWrite<{ value: number }>({ url, apply: inc, idempotencyKey: false, contentDigest: false });
    const [w1, w2] = writes();
    expect(w1!.headers['idempotency-key']).toBe('"order-42-qty"');
    expect(w2!.headers['idempotency-key']).toBeUndefined();
    expect(w2!.headers['content-digest']).toBeUndefined();
  });

  test('Retry-After: delta-seconds or an HTTP-date; anything else is none', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000 + 2000).toUTCString(), 10_000)).toBe(2000);
    expect(retryAfterMs('soon')).toBeNull();
    expect(retryAfterMs(null)).toBeNull();
  });

  test('Retry-After: the three HTTP-date forms, all GMT; a two-digit year is within 50 years from now; nothing else', () => {
    const now = Date.UTC(1994, 10, 6, 8, 49, 35);
    expect(retryAfterMs('Sun, 06 Nov 1994 08:49:37 GMT', now)).toBe(2000);
    expect(retryAfterMs('Sunday, 06-Nov-94 08:49:37 GMT', now)).toBe(2000);
    expect(retryAfterMs('Sun Nov  6 08:49:37 1994', now)).toBe(2000);
    // RFC 9110 §5.6.7: 60 read in 2059 is 2060, not 1960.
    expect(retryAfterMs('Thursday, 01-Jan-60 00:00:00 GMT', Date.UTC(2059, 11, 31, 23, 59, 58))).toBe(2000);
    for (const v of ['-5', '2.5', '+5', '12 5', '1994-11-06T08:49:37Z', 'Sun, 06 Nov 1994 08:49:37 PST', 'Sun, 31 Feb 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 25:49:37 GMT', '6 Nov 1994']) {
      expect([v, retryAfterMs(v, now)]).toEqual([v, null]);
    }
  });

  test('runs in browsers too: the helper imports nothing from Node', () => {
    const text = readFileSync(join(ROOT, 'src/client/optimistic.ts'), 'utf8');
    expect(text).not.toMatch(/from\s+['"](node:|ioredis|hono|jose)/);
    expect(text).not.toMatch(/\b(Buffer|process)\./);
  });
});

/** One instant in the three forms of HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, RFC 850, asctime. */
function httpDates(ms: number): { imf: string; rfc850: string; asctime: string } {
  const d = new Date(ms);
  const [wkday, day, mon, year, time] = d.toUTCString().split(' ') as [string, string, string, string, string];
  const weekday = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][d.getUTCDay()]!;
  return {
    imf: d.toUTCString(),
    rfc850: `${weekday}, ${day}-${mon}-${year.slice(2)} ${time} GMT`,
    asctime: `${wkday.slice(0, 3)} ${mon} ${String(d.getUTCDate()).padStart(2, ' ')} ${time} ${year}`,
  };
}

describe('Retry-After: delay-seconds (1*DIGIT) or an HTTP-date, else the doubling backoff', () => {
  const later = httpDates(Date.now() + 3_600_000);
  test.each<[string, number]>([
    ['-5', 10],
    ['2.5', 10],
    ['+5', 10],
    ['12 5', 10],
    [new Date(Date.now() + 3_600_000).toISOString(), 10],
    ['3', 50],
    [later.imf, 50],
    [later.rfc850, 50],
    [later.asctime, 50],
  ])('a 503 with Retry-After %j: the first wait is %i ms (backoff 10, cap 50)', async (value, first) => {
    script = [read(1, '7'), problem(503, 'store_unavailable', { 'Retry-After': value }), problem(503, 'store_unavailable', { 'Retry-After': value }), ok];
    const retries: RetryEvent[] = [];
    await optimisticWrite<{ value: number }>({ url, apply: inc, baseDelayMs: 10, maxWaitMs: 50, random: () => 1, onRetry: (e) => retries.push(e) });
    // Without a Retry-After the backoff doubles: 10, then 20.
    expect(retries.map((e) => e.waitMs)).toEqual(first === 10 ? [10, 20] : [50, 50]);
  });
});

describe('failures on this side are not network errors: refused at once, the original as cause', () => {
  const failure = (p: Promise<unknown>) => p.then(() => new Error('resolved'), (e: unknown) => e) as Promise<OptimisticWriteError>;

  test.each<[string, Partial<OptimisticOptions<{ value: number }>>, number]>([
    ['a header value with CR LF', { headers: { 'X-Trace': 'a\r\nb' } }, 0],
    ['a method fetch refuses', { method: 'PU T' }, 1],
    ['a URL fetch cannot parse (the default fetch)', { url: '/api/orders/1' }, 0],
  ])('%s: caller_error, the TypeError as cause, that request not sent', async (_n, bad, sent) => {
    script = [read(1, '7'), ok];
    const err = await failure(optimisticWrite<{ value: number }>({ url, apply: inc, maxAttempts: 4, baseDelayMs: 1, ...bad }));
    expect(err).toBeInstanceOf(OptimisticWriteError);
    expect(err.code).toBe('caller_error');
    expect(err.cause).toBeInstanceOf(TypeError);
    expect(seen).toHaveLength(sent);
    expect(err.stats).toMatchObject({ attempts: sent, networkErrors: 0 });
  });

  test('a headers function that throws (a token refresh that failed): caller_error, nothing sent', async () => {
    const cause = new Error('token refresh failed');
    const err = await failure(optimisticWrite({ url, apply: inc, headers: async () => Promise.reject(cause) }));
    expect(err).toBeInstanceOf(OptimisticWriteError);
    expect(err.code).toBe('caller_error');
    expect(err.cause).toBe(cause);
    expect(seen).toHaveLength(0);
  });

  test('an encode that throws: caller_error, no write sent', async () => {
    script = [read(1, '7'), ok];
    const cause = new RangeError('too big');
    const err = await failure(optimisticWrite<{ value: number }>({ url, apply: inc, encode: () => { throw cause; } }));
    expect(err).toBeInstanceOf(OptimisticWriteError);
    expect(err.code).toBe('caller_error');
    expect(err.cause).toBe(cause);
    expect(writes()).toHaveLength(0);
  });

  test("a fetch that rejects with another class (node-fetch's FetchError on a refused connection): a lost answer, sent again", async () => {
    script = [read(1, '7'), ok, ok, ok];
    let failed = 0;
    const r = await optimisticWrite<{ value: number }>({
      url,
      apply: inc,
      maxAttempts: 4,
      baseDelayMs: 1,
      fetch: async (input, init) => {
        if (init.method === 'PUT' && failed++ === 0) throw Object.assign(new Error('request to http://x failed, reason: connect ECONNREFUSED'), { name: 'FetchError', type: 'system', code: 'ECONNREFUSED' });
        return globalThis.fetch(input, init);
      },
    });
    expect(r.response.status).toBe(200);
    expect(r.stats).toMatchObject({ networkErrors: 1, resends: 1 });
  });

  test('a refused connection stays a network error: read again until maxAttempts', async () => {
    const port = await freePort();
    const retries: RetryEvent[] = [];
    const err = await failure(optimisticWrite({ url: `http://127.0.0.1:${port}/api/orders/1`, apply: inc, maxAttempts: 3, baseDelayMs: 1, onRetry: (e) => retries.push(e) }));
    expect(err.code).toBe('attempts_exhausted');
    expect(err.stats).toMatchObject({ attempts: 3, networkErrors: 3, readRetries: 3 });
    expect(retries.map((e) => [e.kind, e.status])).toEqual([['read-again', 0], ['read-again', 0], ['read-again', 0]]);
  });

  test('a per-request timeout of a custom fetch (TimeoutError) stays a lost answer: the same write is sent again', async () => {
    // The server holds the first write past the client's timeout, then drops it.
    script = [read(1, '7'), (res) => setTimeout(() => res.socket?.destroy(), 300), ok];
    const r = await optimisticWrite<{ value: number }>({
      url,
      apply: inc,
      baseDelayMs: 1,
      fetch: (input, init) => globalThis.fetch(input, { ...init, signal: AbortSignal.timeout(50) }),
    });
    expect(r.response.status).toBe(200);
    expect(r.stats).toMatchObject({ writes: 2, resends: 1, networkErrors: 1 });
  });
});

describe('options are checked before anything is sent', () => {
  test.each<[string, number]>([
    ['maxAttempts', NaN],
    ['maxAttempts', 0],
    ['maxAttempts', 2.5],
    ['maxAttempts', Infinity],
    ['maxWaitMs', NaN],
    ['maxWaitMs', -1],
    ['maxWaitMs', 3e9],
    ['baseDelayMs', NaN],
    ['baseDelayMs', -1],
    ['baseDelayMs', 3e9],
  ])('%s: %d is a TypeError naming it', async (name, value) => {
    script = [read(1, '7'), ok];
    const err = await optimisticWrite<{ value: number }>({ url, apply: inc, [name]: value }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as TypeError).message).toMatch(new RegExp(`^optimisticWrite: ${name} must be`));
    expect(seen).toHaveLength(0);
  });

  test('the bounds themselves are accepted: maxAttempts 1, maxWaitMs 0 and 2^31-1, baseDelayMs 0', async () => {
    script = [read(1, '7'), read(1, '7'), ok, read(1, '7'), ok];
    const err = await optimisticWrite<{ value: number }>({ url, apply: inc, maxAttempts: 1 }).catch((e: unknown) => e);
    expect((err as OptimisticWriteError).code).toBe('attempts_exhausted');
    await optimisticWrite<{ value: number }>({ url, apply: inc, maxWaitMs: 0, baseDelayMs: 0 });
    await optimisticWrite<{ value: number }>({ url, apply: inc, maxWaitMs: 2 ** 31 - 1 });
    expect(writes()).toHaveLength(2);
  });
});

describe('a read whose body cannot be read is final: read_failed, the original as cause', () => {
  test('a 200 read that is not JSON (the default read): the SyntaxError as cause, no write', async () => {
    script = [(res) => {
      res.writeHead(200, { 'Content-Type': 'text/html', ETag: '"7"' });
      res.end('<html>maintenance</html>');
    }];
    const err = (await optimisticWrite({ url, apply: inc }).catch((e: unknown) => e)) as OptimisticWriteError;
    expect(err).toBeInstanceOf(OptimisticWriteError);
    expect(err.code).toBe('read_failed');
    expect(err.cause).toBeInstanceOf(SyntaxError);
    expect(err.response?.status).toBe(200);
    expect(writes()).toHaveLength(0);
  });

  test('a custom read that throws: its error as cause, no write', async () => {
    script = [read(1, '7')];
    const cause = new Error('schema mismatch');
    const err = (await optimisticWrite({ url, apply: inc, read: async () => { throw cause; } }).catch((e: unknown) => e)) as OptimisticWriteError;
    expect(err).toBeInstanceOf(OptimisticWriteError);
    expect(err.code).toBe('read_failed');
    expect(err.cause).toBe(cause);
    expect(writes()).toHaveLength(0);
  });
});
