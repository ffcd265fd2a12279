// `store`: where the version cache, leases, limits and replays live (Redis, or memory for one replica).
import { z } from 'zod';
import { durationMs } from '../../core/durations.js';
import { duration } from '../primitives.js';

export const storeSchema = z.strictObject({
  /** `redis://…`, `rediss://…` or `memory`. */
  url: z.string().regex(/^(memory|rediss?:\/\/.+)$/, { message: 'expected "memory" or a redis:// URL' }).default('redis://127.0.0.1:6379/0'),
  keyPrefix: z.string().default('cg:'),
  /** Upper bound on one Redis command; past it the gate applies its fail mode. */
  commandTimeout: duration().default('250ms'),
  connectTimeout: duration().default('2s'),
});

export type StoreConfig = z.output<typeof storeSchema>;

export interface CompiledStore {
  url: string;
  keyPrefix: string;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

export function compileStore(s: StoreConfig): CompiledStore {
  return {
    url: s.url,
    keyPrefix: s.keyPrefix,
    commandTimeoutMs: durationMs(s.commandTimeout),
    connectTimeoutMs: durationMs(s.connectTimeout),
  };
}
