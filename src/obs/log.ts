// pino logger: JSON lines with text levels; every string capped; a bounded stdout buffer that drops (and counts) lines.
import { pino, type Logger } from 'pino';

export type { Logger };

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Paths pino censors even if a caller passes them by mistake. */
export const REDACT_PATHS = [
  'authorization', 'cookie', 'token', 'secret', 'adminToken', 'password',
  '*.authorization', '*.Authorization', '*.cookie', '*.Cookie', '*.token', '*.secret', '*.adminToken', '*.password',
  'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
];

/**
 * The longest string a log line carries, per field and for the message. Paths, request ids and
 * reasons come from clients: without a cap a 15 000-character URI made every denial line 15 KB
 * (issue 13 item 3). A capped string keeps its start and says how much was cut.
 */
export const MAX_LOG_STRING = 256;

/**
 * What the process logger buffers for stdout at most. Past it a line is dropped and counted
 * (conflict_gate_log_lines_dropped_total) instead of buffered: a slow stdout (a terminal, a busy
 * log driver) must not grow the gate's memory without limit.
 */
export const LOG_BUFFER_BYTES = 4 * 1024 * 1024;

export function isLogLevel(level: string): boolean {
  return LEVELS.includes(level);
}

/** `s` cut to `max` characters, with what was cut said at the end. */
export function capString(s: string, max = MAX_LOG_STRING): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[+${s.length - max} chars]`;
}

/** A copy of a log object with every string (to `depth` levels of nesting) capped. */
function capObject(o: Record<string, unknown>, depth = 3): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in o) {
    const v = o[k];
    let capped: unknown = v;
    if (typeof v === 'string') {
      if (v.length > MAX_LOG_STRING) capped = capString(v);
    } else if (depth > 0 && v !== null && typeof v === 'object' && !(v instanceof Error)) {
      capped = Array.isArray(v) ? v.slice(0, 32).map((x) => (typeof x === 'string' ? capString(x) : x)) : capObject(v as Record<string, unknown>, depth - 1);
    }
    if (capped !== v) (out ??= { ...o })[k] = capped;
  }
  return out ?? o;
}

export interface ProcessLogger {
  log: Logger;
  /** Writes what is buffered, synchronously (on exit). */
  flushLogs: () => void;
  /** Lines dropped so far because the stdout buffer was full. */
  dropped: () => number;
  /** Writes what is buffered, then closes the destination (tests; the process's stdout is left to exit). */
  close: () => Promise<void>;
}

const dropCounts = new WeakMap<Logger, () => number>();

/** Lines a process logger dropped (0 for any other logger). */
export function droppedLines(log: Logger): number {
  return dropCounts.get(log)?.() ?? 0;
}

/**
 * The process logger: stdout through an asynchronous, buffered SonicBoom, so a burst of denials
 * does not pay one synchronous write(2) per line on the request path. The buffer is flushed every
 * 250 ms and synchronously on exit (`flushLogs`); it never holds more than `maxBufferBytes`: a line
 * that would not fit is dropped and counted.
 */
export function createProcessLogger(level: string, opts: { fd?: number; maxBufferBytes?: number } = {}): ProcessLogger {
  const dest = pino.destination({ dest: opts.fd ?? 1, sync: false, minLength: 4096, maxLength: opts.maxBufferBytes ?? LOG_BUFFER_BYTES });
  let dropped = 0;
  // pino writes one line per write(): one dropped write is one dropped line.
  dest.on('drop', () => {
    dropped++;
  });
  const timer = setInterval(() => dest.flush(), 250);
  timer.unref();
  const log = createLogger(level, dest);
  const count = () => dropped;
  dropCounts.set(log, count);
  return {
    log,
    dropped: count,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        dest.once('close', () => resolve());
        dest.end();
      }),
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
      serializers: { err: (e: unknown) => (e instanceof Error ? { type: e.name, message: capString(e.message), code: (e as { code?: unknown }).code } : { message: capString(String(e)) }) },
      formatters: {
        // "level":"info", not 30: log pipelines and people read the word.
        level: (label) => ({ level: label }),
        log: (o) => capObject(o),
      },
      hooks: {
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) {
            const a = args[i] as unknown;
            if (typeof a === 'string' && a.length > MAX_LOG_STRING) (args as unknown[])[i] = capString(a);
          }
          return method.apply(this, args);
        },
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
