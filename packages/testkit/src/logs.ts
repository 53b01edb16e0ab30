import { createLogger, type Logger } from '@veil/log/logger';

export interface CapturedLogs {
  /** The service's root logger, writing here instead of stdout. */
  log: Logger;
  /** Every line written so far, parsed. */
  lines(): Record<string, unknown>[];
  /** The raw text, to assert what never appears in it (tokens, secrets). */
  raw(): string;
  /** Lines whose message contains `msg`. */
  withMsg(msg: string): Record<string, unknown>[];
}

/** The production logger (same redaction, same format) writing into memory for a test to read. */
export function captureLogs(service: string, level = 'info'): CapturedLogs {
  const raw: string[] = [];
  const parsed: Record<string, unknown>[] = [];
  const log = createLogger({
    service,
    level,
    destination: {
      write: (line: string) => {
        raw.push(line);
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  return {
    log,
    lines: () => parsed,
    raw: () => raw.join(''),
    withMsg: (msg) => parsed.filter((l) => typeof l.msg === 'string' && l.msg.includes(msg)),
  };
}
