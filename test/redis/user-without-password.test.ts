// A Redis ACL user named without a password (`redis://app@host`, or `username` alone) is a working
// setup for a `nopass` user: ioredis sends `AUTH app ""`, which such a user accepts, and a user that
// needs a password is refused loudly (WRONGPASS). So `check` takes it, and the gate runs as that user.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { VersionPublisher } from '../../src/client/index.js';
import { runCli, startGate, type RunningGate } from '../helpers/gate.js';
import { freePort, waitForPort } from '../helpers/net.js';

let port: number;
let redis: ChildProcess;
let g: RunningGate | undefined;
const dir = mkdtempSync(join(tmpdir(), 'cg-nopass-'));

beforeAll(async () => {
  port = await freePort();
  // The default user is off: a connection that did not authenticate as `app` can run nothing.
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--user', 'default', 'off', '--user', 'app', 'on', 'nopass', '~*', '&*', '+@all', '--user', 'secured', 'on', '>s3cret', '~*', '&*', '+@all'], { stdio: 'ignore' });
  await waitForPort(port);
});
afterAll(async () => {
  await g?.stop();
  redis.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const yaml = (url: string) => `
server: { trustedProxies: ["127.0.0.0/8"] }
store: { url: "${url}", keyPrefix: "cgtest:", commandTimeout: 1s }
auth: { secret: "user-without-password-secret-0123456789" }
`;

test('redis://app@host with a nopass user: check says OK, the gate is ready as that user, the client publishes', async () => {
  const url = `redis://app@127.0.0.1:${port}/0`;
  const configFile = join(dir, 'gate.yaml');
  writeFileSync(configFile, yaml(url));
  const check = await runCli(['check', '--config', configFile]);
  expect(check.stderr).toBe('');
  g = await startGate({ configFile });
  expect(check.code).toBe(0);
  let ready = 0;
  for (let i = 0; i < 100 && ready !== 200; i++) {
    ready = (await fetch(`${g.url}/readyz?strict=1`)).status;
    if (ready !== 200) await new Promise((r) => setTimeout(r, 50));
  }
  expect(ready).toBe(200);
  const publisher = new VersionPublisher({ redis: { url, keyPrefix: 'cgtest:' } });
  try {
    expect(await publisher.publish('orders:1', '7')).toMatchObject({ kind: 'published' });
  } finally {
    await publisher.close();
  }
  const admin = new Redis({ port, username: 'secured', password: 's3cret' });
  try {
    expect(await admin.get('cgtest:ver:{orders:1}')).toBe('7');
    // The gate's own connections are the app user's (the default user is off).
    const clients = await admin.client('LIST');
    expect(String(clients)).toMatch(/user=app/);
  } finally {
    admin.disconnect();
  }
});

test('a user that needs a password, named without one, is refused by Redis, not let in as someone else', async () => {
  const r = new Redis({ port, username: 'secured', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  const errors: string[] = [];
  r.on('error', (e: Error) => errors.push(e.message));
  await expect(r.connect().then(() => r.ping())).rejects.toThrow();
  r.disconnect();
  expect(errors.join('\n')).toMatch(/WRONGPASS/);
});
