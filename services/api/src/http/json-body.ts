import express, { type RequestHandler } from 'express';
import { HttpError } from './errors.ts';

/** Bodies over 16 KiB are a 413 payload_too_large, decided while reading, before anything is buffered past it. */
export const BODY_LIMIT_BYTES = 16 * 1024;

const parseJson = express.json({ limit: BODY_LIMIT_BYTES, strict: true, type: 'application/json' });

/**
 * The media type of a Content-Type header value, lower-cased, parameters dropped. Decided on the
 * header itself: `req.is()` answers null whenever a request has no body (no Content-Length, no
 * Transfer-Encoding), which made an empty JSON request look like "not JSON".
 */
export function mediaType(header: string | undefined): string | null {
  const type = header?.split(';', 1)[0]!.trim().toLowerCase();
  return type ? type : null;
}

/**
 * 415 unless the request says application/json (a text/plain body would otherwise reach the
 * handler as undefined and look like "missing fields"); then parse with the size limit.
 */
export const jsonBody: RequestHandler = (req, res, next) => {
  if (mediaType(req.headers['content-type']) !== 'application/json') {
    next(new HttpError('unsupported_media_type', 'Content-Type must be application/json'));
    return;
  }
  parseJson(req, res, (err?: unknown) => {
    // No body at all is the empty object, as `Content-Length: 0` already is: a 400 naming the fields.
    if (!err && req.body === undefined) req.body = {};
    next(err);
  });
};
