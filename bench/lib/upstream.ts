// What the simulations' toy upstreams share.
import type { ServerResponse } from 'node:http';

/** A JSON answer with its length (no chunked encoding) and any extra headers. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
