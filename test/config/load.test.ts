// Every config problem the contract names: one fixture each, the exact message, exit code 2, no stack.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/config/compile.js';
import { loadConfigFile, loadConfigText } from '../../src/config/load.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { ROOT, runCli } from '../helpers/gate.js';

const FIX = join(ROOT, 'test/fixtures/config');
const SECRET = 'auth: { secret: "0123456789abcdef0123456789abcdef" }\n';
const ALGS = 'HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519';

const CASES: [fixture: string, lines: string[], env?: Record<string, string>][] = [
  ['window-not-duration', ['rateLimit.rules[1].window: expected a duration like "60s"']],
  ['window-not-whole-seconds', ['rateLimit.rules[1].window: expected whole seconds, at least "1s"']],
  ['unknown-key', ['rateLimit.rules[0].requestsperunit: unknown key']],
  ['unknown-section', ['ratelimit: unknown key (did you mean rateLimit?)']],
  ['limit-zero', ['rateLimit.rules[0].limit: expected a number >= 1']],
  ['limit-not-number', ['rateLimit.rules[0].limit: expected a number, got string']],
  ['duplicate-rule-name', ['rateLimit.rules[1].name: duplicate rule name "a"']],
  ['bad-enum', ['rateLimit.onStoreError: expected memory, allow or deny']],
  ['bad-cidr', ['server.trustedProxies[0]: expected an IP address or CIDR like "10.0.0.0/8"']],
  ['bad-store-url', ['store.url: expected "memory" or a redis:// URL']],
  ['bad-route', ['auth.publicRoutes[0]: expected "METHOD /pattern" or "/pattern" (METHOD one of GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE, TRACE, CONNECT)']],
  ['star-not-last', ['auth.publicRoutes[0]: "*" may only be the last segment']],
  ['key-param-unknown', ['conflict.resources[0].key: {oid} is not a parameter of the path /api/orders/:id']],
  ['bad-require', ['conflict.resources[0].require: expected none, if-match, client-version or any']],
  ['bad-if-match-status', ['conflict.ifMatchStatus: expected 412 or 409']],
  ['zero-lease', ['conflict.claim.lease: expected a duration above 0']],
  ['duration-too-long', ['auth.jwksMaxAge: expected a duration of at most 576h (24 days)']],
  ['lease-number', ['conflict.claim.lease: expected a duration like "60s"']],
  ['no-key-source', ['auth: exactly one of jwksUrl, jwksFile, publicKeyFile, secret is required']],
  ['two-key-sources', ['auth: exactly one of jwksUrl, jwksFile, publicKeyFile, secret is required (got jwksUrl, secret)']],
  // A field that fails (an algorithms entry) does not hide the key-source problem until the next run.
  [
    'two-key-sources-bad-algorithm',
    [`auth.algorithms[1]: expected one of ${ALGS} ("none" is never allowed)`, 'auth: exactly one of jwksUrl, jwksFile, publicKeyFile, secret is required (got jwksFile, secret)'],
  ],
  ['hmac-with-public-key', ['auth.algorithms[1]: HS256 is an HMAC algorithm; it is only allowed with auth.secret']],
  ['asymmetric-with-secret', ['auth.algorithms[0]: RS256 needs a public key, but auth.secret is an HMAC secret']],
  ['alg-none', [`auth.algorithms[0]: expected one of ${ALGS} ("none" is never allowed)`]],
  ['unset-env', ['auth.secret: environment variable JWT_SECRET is not set']],
  ['missing-jwks-file', [`auth.jwksFile: ${FIX}/missing.json: file not found`]],
  ['bad-public-key', [`auth.publicKeyFile: ${FIX}/not-a-key.pem: not a PEM public key (SPKI or X.509) usable with RS256, ES256, EdDSA`]],
  ['forward-claim-reserved', ['auth.forwardClaims.X-Auth-Subject: this header is set by the gate itself']],
  ['forward-claim-name', ['#Org', 'X.Team'].map((h) => `auth.forwardClaims.${h}: expected letters, digits, "-" and "_" (the proxies' configs name it as it is)`)],
  [
    'forward-claim-protocol',
    // X-Forwarded-User and -Email (oauth2-proxy's identity headers) are claims: accepted.
    ['Transfer-Encoding', 'content-length', 'Content-Language', 'Host', 'Authorization', 'X-Forwarded-For', 'X-Original-URI'].map((h) => `auth.forwardClaims.${h}: an HTTP protocol header (framing, connection, routing or credentials) cannot carry a claim`),
  ],
  ['missing-auth', ['auth: required']],
  ['bad-jwks-url', ['auth.jwksUrl: expected an http(s) URL']],
  ['dollar-bare', ['auth.issuer: unsupported "$JWT_ISSUER": use ${VAR}, ${VAR:-default} or ${VAR:?message}, and $$ for a literal "$"']],
  ['dollar-unsupported', ['auth.issuer: unsupported "${JWT_ISSUER:+x}": use ${VAR}, ${VAR:-default} or ${VAR:?message}, and $$ for a literal "$"']],
  ['missing-window', ['rateLimit.rules[0].window: required']],
  ['empty-jwks', [`auth.jwksFile: ${FIX}/empty-jwks.json: the key set has no keys`]],
  ['param-form', ['conflict.resources[0].params.id: expected one of any, integer, uuid', 'conflict.resources[0].params.oid: oid is not a parameter of the path /api/orders/:id']],
  ['semicolon-pattern', ['auth.publicRoutes[0]: ";" cannot appear in a pattern (path parameters are refused or stripped before matching)']],
  ['misspelled-key', ['auth.clientIdClaims: unknown key (did you mean clientIdClaim?)', 'conflict.resources[0].requires: unknown key (did you mean require?)']],
  ['store-url-and-cluster', ['store: url and cluster are both set: set exactly one of url, cluster, sentinel']],
  ['store-cluster-and-sentinel', ['store: cluster and sentinel are both set: set exactly one of url, cluster, sentinel']],
  [
    'store-bad-cluster-node',
    [
      'store.cluster.nodes[1]: expected "host:port" or a redis:// URL with no credentials or path (they have their own fields)',
      'store.cluster.nodes[2]: expected "host:port" or a redis:// URL with no credentials or path (they have their own fields)',
    ],
  ],
  // A field that fails (a timeout) does not hide the two-modes problem until the next run.
  ['store-two-modes-bad-timeout', ['store.commandTimeout: expected a duration like "60s"', 'store: url and cluster are both set: set exactly one of url, cluster, sentinel']],
  ['store-bad-sentinel', ['store.sentinel.name: required', 'store.sentinel.sentinels[1]: expected "host:port"']],
  ['store-credentials-twice', ['store.password: store.url has credentials too: give them in one place'], { REDIS_PASSWORD: 'pw' }],
  ['store-credentials-twice-bad-timeout', ['store.commandTimeout: expected a duration like "60s"', 'store.password: store.url has credentials too: give them in one place']],
  ['store-brace-prefix', ['store.keyPrefix: must not contain "{" or "}" (they would become the Redis Cluster hash tag of every key)']],
  ['store-cluster', ['REDIS_URL: conflicts with REDIS_CLUSTER_NODES: set only one of REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS (with REDIS_SENTINEL_NAME)'], { REDIS_URL: 'redis://10.0.0.9:6379/0', REDIS_CLUSTER_NODES: '10.0.0.1:6379' }],
  ['store-cluster', ['REDIS_SENTINEL_NAME: required when REDIS_SENTINELS is set (the name the sentinels monitor the master under)'], { REDIS_SENTINELS: '10.0.0.1:26379' }],
  ['store-cluster', ['REDIS_SENTINELS: required when REDIS_SENTINEL_NAME is set (comma-separated host:port of the sentinels)'], { REDIS_SENTINEL_NAME: 'mymaster' }],
  ['store-cluster', ['REDIS_CLUSTER_NODES: "10.0.0.2": expected "host:port" or a redis:// URL with no credentials or path (they have their own fields)'], { REDIS_CLUSTER_NODES: '10.0.0.1:6379,10.0.0.2' }],
  // One-node URLs ioredis would take and then crash on, ignore, or read options from (REDIS_URL replaces the file's mode).
  ['store-cluster', ['store.url: not a URL (expected redis://[user:password@]host[:port][/db])'], { REDIS_URL: 'redis://[::1' }],
  ['store-cluster', ['store.url: not a URL (expected redis://[user:password@]host[:port][/db])'], { REDIS_URL: 'redis://127.0.0.1:99999' }],
  ['store-cluster', ['store.url: not a URL (expected redis://[user:password@]host[:port][/db])'], { REDIS_URL: 'redis://:@/' }],
  ['store-cluster', ['store.url: no host (expected redis://[user:password@]host[:port][/db])'], { REDIS_URL: 'redis:///0' }],
  ['store-cluster', ['store.url: port 0: expected 1-65535'], { REDIS_URL: 'redis://127.0.0.1:0/0' }],
  ['store-cluster', ['store.url: the path is the database index: /0, /1, ...'], { REDIS_URL: 'redis://127.0.0.1:6379/abc' }],
  ['store-cluster', ['store.url: the path is the database index: /0, /1, ...'], { REDIS_URL: 'redis://127.0.0.1:6379/1/2' }],
  ['store-cluster', ['store.url: no query or fragment: the options have their own fields'], { REDIS_URL: 'redis://127.0.0.1:6379/0?enableOfflineQueue=true' }],
  ['store-cluster', ['store.url: the user or password has a malformed %-escape'], { REDIS_URL: 'redis://:%zz@127.0.0.1:6379/0' }],
  ['invalid-yaml', [`${FIX}/invalid-yaml.yaml: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1`]],
  ['yaml-unknown-tag', [`${FIX}/yaml-unknown-tag.yaml: invalid YAML: Unresolved tag: !Ref at line 3, column 11`]],
  ['yaml-alias-bomb', [`${FIX}/yaml-alias-bomb.yaml: invalid YAML: Excessive alias count indicates a resource exhaustion attack`]],
];

