import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RequestHandler } from 'express';
import jwt, { type Algorithm, type JwtPayload } from 'jsonwebtoken';
import type { Config } from '@veil/config/config';
import { HttpError, type ErrorCode } from './errors.ts';

/** The verified caller of a client route: the JID its JWT speaks for (lower-case). */
export interface ClientIdentity {
  jid: string;
}

export interface JwtVerifier {
  configured: boolean;
  /** Throws HttpError 401 for anything but a valid token; returns the claimed JID. */
  verify(token: string): ClientIdentity;
}

/** Thrown at start-up (and only then) when JWT_PUBLIC_KEY_PATH cannot be used. */
export class JwtKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwtKeyError';
  }
}

/**
 * Loads the PEM public key and decides the single algorithm it may verify. Pinning by key type is
 * what stops algorithm confusion: an RSA key never verifies ES256, and no public key ever
 * verifies HS256 (which would let anyone holding the public key mint tokens).
 */
export function loadJwtPublicKey(path: string): { key: KeyObject; algorithm: Algorithm } {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new JwtKeyError(`JWT_PUBLIC_KEY_PATH ${path} is unreadable (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // A private key here would still "work", but it means a secret was deployed where it should not be.
  if (!/-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE)-----/.test(pem) || /PRIVATE KEY/.test(pem)) {
    throw new JwtKeyError(`JWT_PUBLIC_KEY_PATH ${path} is not a PEM public key`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new JwtKeyError(`JWT_PUBLIC_KEY_PATH ${path} is not a PEM public key`);
  }
  if (key.asymmetricKeyType === 'rsa') return { key, algorithm: 'RS256' };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { key, algorithm: 'ES256' };
  throw new JwtKeyError(`JWT_PUBLIC_KEY_PATH ${path} must hold an RSA or P-256 EC public key`);
}

const unauthorized = (code: ErrorCode, message: string) => new HttpError(code, message);

export function createJwtVerifier(
  jwtConfig: Config['jwt'],
  publicKey: { key: KeyObject; algorithm: Algorithm } | null,
): JwtVerifier {
  const secret = jwtConfig.secret;
  // A KeyObject made once: given the string, jsonwebtoken first tries createPublicKey on it for
  // every request and catches the failure, a top entry of register's CPU profile.
  const secretKey = secret !== null ? createSecretKey(Buffer.from(secret, 'utf8')) : null;
  const configured = secret !== null || publicKey !== null;
  const options = {
    ...(jwtConfig.issuer ? { issuer: jwtConfig.issuer } : {}),
    ...(jwtConfig.audience ? { audience: jwtConfig.audience } : {}),
  };

  return {
    configured,
    verify(token) {
      if (!configured) throw unauthorized('jwt_not_configured', 'client authentication is not configured on this server');
      const decoded = jwt.decode(token, { complete: true });
      if (!decoded || typeof decoded.header?.alg !== 'string') throw unauthorized('invalid_token', 'token is malformed');
      const alg = decoded.header.alg;
      // Choose the key by the header's alg, but only among the pinned algorithms.
      let key: KeyObject;
      if (alg === 'HS256' && secretKey !== null) key = secretKey;
      else if (publicKey && alg === publicKey.algorithm) key = publicKey.key;
      else throw unauthorized('invalid_token', `token algorithm ${alg.slice(0, 16)} is not accepted`);

      let payload: JwtPayload | string;
      try {
        payload = jwt.verify(token, key, { ...options, algorithms: [alg as Algorithm] });
      } catch (err) {
        if (err instanceof jwt.TokenExpiredError) throw unauthorized('token_expired', 'token has expired');
        if (err instanceof jwt.NotBeforeError) throw unauthorized('invalid_token', 'token is not valid yet');
        throw unauthorized('invalid_token', 'token is invalid');
      }
      const claim = typeof payload === 'object' ? (payload.jid ?? payload.sub) : undefined;
      if (typeof claim !== 'string' || claim === '') throw unauthorized('invalid_token', 'token has no jid or sub claim');
      return { jid: claim.toLowerCase() };
    },
  };
}

/** `Authorization: Bearer <jwt>` -> res.locals.identity. */
export function requireClientJwt(verifier: JwtVerifier): RequestHandler {
  return (req, res, next) => {
    const token = bearerToken(req.headers.authorization);
    if (token === null) {
      next(verifier.configured ? unauthorized('missing_token', 'Authorization: Bearer <jwt> is required') : unauthorized('jwt_not_configured', 'client authentication is not configured on this server'));
      return;
    }
    try {
      res.locals.identity = verifier.verify(token);
      next();
    } catch (err) {
      next(err);
    }
  };
}

export function bearerToken(header: string | undefined): string | null {
  const match = header ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? null;
}
