// A TCP relay in front of the shared Redis that keeps each chunk a client writes to it: what went out
// in one write(2) arrives as one chunk (loopback, small writes, and ioredis sets TCP_NODELAY).
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { SHARED_REDIS_URL } from './redis.js';

export class Relay {
  readonly writes: string[] = [];
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  port = 0;

  async start(): Promise<void> {
    const url = new URL(SHARED_REDIS_URL);
    this.server = createServer((client) => {
      const upstream = createConnection({ host: url.hostname, port: Number(url.port || 6379) });
      this.sockets.add(client).add(upstream);
      client.on('data', (chunk) => {
        this.writes.push(chunk.toString('latin1'));
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => client.write(chunk));
      const end = () => (client.destroy(), upstream.destroy());
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
