// An open-loop load at a fixed rate: each request is due at start + i/rate and its latency is counted
// from then, so a slow answer cannot hold back the requests behind it (no coordinated omission).
// Raw keep-alive sockets with pre-serialised requests: Node's http client costs more per request
// than the servers measured, and would make the load generator the bottleneck on a shared core.
import { connect, type Socket } from 'node:net';
import type { AcRequest } from 'autocannon';
import { round, Samples } from './stats.js';

export interface SteadyResult {
  rate: number;
  sent: number;
  answered: number;
  errors: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /**
   * The same percentiles counted from when each request was written rather than due: the server's
   * share alone. The gap between the two is this process sending late (timer granularity, a busy
   * core), which on a noisy VM can dominate the tail.
   */
  fromSend: { p50: number; p99: number; p999: number };
}

interface Conn {
  socket: Socket;
  /** When the request in flight was due (ms, performance.now()), or -1 when idle. */
  due: number;
  /** When it was written. */
  sentAt: number;
  counted: boolean;
  buf: Buffer;
}

function serialise(r: AcRequest, host: string): Buffer {
  let head = `${r.method ?? 'GET'} ${r.path ?? '/'} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (const [k, v] of Object.entries(r.headers ?? {})) head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = [Buffer.from('content-length:'), Buffer.from('Content-Length:')];
const CHUNKED = [Buffer.from('transfer-encoding: chunked'), Buffer.from('Transfer-Encoding: chunked')];

/** Where `name` (one of its spellings) starts in `b` before `end`, or -1. */
function field(b: Buffer, names: readonly Buffer[], end: number): number {
  for (const name of names) {
    const i = b.indexOf(name);
    if (i !== -1 && i < end) return i + name.length;
  }
  return -1;
}

/** The end of a chunked body starting at `at` (chunk-size lines in hex, no trailers), or -1. */
function chunkedEnd(b: Buffer, at: number): number {
  for (;;) {
    const line = b.indexOf(CRLF, at);
    if (line === -1) return -1;
    const size = parseInt(b.toString('latin1', at, line), 16);
    // Not a chunk size: take what came as the answer rather than wait (or search the head again) forever.
    if (Number.isNaN(size)) return b.length;
    if (size === 0) return b.length >= line + 4 ? line + 4 : -1;
    at = line + 2 + size + 2;
    if (at > b.length) return -1;
  }
}

/**
 * Bytes of the first complete response in `b` (head, then a Content-Length or chunked body), or -1.
 * Reads the bytes in place (a string per response made this process's own scavenges part of the
 * latencies it measures); a chunked answer, as bare Hono's empty 200, is read to its last chunk:
 * counted at its head, its last chunk would be taken for the next answer on the connection.
 */
function responseLength(b: Buffer): number {
  const end = b.indexOf(HEAD_END);
  if (end === -1) return -1;
  if (field(b, CHUNKED, end) !== -1) return chunkedEnd(b, end + 4);
  let body = 0;
  let i = field(b, CONTENT_LENGTH, end);
  if (i !== -1) {
    while (b[i] === 0x20 || b[i] === 0x09) i++;
    for (let c = b[i]!; c >= 0x30 && c <= 0x39; c = b[++i]!) body = body * 10 + (c - 0x30);
  }
  const len = end + 4 + body;
  return b.length >= len ? len : -1;
}

/**
 * Sends `rate` requests a second for `durationS` (after `warmupS` at the same rate, not counted),
 * cycling through `requests`, each on an idle keep-alive connection (a new one when none is idle, up
 * to `maxConnections`). Latency is measured from the time a request was due: if the server falls
 * behind, the wait shows in the figures, as a client at that rate would see it.
 */
export async function steadyLoad(url: string, rate: number, durationS: number, warmupS: number, requests: AcRequest[], maxConnections = 256): Promise<SteadyResult> {
  const target = new URL(url);
  const host = `${target.hostname}:${target.port}`;
  const wire = requests.map((r) => serialise(r, host));
  const samples = new Samples();
  const fromSend = new Samples();
  const idle: Conn[] = [];
  const all: Conn[] = [];
  let answered = 0;
  let errors = 0;
  const total = Math.round(rate * (durationS + warmupS));
  const warm = Math.round(rate * warmupS);
  const start = performance.now();
  let sent = 0;
  let finished = 0;
  let backlog: number[] = [];

  await new Promise<void>((resolve) => {
    const done = () => {
      if (finished >= total) resolve();
    };
    const open = (): Conn => {
      const c: Conn = { socket: connect({ host: target.hostname, port: Number(target.port), noDelay: true }), due: -1, sentAt: 0, counted: false, buf: Buffer.alloc(0) };
      c.socket.on('data', (d: Buffer) => {
        c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
        const len = responseLength(c.buf);
        if (len === -1) return;
        c.buf = c.buf.subarray(len);
        if (c.counted) {
          answered++;
          const now = performance.now();
          samples.add(now - c.due);
          fromSend.add(now - c.sentAt);
        }
        c.due = -1;
        finished++;
        idle.push(c);
        pump();
        done();
      });
      c.socket.on('error', () => undefined);
      c.socket.on('close', () => {
        const i = idle.indexOf(c);
        if (i !== -1) idle.splice(i, 1);
        // Out of the count too: a server that closes idle keep-alive connections (Node's default after
        // 5 s) would otherwise leave this generator fewer and fewer sockets to send on, and its
        // requests queued here, late, as if the server were slow.
        const j = all.indexOf(c);
        if (j !== -1) all.splice(j, 1);
        if (c.due !== -1) {
          if (c.counted) errors++;
          finished++;
          c.due = -1;
          done();
        }
      });
      all.push(c);
      return c;
    };
    const fire = (i: number, c: Conn) => {
      c.due = start + (i * 1000) / rate;
      c.counted = i >= warm;
      c.sentAt = performance.now();
      c.socket.write(wire[i % wire.length]!);
    };
    /** Requests that are due and waiting for a connection go out first, in order. */
    const pump = () => {
      while (backlog.length > 0) {
        const c = idle.pop() ?? (all.length < maxConnections ? open() : undefined);
        if (!c) return;
        fire(backlog.shift()!, c);
      }
    };
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      while (sent < due) backlog.push(sent++);
      pump();
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  for (const c of all) c.socket.destroy();
  backlog = [];
  const [p50, p99, p999, max] = samples.percentiles([50, 99, 99.9, 100]);
  const [s50, s99, s999] = fromSend.percentiles([50, 99, 99.9]);
  return {
    rate,
    sent: total - warm,
    answered,
    errors,
    p50: round(p50!, 2),
    p99: round(p99!, 2),
    p999: round(p999!, 2),
    max: round(max!, 2),
    fromSend: { p50: round(s50!, 2), p99: round(s99!, 2), p999: round(s999!, 2) },
  };
}
