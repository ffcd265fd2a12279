// Real Redis for tests: the shared one on 127.0.0.1:6379, or a test-owned redis-server on a free port.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { freePort, waitForPort } from './net.js';

export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379/0';

/** A key prefix no other test uses, so test files can share the one Redis. */
export function uniquePrefix(tag = 't'): string {
  return `cgtest:${tag}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under a prefix (SCAN, not KEYS). */
export async function flushPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

export interface OwnRedis {
  port: number;
  url: string;
  /** Kills the server (SIGKILL: an outage, not a shutdown). */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: the socket stays open, nothing answers (a hung server). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/** Spawns a throwaway redis-server on a free port (for tests that kill it). */
export async function startOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const start = async () => {
    // --dir: a replica writes the RDB it receives there, even with --save "".
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir()], { stdio: 'ignore' });
    await waitForPort(port);
  };
  const kill = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill,
    restart: start,
    stop: async () => {
      proc?.kill('SIGCONT');
      await kill();
    },
    pause: () => void proc?.kill('SIGSTOP'),
    resume: () => void proc?.kill('SIGCONT'),
  };
}
