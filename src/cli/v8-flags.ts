// V8 flags the serving process sets for itself, before the server's modules load.
import { setFlagsFromString } from 'node:v8';

/**
 * Set by `serve` itself, so that the image's ENTRYPOINT, `npm start` and `node dist/main.js` all run
 * with them (NODE_OPTIONS does not take V8 flags).
 *
 * `--no-allocation-site-pretenuring`: once V8 has seen enough objects from one allocation site
 * survive a scavenge, it allocates that site's later objects straight in the old generation. The
 * Redis batches trip it (a batch is in flight across many requests), and an object allocated old
 * keeps what it points to (promises, replies, closures of young requests) alive through every
 * scavenge until the next full GC. In-process (`npm run bench:cpu -- --promoted`, or `node
 * --trace-gc-nvp` on it): ~480 KB promoted per scavenge and scavenges of ~2.2 ms with it, ~3 KB and
 * ~1.2 ms without; a bare loop of merged increments through the batcher, 1.9 MB against none. What
 * lives long is promoted by the scavenger as before.
 */
export const V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

export function applyV8Flags(): void {
  for (const flag of V8_FLAGS) setFlagsFromString(flag);
}
