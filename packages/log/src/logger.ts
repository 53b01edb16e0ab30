import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * A safety net for credentials that code might one day log by mistake. Explicit paths only:
 * wildcard paths made redaction one of the worker's top costs per push in profiles.
 */
const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'push_token',
  'token',
  'secret',
  'private_key',
  'privateKey',
];

/** stdout's batching: lines collect up to this many bytes, or this long, before one write. */
const LOG_BATCH_BYTES = 8 * 1024;
const LOG_FLUSH_MS = 50;

/**
 * One root logger per process; modules take child loggers ({jobId, platform}).
 * Without an explicit destination, stdout is written asynchronously: a push never waits for a
 * log write (synchronous writes were a fifth of the worker's CPU under load). Lines collect
 * until LOG_BATCH_BYTES are waiting or LOG_FLUSH_MS have passed, whichever is first: one write
 * syscall per line was still 6% of the api's and the worker's CPU at 500 calls/s in profiles,
 * while a quiet process prints each line at most 50 ms late. Flushed on exit (a kill -9 loses
 * at most the last 50 ms of lines).
 */
export function createLogger(opts: { service: string; level: string; destination?: DestinationStream }): Logger {
  let destination = opts.destination;
  if (!destination) {
    const stdout = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS });
    process.on('exit', () => {
      try {
        stdout.flushSync();
      } catch {
        // nothing more can be done while the process exits
      }
    });
    destination = stdout;
  }
  return pino(
    {
      level: opts.level,
      base: { service: opts.service },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
