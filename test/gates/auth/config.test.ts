// The auth section's own config checks: required scopes are scope tokens.
import { describe, expect, test } from 'vitest';
import { readConfigText } from '../../../src/config/read.js';

const withScopes = (scopes: string) => `store: { url: memory }\nauth:\n  secret: "${'s'.repeat(40)}"\n  requireScopes:\n    - { path: "/api/*", scopes: ${scopes} }\n`;

describe('auth.requireScopes[].scopes', () => {
  test.each<[string, string]>([
    ['a scope with a space', '["orders:write admin"]'],
    ['a double quote', `['a"b']`],
    ['a backslash', `['a\\\\b']`],
    ['non-ASCII', '["é"]'],
    ['empty', '[""]'],
  ])('%s is refused, naming the field', async (_n, scopes) => {
    const r = await readConfigText(withScopes(scopes), {}, { baseDir: '.' });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues).toHaveLength(1);
      expect(r.issues[0]!.path).toBe('auth.requireScopes[0].scopes[0]');
      expect(r.issues[0]!.message).toBe('expected a scope token: printable ASCII without space, " or \\ (RFC 6749 §3.3)');
    }
  });

  // (`$` is left out: the loader reads it as an environment variable.)
  test.each(['orders:write', 'api://orders/Write.All', 'https://graph.microsoft.com/User.Read', "a!#%&'()*+,-./[]^_`{|}~"])('%s is a scope token', async (scope) => {
    const r = await readConfigText(withScopes(JSON.stringify([scope])), {}, { baseDir: '.' });
    expect(r.ok).toBe(true);
  });
});

describe('auth.jwksUrl', () => {
  test('a user or password in the URL is refused (fetch would refuse it on every attempt)', async () => {
    const r = await readConfigText('store: { url: memory }\nauth: { jwksUrl: "https://user:pw@idp.example/jwks" }\n', {}, { baseDir: '.' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toEqual([{ path: 'auth.jwksUrl', message: 'a user or password in the URL is not supported' }]);
  });
});
