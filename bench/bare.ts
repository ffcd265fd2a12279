// The baseline: a bare Hono app on @hono/node-server answering 200 to /auth, the floor the gate is measured against.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.all('/auth', (c) => c.body(null, 200));

const port = Number(process.env.PORT ?? 8181);
const server = serve({ fetch: app.fetch, port, hostname: process.env.HOST ?? '127.0.0.1' });
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
});
