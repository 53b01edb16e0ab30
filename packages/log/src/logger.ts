import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * One root logger per process; modules take child loggers ({jobId, platform}).
 * Headers and anything named like a credential are redacted wherever they appear.
 */
export function createLogger(opts: { service: string; level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: opts.service },
      redact: {
        paths: [
          'authorization',
          '*.authorization',
          'headers.authorization',
          'req.headers.authorization',
          'push_token',
          '*.push_token',
          'token',
          '*.token',
          'secret',
          '*.secret',
          'privateKey',
          '*.privateKey',
          'private_key',
          '*.private_key',
        ],
        censor: '[redacted]',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
