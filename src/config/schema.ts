// The config file's shape: the sections' zod schemas, strict at every level, the single home of defaults.
import { z } from 'zod';
import { authSchema } from './sections/auth.js';
import { conflictSchema } from './sections/conflict.js';
import { rateLimitSchema } from './sections/ratelimit.js';
import { serverSchema } from './sections/server.js';
import { storeSchema } from './sections/store.js';

export { ALGORITHMS, HMAC_ALGORITHMS, DEFAULT_ASYMMETRIC_ALGORITHMS, type Algorithm } from './sections/auth.js';
export { DEFAULT_TRUSTED_PROXIES } from './sections/server.js';
export { METHODS, parseCidr } from './primitives.js';

export const configSchema = z.strictObject({
  server: serverSchema.prefault({}),
  store: storeSchema.prefault({}),
  auth: authSchema,
  rateLimit: rateLimitSchema.prefault({}),
  conflict: conflictSchema.prefault({}),
});

/** The top-level sections, for "did you mean" hints on a misspelled one. */
export const SECTIONS = Object.keys(configSchema.shape);

/** The validated config, with every default filled in. */
export type Config = z.output<typeof configSchema>;
/** What a YAML file may say. */
export type ConfigInput = z.input<typeof configSchema>;

/** JSON Schema of the config file, for editors (`conflict-gate schema`, config.schema.json). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://github.com/conflict-gate/conflict-gate/config.schema.json',
    title: 'conflict-gate configuration',
  };
}
