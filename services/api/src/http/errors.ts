import type { ErrorRequestHandler, RequestHandler } from 'express';
import { isUnavailable } from '@veil/db/client';
import type { Logger } from '@veil/log/logger';

/** An error that already knows its HTTP answer; anything else is classified by errorHandler. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Redis did not take the jobs (down, refusing, or silent past its command timeout). */
export class QueueUnavailableError extends Error {
  readonly retry = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueueUnavailableError';
  }
}

export const badRequest = (message: string) => new HttpError(400, 'invalid_request', message);

/** body-parser marks its own failures with `type` and `status`; map them without reading messages. */
const BODY_PARSER_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  'entity.parse.failed': { status: 400, code: 'malformed_json', message: 'request body is not valid JSON' },
  'entity.too.large': { status: 413, code: 'payload_too_large', message: 'request body exceeds 16 KiB' },
  'charset.unsupported': { status: 415, code: 'unsupported_media_type', message: 'unsupported charset' },
  'encoding.unsupported': { status: 415, code: 'unsupported_media_type', message: 'unsupported content encoding' },
  'request.aborted': { status: 400, code: 'request_aborted', message: 'request aborted' },
  'request.size.invalid': { status: 400, code: 'invalid_request', message: 'request size did not match content length' },
};

function classify(err: unknown): { status: number; code: string; message: string } {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof QueueUnavailableError) return { status: 503, code: 'queue_unavailable', message: 'Redis is unavailable' };
  if (isUnavailable(err)) return { status: 503, code: 'database_unavailable', message: 'Postgres is unavailable' };
  const type = (err as { type?: unknown } | null)?.type;
  if (typeof type === 'string' && BODY_PARSER_ERRORS[type]) return BODY_PARSER_ERRORS[type];
  const status = (err as { status?: unknown } | null)?.status;
  // Any other client error raised by express internals keeps its 4xx rather than becoming a 500.
  if (typeof status === 'number' && status >= 400 && status < 500) return { status, code: 'bad_request', message: 'bad request' };
  return { status: 500, code: 'internal_error', message: 'internal error' };
}

export function sendError(res: Parameters<RequestHandler>[1], status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

/**
 * Until the migrations are in, the tables these routes read may not exist: answer as for any
 * Postgres outage rather than letting a "relation does not exist" become a 500.
 */
export function requireMigrated(isMigrated: () => boolean): RequestHandler {
  return (_req, _res, next) => {
    next(isMigrated() ? undefined : new HttpError(503, 'database_unavailable', 'Postgres is unavailable (migrations not applied yet)'));
  };
}

export const notFound: RequestHandler = (req, res) => {
  sendError(res, 404, 'not_found', `no route for ${req.method} ${req.path}`);
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
    sendError(res, status, code, message);
  };
}
