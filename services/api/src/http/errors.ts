import type { ErrorRequestHandler, RequestHandler } from 'express';
import { isUnavailable } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';
import { QueueUnavailableError } from '@veil/queue/producer';

/**
 * Every error code the API answers with, and its one HTTP status. A new failure adds a row here;
 * nothing else in the API picks a status for an error.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  malformed_json: 400,
  request_aborted: 400,
  bad_request: 400,
  unauthorized: 401,
  missing_token: 401,
  invalid_token: 401,
  token_expired: 401,
  jwt_not_configured: 401,
  forbidden: 403,
  forbidden_source: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal_error: 500,
  database_unavailable: 503,
  queue_unavailable: 503,
  jwks_unavailable: 503,
  not_ready: 503,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** An error that already knows its answer; anything else is classified by the error handler. */
export class HttpError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
    this.status = ERROR_STATUS[code];
  }
}

export const badRequest = (message: string) => new HttpError('invalid_request', message);

/** body-parser marks its own failures with `type`; map them without reading messages. */
const BODY_PARSER_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  'entity.parse.failed': { code: 'malformed_json', message: 'request body is not valid JSON' },
  'entity.too.large': { code: 'payload_too_large', message: 'request body exceeds 16 KiB' },
  'charset.unsupported': { code: 'unsupported_media_type', message: 'unsupported charset' },
  'encoding.unsupported': { code: 'unsupported_media_type', message: 'unsupported content encoding' },
  'request.aborted': { code: 'request_aborted', message: 'request aborted' },
  'request.size.invalid': { code: 'invalid_request', message: 'request size did not match content length' },
};

function classify(err: unknown): { status: number; code: ErrorCode | 'bad_request'; message: string } {
  const known = (code: ErrorCode, message: string) => ({ status: ERROR_STATUS[code], code, message });
  if (err instanceof HttpError) return known(err.code, err.message);
  if (err instanceof QueueUnavailableError) return known('queue_unavailable', 'Redis is unavailable');
  if (isUnavailable(err)) return known('database_unavailable', 'Postgres is unavailable');
  const type = (err as { type?: unknown } | null)?.type;
  const parser = typeof type === 'string' ? BODY_PARSER_ERRORS[type] : undefined;
  if (parser) return known(parser.code, parser.message);
  const status = (err as { status?: unknown } | null)?.status;
  // Any other client error raised by express internals keeps its 4xx rather than becoming a 500.
  if (typeof status === 'number' && status >= 400 && status < 500) return { status, code: 'bad_request', message: 'bad request' };
  return known('internal_error', 'internal error');
}

export function sendError(res: Parameters<RequestHandler>[1], code: ErrorCode, message: string, status: number = ERROR_STATUS[code]): void {
  res.status(status).json({ error: { code, message } });
}

/**
 * Until the migrations are in, the tables these routes read may not exist: answer as for any
 * Postgres outage rather than letting a "relation does not exist" become a 500.
 */
export function requireMigrated(isMigrated: () => boolean): RequestHandler {
  return (_req, _res, next) => {
    next(isMigrated() ? undefined : new HttpError('database_unavailable', 'Postgres is unavailable (migrations not applied yet)'));
  };
}

export const notFound: RequestHandler = (req, res) => {
  sendError(res, 'not_found', `no route for ${req.method} ${req.path}`);
};

/** The one error handler: every failure leaves as {"error": {"code", "message"}}. */
export function createErrorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const { status, code, message } = classify(err);
    if (status >= 500) {
      // Name, code and message only: a driver error can carry query parameters (tokens) in its fields.
      const e = err as { name?: unknown; code?: unknown; message?: unknown };
      log.error({ error: { name: e?.name, code: e?.code, message: e?.message }, method: req.method, path: req.path, code }, 'Request failed');
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    sendError(res, code, message, status);
  };
}
