// A JWKS endpoint the tests can rotate, take down (503) or hang (accept and never answer).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { JWK } from 'jose';

export interface JwksServer {
  url: string;
  /** Number of GETs received (answered, refused or left hanging). */
  hits(): number;
  /** Requests left hanging whose client has not gone away yet. */
  hanging(): number;
  setKeys(keys: JWK[]): void;
  /** While down, every fetch gets a 503. */
  setDown(down: boolean): void;
  /** While hanging, every fetch is accepted and never answered (until the client gives up or close()). */
  setHanging(hanging: boolean): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let current = keys;
  let down = false;
  let hang = false;
  let hits = 0;
  const held = new Set<IncomingMessage>();
  const server: Server = createServer((req, res) => {
    hits++;
    if (hang) {
      held.add(req);
      // The client aborting (timeout, close()) closes the socket: the request is no longer held.
      res.once('close', () => held.delete(req));
      return;
    }
    if (down) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: current }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    hanging: () => held.size,
    setKeys: (k) => (current = k),
    setDown: (d) => (down = d),
    setHanging: (h) => (hang = h),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