describe('conflict-gate check: one message per problem, naming the field', () => {
  test.each(CASES)('%s', async (fixture, lines, env = {}) => {
    const file = join(FIX, `${fixture}.yaml`);
    const { code, stdout, stderr } = await runCli(['check', '--config', file], env);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const [header, ...rest] = stderr.trimEnd().split('\n');
    expect(header).toBe(`conflict-gate: invalid config ${file} (${lines.length} problem${lines.length === 1 ? '' : 's'}):`);
    expect(rest).toEqual(lines);
    expect(stderr).not.toMatch(/\n\s+at /); // never a stack trace
  });

  test('all problems of a file are reported together', async () => {
    const yaml = `
auth: { secret: "0123456789abcdef0123456789abcdef" }
rateLimit:
  onStoreError: maybe
  rules:
    - { name: a, limit: 0, window: 60 }
    - { name: a, limit: 1, window: 60s, path: "/x/*/y" }
conflict: { ifMatchStatus: 400 }
`;
    const r = loadConfigText(yaml, {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => `${i.path}: ${i.message}`).sort()).toEqual(
      [
        'conflict.ifMatchStatus: expected 412 or 409',
        'rateLimit.onStoreError: expected memory, allow or deny',
        'rateLimit.rules[0].limit: expected a number >= 1',
        'rateLimit.rules[0].window: expected a duration like "60s"',
        'rateLimit.rules[1].name: duplicate rule name "a"',
        'rateLimit.rules[1].path: "*" may only be the last segment',
      ].sort(),
    );
  });

  test.each([
    ['a blank secret beside another key source', 'auth:\n  jwksFile: j.json\n  secret:\n  algorithms: [ES256]\n', ['auth.secret: expected a string, got null']],
    ['a blank secret alone', 'auth:\n  secret: ~\n  algorithms: [HS256]\n', ['auth.secret: expected a string, got null']],
    ['an http(s) JWKS URL that does not parse', 'auth:\n  jwksUrl: "https://u:p@host:99999/jwks"\n', ['auth.jwksUrl: expected an http(s) URL']],
    ['a blank store url beside a cluster', `${SECRET}store:\n  url:\n  cluster: { nodes: ["10.0.0.1:6379"] }\n`, ['store.url: expected a string, got null']],
    ['a malformed password beside a URL with credentials', `${SECRET}store:\n  url: redis://a:b@h:6379/0\n  password: { a: 1 }\n`, ['store.password: expected a string, got a mapping']],
  ])('a field written but malformed is one problem, not also a cross-field one: %s', (_name, yaml, lines) => {
    const r = loadConfigText(yaml, {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => `${i.path}: ${i.message}`)).toEqual(lines);
  });

  test("auth's cross-field checks run even when a field failed: an unknown algorithm hides neither the key confusion nor a forwarded claim's header", () => {
    const yaml = `
auth:
  secret: "0123456789abcdef0123456789abcdef"
  algorithms: [HS256, none, RS256]
  forwardClaims: { Host: sub }
  clockTolerance: 5
`;
    const r = loadConfigText(yaml, {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map((i) => `${i.path}: ${i.message}`).sort()).toEqual([
      `auth.algorithms[1]: expected one of ${ALGS} ("none" is never allowed)`,
      'auth.algorithms[2]: RS256 needs a public key, but auth.secret is an HMAC secret',
      'auth.clockTolerance: expected a duration like "60s"',
      'auth.forwardClaims.Host: an HTTP protocol header (framing, connection, routing or credentials) cannot carry a claim',
    ]);
  });

  test('a secret shorter than its hash is a warning, not a refusal', async () => {
    const { code, stdout, stderr } = await runCli(['check', '--config', join(FIX, 'short-secret.yaml')]);
    expect(code).toBe(0);
    expect(stdout).toContain('OK');
    expect(stderr.trim()).toBe('warning: auth.secret: shorter than 32 bytes, weaker than HS256 should be (RFC 7518 §3.2); use a longer secret');
    expect(stderr).not.toContain('tiny-s3cret'); // the secret itself is never printed
  });

  test('a missing file exits 2 with one line', async () => {
    const { code, stderr } = await runCli(['check', '--config', '/nonexistent/gate.yaml']);
    expect(code).toBe(2);
    expect(stderr).toContain('/nonexistent/gate.yaml: file not found');
  });

  test.each(['valid-minimal', 'valid-full'])('%s passes check with exit 0', async (fixture) => {
    const { code, stdout } = await runCli(['check', '--config', join(FIX, `${fixture}.yaml`)]);
    expect(code).toBe(0);
    expect(stdout).toContain('OK');
  });

  test('GATE_CONFIG stands in for --config', async () => {
    expect((await runCli(['check'], { GATE_CONFIG: join(FIX, 'valid-minimal.yaml') })).code).toBe(0);
    expect((await runCli(['check'], { GATE_CONFIG: join(FIX, 'limit-zero.yaml') })).code).toBe(2);
  });

  test('a bad config makes serve exit 2 too (same loader as check)', async () => {
    const { code, stderr } = await runCli(['--config', join(FIX, 'limit-zero.yaml')]);
    expect(code).toBe(2);
    expect(stderr).toContain('rateLimit.rules[0].limit: expected a number >= 1');
  });

  test('a bad env override is named', async () => {
    const { code, stderr } = await runCli(['check', '--config', join(FIX, 'valid-minimal.yaml')], { PORT: 'eighty' });
    expect(code).toBe(2);
    expect(stderr).toContain('PORT: expected a port number (0-65535)');
    const lvl = await runCli(['check', '--config', join(FIX, 'valid-minimal.yaml')], { LOG_LEVEL: 'loud' });
    expect(lvl.code).toBe(2);
    expect(lvl.stderr).toContain('LOG_LEVEL: expected one of');
  });
});

describe('loading', () => {
  test('the contract example config loads with its defaults', () => {
    const r = loadConfigFile(join(FIX, 'valid-full.yaml'), {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.conflict.ifMatchStatus).toBe(412);
    expect(r.config.rateLimit.rules[1]).toMatchObject({ name: 'default', limit: 100, window: '60s', by: 'client' });
  });

  test('defaults fill every section a minimal file leaves out', () => {
    const r = loadConfigFile(join(FIX, 'valid-minimal.yaml'), {});
    expect(r.ok && r.config).toMatchObject({
      server: { port: 8080, adminPort: 9090, logAllows: 0 },
      store: { url: 'redis://127.0.0.1:6379/0', keyPrefix: 'cg:' },
      auth: { clientIdClaim: 'sub', clockTolerance: '5s' },
      rateLimit: { onStoreError: 'memory', rules: [] },
      conflict: { ifMatchStatus: 412, unknownResource: 'allow', onStoreError: 'allow', claim: { enabled: false, lease: '5s' } },
    });
    // No host: the listeners take IPv6 and IPv4 (::), or 0.0.0.0 without IPv6.
    expect(r.ok && r.config.server.host).toBeUndefined();
  });

  test('${VAR} is replaced from the environment; a whole-value variable keeps its YAML type', () => {
    const r = loadConfigText('auth: { secret: "${S}" }\nrateLimit: { rules: [{ name: r, limit: "${L}", window: "${W}s" }] }\nstore: { keyPrefix: "${P}:x:" }', {
      S: 'k'.repeat(32),
      L: '7',
      W: '30',
      P: 'app',
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.auth.secret).toBe('k'.repeat(32));
    expect(r.config.rateLimit.rules[0]!.limit).toBe(7);
    expect(r.config.rateLimit.rules[0]!.window).toBe('30s');
    expect(r.config.store.keyPrefix).toBe('app:x:');
  });

  test('a whole-value variable that reads as a number stays text where the schema wants text (secret, password, issuer)', async () => {
    const digits = '01234567890123456789012345678901234'; // as a YAML number: 1.2345678901234568e+33
    const env = { S: digits, PW: '12345', ISS: '123', CLAIM: '7', TRUE: 'true', L: '5' };
    const yaml = 'auth:\n  secret: ${S}\n  issuer: "${ISS}"\n  clientIdClaim: ${CLAIM}\n  requireExp: ${TRUE}\nstore: { password: "${PW}" }\nrateLimit: { rules: [{ name: r, limit: "${L}", window: 60s }] }\n';
    const r = loadConfigText(yaml, env);
    expect(r.ok ? [] : r.issues).toEqual([]);
    if (!r.ok) return;
    expect(r.config.auth).toMatchObject({ secret: digits, issuer: '123', clientIdClaim: '7', requireExp: true });
    expect(r.config.store.password).toBe('12345');
    expect(r.config.rateLimit.rules[0]!.limit).toBe(5);
    // Through the CLI; a number where the schema wants one and gets text is still refused.
    const dir = mkdtempSync(join(tmpdir(), 'cg-typed-'));
    writeFileSync(join(dir, 'gate.yaml'), yaml);
    expect(await runCli(['check', '--config', join(dir, 'gate.yaml')], env)).toMatchObject({ code: 0 });
    const bad = await runCli(['check', '--config', join(dir, 'gate.yaml')], { ...env, L: 'many' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('rateLimit.rules[0].limit: expected a number, got string');
  });

  test('in a list a union takes (audience, issuer) too; a number out of range keeps its range message', () => {
    const r = loadConfigText('auth: { secret: "' + 'k'.repeat(32) + '", audience: ["${A}", "api"], issuer: ["${I}"] }', { A: '123', I: '2024' });
    expect(r.ok ? [] : r.issues).toEqual([]);
    if (r.ok) expect(r.config.auth).toMatchObject({ audience: ['123', 'api'], issuer: ['2024'] });
    const zero = loadConfigText('auth: { secret: "' + 'k'.repeat(32) + '" }\nrateLimit: { rules: [{ name: r, limit: "${L}", window: 60s }] }', { L: '0' });
    expect(zero.ok ? [] : zero.issues.map((i) => `${i.path}: ${i.message}`)).toEqual(['rateLimit.rules[0].limit: expected a number >= 1']);
  });

  test('${VAR:-default} and ${VAR-default} as in compose; $$ is a literal "$"', () => {
    const yaml = 'auth: { secret: "${S:-' + 'd'.repeat(32) + '}", issuer: "${ISS-https://fallback}", audience: "a$$b" }';
    const unset = loadConfigText(yaml, {});
    expect(unset.ok && [unset.config.auth.secret, unset.config.auth.issuer, unset.config.auth.audience]).toEqual(['d'.repeat(32), 'https://fallback', 'a$b']);
    const empty = loadConfigText(yaml, { S: '', ISS: '' });
    // `:-` replaces an empty value, `-` only an unset one (and an empty issuer is then refused)
    expect(empty.ok).toBe(false);
    if (!empty.ok) expect(empty.issues).toEqual([{ path: 'auth.issuer', message: 'must not be empty' }]);
    const set = loadConfigText(yaml, { S: 's'.repeat(32), ISS: 'https://iss' });
    expect(set.ok && [set.config.auth.secret, set.config.auth.issuer]).toEqual(['s'.repeat(32), 'https://iss']);
  });

  test('${VAR:?message} names the variable and the message when unset or empty', () => {
    const r = loadConfigText('auth: { secret: "${S:?set S to the HS256 secret}" }', { S: '' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toEqual([{ path: 'auth.secret', message: 'environment variable S is not set: set S to the HS256 secret' }]);
  });

  test('an env value cannot inject YAML structure', () => {
    const r = loadConfigText('auth: { secret: "${S}" }', { S: '0123456789abcdef0123456789abcdef\nrateLimit: {}' });
    expect(r.ok && r.config.auth.secret).toBe('0123456789abcdef0123456789abcdef\nrateLimit: {}');
  });

  test('PORT, ADMIN_PORT, HOST and REDIS_URL override the file', () => {
    const r = loadConfigFile(join(FIX, 'valid-full.yaml'), { PORT: '7000', ADMIN_PORT: '7001', HOST: '127.0.0.1', REDIS_URL: 'redis://cache:6380/2' });
    expect(r.ok && r.config.server).toMatchObject({ port: 7000, adminPort: 7001, host: '127.0.0.1' });
    expect(r.ok && r.config.store.url).toBe('redis://cache:6380/2');
  });

  test('compile turns durations into milliseconds and patterns into matchers', async () => {
    const r = loadConfigFile(join(FIX, 'valid-full.yaml'), {});
    if (!r.ok) throw new Error('fixture invalid');
    const c = await compileConfig(r.config);
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    expect(c.compiled.auth.clockToleranceMs).toBe(5000);
    expect(c.compiled.rateLimit.rules[0]!.windowS).toBe(60);
    expect(c.compiled.conflict.resources[0]!.key({ id: '42' })).toBe('orders:42');
    // the key encoding is injective: what the template itself uses is escaped in a capture
    expect(c.compiled.conflict.resources[0]!.key({ id: 'a:b%' })).toBe('orders:a%3Ab%25');
    expect(c.compiled.server.classifyIp('10.1.2.3')).toEqual({ ip: '10.1.2.3', trusted: true });
    expect(c.compiled.server.classifyIp('::ffff:127.0.0.1')).toEqual({ ip: '127.0.0.1', trusted: true });
    expect(c.compiled.server.classifyIp('203.0.113.9')).toEqual({ ip: '203.0.113.9', trusted: false });
    expect(c.compiled.server.classifyIp('not-an-ip')).toBeNull();
    expect(Object.isFrozen(c.compiled.rateLimit.rules)).toBe(true);
  });
});

describe('JSON Schema', () => {
  test('`conflict-gate schema` prints the committed config.schema.json', async () => {
    const { code, stdout } = await runCli(['schema']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(JSON.parse(readFileSync(join(ROOT, 'config.schema.json'), 'utf8')));
  });

  test('the schema is strict and knows the contract fields', () => {
    const s = configJsonSchema() as { additionalProperties: boolean; properties: Record<string, { properties: Record<string, unknown> }> };
    expect(s.additionalProperties).toBe(false);
    expect(Object.keys(s.properties)).toEqual(['server', 'store', 'auth', 'rateLimit', 'conflict']);
    expect(Object.keys(s.properties.conflict!.properties)).toEqual(expect.arrayContaining(['ifMatchStatus', 'unknownResource', 'onStoreError', 'claim', 'resources']));
  });
});

describe('CLI basics', () => {
  test('--help exits 0 and lists the commands', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/check --config/);
    expect(stdout).toMatch(/schema/);
  });
  test('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect((await runCli(['--version'])).stdout.trim()).toBe(pkg.version);
  });
  test('an unknown command or flag exits 2', async () => {
    expect((await runCli(['frobnicate'])).code).toBe(2);
    expect((await runCli(['--frob'])).code).toBe(2);
  });
  test('serving with no config and no --dev refuses (dev mode is never a silent default)', async () => {
    const { code, stderr } = await runCli([]);
    expect(code).toBe(2);
    expect(stderr).toContain('no config');
  });
});

describe('resource id forms: canonicalised, or the write is refused', () => {
  const compileWith = async (params: string) => {
    const r = loadConfigText(`auth: { secret: "${'s'.repeat(32)}" }\nconflict: { resources: [{ path: "/o/:id/:sub", key: "o:{id}/{sub}", params: ${params} }] }`, {});
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    const c = await compileConfig(r.config);
    if (!c.ok) throw new Error(JSON.stringify(c.issues));
    return c.compiled.conflict.resources[0]!.key;
  };
  test('integer: leading zeros dropped; anything else is not an integer', async () => {
    const key = await compileWith('{ id: integer }');
    expect(key({ id: '042', sub: 'x' })).toBe('o:42/x');
    expect(key({ id: '0', sub: 'x' })).toBe('o:0/x');
    for (const bad of ['42 ', '42.', '-1', '4e2', '', '٤٢']) expect(key({ id: bad, sub: 'x' })).toMatchObject({ param: 'id', form: 'integer' });
  });
  test('uuid: lower case; anything else is not a uuid', async () => {
    const key = await compileWith('{ sub: uuid }');
    expect(key({ id: 'a', sub: 'A0B1C2D3-0000-4000-8000-00000000000F' })).toBe('o:a/a0b1c2d3-0000-4000-8000-00000000000f');
    expect(key({ id: 'a', sub: 'a0b1c2d3000040008000000000000000' })).toMatchObject({ param: 'sub', form: 'uuid' });
  });
  test('any (the default): escaped, so a%3Ab/c and a/b%3Ac are two resources', async () => {
    const key = await compileWith('{}');
    expect(key({ id: 'a:b', sub: 'c' })).not.toBe(key({ id: 'a', sub: 'b:c' }));
  });
});
