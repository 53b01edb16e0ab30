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

/**
 * One root logger per process; modules take child loggers ({jobId, platform}).
 * Without an explicit destination, stdout is written asynchronously: a push never waits for a
 * log write (synchronous writes were a fifth of the worker's CPU under load), and lines that
 * arrive while a write is under way go out together in the next one, so the syscalls batch
 * themselves under load while a quiet process still prints each line at once. Flushed on exit.
 */
export function createLogger(opts: { service: string; level: string; destination?: DestinationStream }): Logger {
  let destination = opts.destination;
  if (!destination) {
    const stdout = pino.destination({ dest: 1, sync: false });
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
