// Idempotency-Key's pure core as tables: the key's syntax, "same request", the verdict.
import { describe, expect, test } from 'vitest';
import { DENY } from '../../../src/core/decision.js';
import { checkKey, decideIdempotency, decodeFingerprint, encodeFingerprint, parseIdempotencyKey, sameRequest, type Fingerprint } from '../../../src/gates/idempotency/decide.js';

describe('parseIdempotencyKey (structured-field string, or a bare token of 1–255 of A-Za-z0-9._~:+/=-)', () => {
  test.each<[string, string | undefined, string | null]>([
    ['absent', undefined, 'absent'],
    ['a quoted UUID (the draft example)', '"8e03978e-40d5-43e8-bc93-6894a57f9324"', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['a bare token', 'abc.DEF_~:+/=-9', 'abc.DEF_~:+/=-9'],
    ['surrounding spaces are OWS', '  "k1"\t', 'k1'],
    ['an sf-string may hold spaces and punctuation', '"a b,c;d"', 'a b,c;d'],
    ['escaped quote and backslash', '"a\\"b\\\\c"', 'a"b\\c'],
    ['255 bare characters', 'x'.repeat(255), 'x'.repeat(255)],
    ['an sf-binary spelling is made of token characters, so it is a bare token', ':aGVsbG8=:', ':aGVsbG8=:'],
    ['255 quoted characters', `"${'y'.repeat(255)}"`, 'y'.repeat(255)],
  ])('%s', (_n, raw, want) => {
    const p = parseIdempotencyKey(raw);
    if (want === 'absent') expect(p).toEqual({ kind: 'absent' });
    else expect(p).toEqual({ kind: 'key', key: want });
  });

  test.each<[string, string]>([
    ['empty', ''],
    ['only spaces', '   '],
    ['an empty sf-string', '""'],
    ['256 bare characters', 'x'.repeat(256)],
    ['256 quoted characters', `"${'y'.repeat(256)}"`],
    ['a bare token with a space', 'a b'],
    ['a bare token with a comma (two fields joined)', 'a, b'],
    ['two sf-strings (two fields joined)', '"a", "b"'],
    ['an sf-string with a parameter', '"a";p=1'],
    ['an unterminated sf-string', '"abc'],
    ['a bad escape', '"a\\nb"'],
    ['a trailing backslash', '"a\\'],
    ['a control character', '"a\u0001b"'],
    ['a non-ASCII character', '"café"'],
    ['a bare token with a quote inside', 'ab"c'],
    ['a character outside the token set', '*'],
  ])('%s is malformed', (_n, raw) => {
    expect(parseIdempotencyKey(raw)).toEqual({ kind: 'malformed' });
  });
});

describe('checkKey', () => {
  test('missing where required is 400 idempotency_key_missing; optional and absent goes on', () => {
    expect(checkKey(true, { kind: 'absent' })).toMatchObject({ code: 'idempotency_key_missing' });
    expect(checkKey(false, { kind: 'absent' })).toBeNull();
    expect(DENY.idempotency_key_missing.status).toBe(400);
  });
  test('malformed is 400 idempotency_key_malformed, required or not', () => {
    for (const required of [true, false]) expect(checkKey(required, { kind: 'malformed' })).toMatchObject({ code: 'idempotency_key_malformed' });
    expect(DENY.idempotency_key_malformed.status).toBe(400);
  });
});

const fp = (o: Partial<Fingerprint> = {}): Fingerprint => ({ request: 'R', body: '', digest: '', meta: 'M', ...o });

describe('sameRequest: the strongest evidence both requests carry', () => {
  test.each<[string, Fingerprint, Fingerprint, boolean]>([
    ['same method, path, query, meta', fp(), fp(), true],
    ['different method/path/query', fp(), fp({ request: 'R2' }), false],
    ['both bodies hashed and equal', fp({ body: 'B' }), fp({ body: 'B', meta: 'M2' }), true],
    ['both bodies hashed and different', fp({ body: 'B' }), fp({ body: 'B2' }), false],
    ['different digests, no bodies', fp({ digest: 'D' }), fp({ digest: 'D2' }), false],
    ['same digest, different Content-Type', fp({ digest: 'D' }), fp({ digest: 'D', meta: 'M2' }), true],
    ['a body on one side only: the digests decide', fp({ body: 'B', digest: 'D' }), fp({ digest: 'D' }), true],
    ['a body on one side only, no digests: Content-Type + Content-Length decide', fp({ body: 'B' }), fp({ meta: 'M2' }), false],
    ['same bodies win over different digests', fp({ body: 'B', digest: 'D' }), fp({ body: 'B', digest: 'D2' }), true],
  ])('%s', (_n, a, b, same) => {
    expect(sameRequest(a, b)).toBe(same);
    expect(sameRequest(b, a)).toBe(same);
  });

  test('encode/decode round-trips; anything else does not decode', () => {
    const f = fp({ body: 'Bx-_', digest: 'D' });
    expect(decodeFingerprint(encodeFingerprint(f))).toEqual(f);
    expect(decodeFingerprint('garbage')).toBeNull();
  });
});

describe('decideIdempotency (the contract table)', () => {
  const mine = fp();
  test('the first request records the key and goes on', () => {
    expect(decideIdempotency(mine, { kind: 'recorded' }, 'allow')).toEqual({ kind: 'first' });
  });
  test('same request still in flight: 409 idempotency_in_flight, Retry-After rounded up, at least 1', () => {
    const v = decideIdempotency(mine, { kind: 'exists', fingerprint: encodeFingerprint(mine), inFlightMs: 2100, ended: false }, 'allow');
    expect(v).toMatchObject({ kind: 'deny', deny: { code: 'idempotency_in_flight', headers: { 'Retry-After': '3' }, members: { retryAfter: 3 } } });
    expect(decideIdempotency(mine, { kind: 'exists', fingerprint: encodeFingerprint(mine), inFlightMs: 1, ended: false }, 'allow')).toMatchObject({ deny: { headers: { 'Retry-After': '1' } } });
    expect(DENY.idempotency_in_flight.status).toBe(409);
  });
  test('same request the upstream ended: a retry, let through for the upstream to answer', () => {
    expect(decideIdempotency(mine, { kind: 'exists', fingerprint: encodeFingerprint(mine), inFlightMs: 0, ended: true }, 'allow')).toEqual({ kind: 'retry' });
  });
  test('same request whose in-flight time ran out without the upstream ending it: handled as a first request again', () => {
    expect(decideIdempotency(mine, { kind: 'exists', fingerprint: encodeFingerprint(mine), inFlightMs: 0, ended: false }, 'allow')).toEqual({ kind: 'expired' });
  });
  test('a different request with the key: 422 idempotency_key_reused, in flight or not', () => {
    for (const [inFlightMs, ended] of [[0, true], [0, false], [5000, false]] as const) {
      expect(decideIdempotency(mine, { kind: 'exists', fingerprint: encodeFingerprint(fp({ request: 'other' })), inFlightMs, ended }, 'allow')).toMatchObject({ kind: 'deny', deny: { code: 'idempotency_key_reused' } });
    }
    expect(DENY.idempotency_key_reused.status).toBe(422);
  });
  test('a record the gate cannot read is not this request', () => {
    expect(decideIdempotency(mine, { kind: 'exists', fingerprint: 'x', inFlightMs: 0, ended: true }, 'allow')).toMatchObject({ deny: { code: 'idempotency_key_reused' } });
  });
  test('store down: onStoreError allow lets it through unprotected; deny is 503', () => {
    expect(decideIdempotency(mine, { kind: 'store_error' }, 'allow')).toEqual({ kind: 'unprotected' });
    expect(decideIdempotency(mine, { kind: 'store_error' }, 'deny')).toMatchObject({ kind: 'deny', deny: { code: 'store_unavailable', headers: { 'Retry-After': '1' } } });
  });
});
