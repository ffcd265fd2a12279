// The open-loop generator of `npm run bench:steady` (bench/lib/steady.ts) against real servers: it
// must read each answer whole, whatever its framing, and keep sending when a server closes idle
// connections, or the latencies it reports are its own.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { steadyLoad } from '../../bench/lib/steady.js';

interface Served {
  url: string;
  /** Requests that arrived on a connection whose previous request was not answered yet. */
  overlapped: number;
  received: number;
  server: Server;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A server that answers every request after `delayMs`, with `answer`, counting overlaps per connection. */
async function serve(answer: (res: ServerResponse) => void, delayMs: number): Promise<Served> {
  const busy = new WeakSet<object>();
  const served = { url: '', overlapped: 0, received: 0 } as Served;
  const server = createServer((req, res) => {
    served.received++;
    if (busy.has(req.socket)) served.overlapped++;
    busy.add(req.socket);
    setTimeout(() => {
      busy.delete(req.socket);
      answer(res);
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  served.server = server;
  served.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth`;
  return served;
}

const REQUESTS = [{ method: 'GET', path: '/auth', headers: { 'X-Forwarded-Method': 'GET' } }];

describe('steadyLoad', () => {
  it('reads a chunked answer to its last chunk (bare Hono answers an empty 200 so)', async () => {
    // Node sends the head and the closing chunk in separate writes when the body is left open.
    const s = await serve((res) => {
      res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
      res.write('ok');
      setTimeout(() => res.end(), 2);
    }, 5);
    const r = await steadyLoad(s.url, 200, 1, 0.2, REQUESTS, 16);
    expect(r.errors).toBe(0);
    expect(r.answered).toBe(r.sent);
    // An answer counted at its head would leave its last chunk to be taken for the next answer on
    // the connection, and the connection handed out twice: two requests in flight on one socket.
    expect(s.overlapped).toBe(0);
    expect(s.received).toBe(r.sent + Math.round(200 * 0.2));
    // Every answer takes the server's 5 ms + 2 ms at least: none may be counted sooner.
    expect(r.p50).toBeGreaterThanOrEqual(7);
  });

  it('reads a Content-Length body in either spelling of the field', async () => {
    for (const name of ['Content-Length', 'content-length']) {
      const s = await serve((res) => {
        res.writeHead(412, { [name]: '17', 'Content-Type': 'application/json' });
        res.end('{"code":"stale"} ');
      }, 3);
      const r = await steadyLoad(s.url, 200, 0.5, 0.1, REQUESTS, 16);
      expect(r.errors).toBe(0);
      expect(r.answered).toBe(r.sent);
      expect(s.overlapped).toBe(0);
      expect(r.p50).toBeGreaterThanOrEqual(3);
    }
  });

  it('keeps sending when the server closes connections', async () => {
    // Every answer closes its connection (as a server closing idle keep-alive sockets does, later)
    // and at most 4 sockets: a generator that counted closed sockets as open would have none left
    // after the fourth request and never finish.
    const s = await serve((res) => {
      res.setHeader('Connection', 'close');
      res.end();
    }, 1);
    const r = await steadyLoad(s.url, 20, 1, 0.2, REQUESTS, 4);
    expect(r.errors).toBe(0);
    expect(r.answered).toBe(r.sent);
    expect(s.received).toBe(r.sent + 4);
  });
});
