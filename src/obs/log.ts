// pino logger: JSON lines; credentials redacted wherever they could appear; no stacks in responses.
import { pino, type Logger } from 'pino';

export type { Logger };

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Paths pino censors even if a caller passes them by mistake. */
export const REDACT_PATHS = [
  'authorization', 'cookie', 'token', 'secret', 'adminToken',
  '*.authorization', '*.Authorization', '*.cookie', '*.Cookie', '*.token', '*.secret', '*.adminToken',
  'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
];

export function isLogLevel(level: string): boolean {
  return LEVELS.includes(level);
}

/**
 * The process logger: stdout through an asynchronous, buffered SonicBoom, so a burst of denials
 * does not pay one synchronous write(2) per line on the request path. The buffer is flushed every
 * 250 ms and synchronously on exit (`flushLogs`).
 */
export function createProcessLogger(level: string): { log: Logger; flushLogs: () => void } {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const timer = setInterval(() => dest.flush(), 250);
  timer.unref();
  return {
    log: createLogger(level, dest),
    flushLogs: () => {
      try {
        dest.flushSync();
      } catch {
        // nothing buffered, or stdout already closed: nothing to save
      }
    },
  };
}

export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: isLogLevel(level) ? level : 'info',
      base: { service: 'conflict-gate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Errors are logged by message and code only: a stack trace is not an operator's business.
      serializers: { err: (e: unknown) => (e instanceof Error ? { type: e.name, message: e.message, code: (e as { code?: unknown }).code } : { message: String(e) }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
