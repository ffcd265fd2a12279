// The Idempotency-Key rules' shell: which rule a write meets, and its fingerprint (hashes; the body when forwarded).
import { createHash } from 'node:crypto';
import type { CompiledIdempotencyRule } from '../../config/sections/conflict.js';
import type { RequestFacts } from '../../core/forwarded.js';
import { routeMatches } from '../../core/routes.js';
import { readBody, type BodyLimits, type BodyRead, type BodyStream } from './body.js';
import type { Fingerprint } from './decide.js';

/** 128 bits of SHA-256, base64url: enough to tell requests apart, small in the store. */
function h128(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('base64url').slice(0, 22);
}

export class IdempotencyRules {
  constructor(
    private readonly rules: readonly CompiledIdempotencyRule[],
    private readonly body: BodyLimits,
  ) {}

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** The first rule that matches the write, or undefined. */
  ruleFor(facts: RequestFacts): CompiledIdempotencyRule | undefined {
    for (const rule of this.rules) if (routeMatches(rule, facts) !== null) return rule;
    return undefined;
  }

  /**
   * The request's fingerprint. The body is read only here, so only for a write that meets a rule
   * and carries a well-formed key, and only when a stream is given (a live /auth call).
   */
  async fingerprint(facts: RequestFacts, stream: BodyStream | undefined): Promise<{ fingerprint: Fingerprint; body: BodyRead }> {
    const q = facts.uri.indexOf('?');
    const request = h128(`${facts.method}\n${facts.path}\n${q === -1 ? '' : facts.uri.slice(q + 1)}`);
    const body = stream ? await readBody(stream, this.body) : ({ kind: 'none' } as const);
    const cd = facts.contentDigest?.trim();
    const rd = facts.reprDigest?.trim();
    const digest = cd || rd ? h128(`cd:${cd ?? ''}\nrd:${rd ?? ''}`) : '';
    const meta = h128(`${facts.contentType?.trim() ?? ''}\n${facts.contentLength?.trim() ?? ''}`);
    return { fingerprint: { request, body: body.kind === 'hashed' ? body.sha256.toString('base64url').slice(0, 22) : '', digest, meta }, body };
  }
}
