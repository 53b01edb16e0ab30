import express, { type RequestHandler } from 'express';
import { HttpError } from './errors.ts';

/** SPEC: bodies over 16 KiB are a 413, decided while reading, before anything is buffered past it. */
export const BODY_LIMIT_BYTES = 16 * 1024;

const parseJson = express.json({ limit: BODY_LIMIT_BYTES, strict: true, type: 'application/json' });

/**
 * 415 unless the request says application/json (a text/plain body would otherwise reach the
 * handler as undefined and look like "missing fields"); then parse with the size limit.
 */
export const jsonBody: RequestHandler = (req, res, next) => {
  if (!req.is('application/json')) {
    next(new HttpError(415, 'unsupported_media_type', 'Content-Type must be application/json'));
    return;
  }
  parseJson(req, res, next);
};
