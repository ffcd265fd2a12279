// A JWKS endpoint the tests can rotate and take down.
import { createServer, type Server } from 'node:http';
import type { JWK } from 'jose';

export interface JwksServer {
  url: string;
  /** Number of GETs served (including failures). */
  hits(): number;
  setKeys(keys: JWK[]): void;
  /** While down, every fetch gets a 503. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let current = keys;
  let down = false;
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
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
    setKeys: (k) => (current = k),
    setDown: (d) => (down = d),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
