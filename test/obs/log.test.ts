// The logger itself: text levels, capped strings, and a bounded buffer that drops and counts behind a stuck stdout.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { capString, createLogger, createProcessLogger, droppedLines, MAX_LOG_STRING } from '../../src/obs/log.js';
import { DecisionRecorder } from '../../src/obs/recorder.js';
import { Metrics } from '../../src/obs/metrics.js';

function sinkLogger(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger(level, sink), lines };
}

describe('lines', () => {
  test('levels are words', () => {
    const { log, lines } = sinkLogger('debug');
    log.warn('w');
    log.info('i');
    log.debug('d');
    expect(lines.map((l) => l.level)).toEqual(['warn', 'info', 'debug']);
  });

  test('every string is capped: fields, nested fields, arrays, the message and error messages', () => {
    const { log, lines } = sinkLogger();
    const big = 'z'.repeat(20_000);
    log.info({ path: big, nested: { deeper: big }, list: [big], err: new Error(big), short: 'ok' }, big);
    const line = lines[0]!;
    const json = JSON.stringify(line);
    expect(json.length).toBeLessThan(6 * MAX_LOG_STRING);
    expect(line.short).toBe('ok');
    expect(line.path).toBe(capString(big));
    expect((line.nested as Record<string, string>).deeper).toBe(capString(big));
    expect((line.list as string[])[0]).toBe(capString(big));
    expect((line.err as Record<string, string>).message).toBe(capString(big));
    expect(line.msg).toBe(capString(big));
    expect(capString(big)).toMatch(/^z{256}…\[\+19744 chars\]$/);
  });

  test('credentials are redacted by name as a second line of defence', () => {
    const { log, lines } = sinkLogger();
    log.info({ authorization: 'Bearer abc', headers: { cookie: 'c=1' }, password: 'p' }, 'x');
    expect(JSON.stringify(lines[0])).not.toMatch(/Bearer abc|c=1|"p"/);
  });
});

describe('the process logger behind a stdout that does not drain', () => {
  test('keeps at most its buffer, drops the rest and counts each dropped line; a reader gets what was kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-log-'));
    const fifo = join(dir, 'stdout');
    execFileSync('mkfifo', [fifo]);
    // Read-write and non-blocking: nobody reads, so the pipe's 64 KiB fill and writes get EAGAIN.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const { log, dropped, close } = createProcessLogger('info', { fd, maxBufferBytes: 64 * 1024 });
      const line = 'x'.repeat(200);
      for (let i = 0; i < 2000; i++) log.info({ i, path: line }, 'denied');
      // ~2000 lines of ~300 bytes: the pipe takes 64 KiB, the buffer 64 KiB; the rest is dropped.
      await new Promise((r) => setTimeout(r, 300));
      expect(dropped()).toBeGreaterThan(1000);
      expect(dropped()).toBeLessThan(2000);
      expect(droppedLines(log)).toBe(dropped());
      // Drain: every line either arrives (whole) or was counted as dropped.
      let got = '';
      const buf = Buffer.alloc(65536);
      const count = () => got.split('\n').filter(Boolean).length;
      for (let tries = 0; tries < 300 && count() + dropped() < 2000; tries++) {
        try {
          const n = readSync(reader, buf);
          got += buf.toString('utf8', 0, n);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      const kept = got.split('\n').filter(Boolean);
      expect(kept.length).toBeGreaterThan(100);
      expect(kept.length + dropped()).toBe(2000);
      for (const l of kept) expect(() => JSON.parse(l)).not.toThrow();
      await close(); // closes fd
    } finally {
      closeSync(reader);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('conflict_gate_log_lines_dropped_total reads the count', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    let n = 0;
    metrics.observe({ storeUp: () => true, degraded: () => false, verifier: () => ({ ready: true }), logLinesDropped: () => n });
    const read = async () => Number(/^conflict_gate_log_lines_dropped_total (\d+)$/m.exec(await metrics.registry.metrics())![1]);
    expect(await read()).toBe(0);
    n = 7;
    expect(await read()).toBe(7);
    n = 9;
    expect(await read()).toBe(9);
  });
});

describe('allow sampling (server.logAllows)', () => {
  const event = { outcome: 'allow' as const, status: 200, shadowed: [], steps: [], method: 'GET', path: '/x', seconds: 0.001 };

  test.each([
    [0, [0.0, 0.5, 0.99], 0],
    [1, [0.0, 0.5, 0.99], 3],
    [0.5, [0.1, 0.49, 0.5, 0.9], 2],
  ])('rate %s: %j draws give %i lines', (rate, draws, expected) => {
    const { log, lines } = sinkLogger();
    let i = 0;
    const rec = new DecisionRecorder(new Metrics({ defaultMetrics: false }), log, { allowSample: () => rate, random: () => draws[i++]! });
    for (let k = 0; k < draws.length; k++) rec.record(event);
    expect(lines.filter((l) => l.msg === 'allowed')).toHaveLength(expected);
  });

  test('denials are always logged, whatever the rate', () => {
    const { log, lines } = sinkLogger();
    const rec = new DecisionRecorder(new Metrics({ defaultMetrics: false }), log, { allowSample: () => 0 });
    rec.record({ ...event, outcome: 'deny', status: 401, deny: { kind: 'deny', gate: 'auth', code: 'missing_token', detail: 'no token' } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'denied', code: 'missing_token', reason: 'no token' });
  });
});
