import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RequestHandler } from 'express';
import { errors as joseErrors, type JWTHeaderParameters } from 'jose';
import jwt, { type Algorithm, type JwtPayload } from 'jsonwebtoken';
import type { Config } from '@veil/config/config';
import { createLogger, type Logger } from '@veil/log/logger';
import { HttpError, type ErrorCode } from './errors.ts';
import { createJwksKeySource, JwksUnavailableError, type JwksKeySource } from './jwks.ts';

/** The verified caller of a client route: the JID its JWT speaks for (lower-case). */
export interface ClientIdentity {
  jid: string;
}

export interface JwtVerifier {
  configured: boolean;
  /**
   * Rejects with HttpError 401 for anything but a valid token (503 jwks_unavailable when the
   * identity provider's key set cannot be fetched); resolves to the claimed JID.
   */
  verify(token: string): Promise<ClientIdentity>;
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

export interface JwtVerifierOptions {
  /** For the JWKS fetch lines; without it they are not logged (tests that do not look). */
  log?: Logger;
  /** Least time between two JWKS fetches (default 30 s; tests shorten it). */
  jwksRefetchIntervalMs?: number;
  /** Bound on one JWKS fetch (default 1.5 s, so a dead provider still gets an answer within 2 s). */
  jwksTimeoutMs?: number;
  /** Age after which the set is refreshed in the background (default 10 min). */
  jwksMaxAgeMs?: number;
}

// Headers that tell a verifier where to find the key. Following them lets the token's author pick
// the key it is checked with, so a token carrying one is refused outright rather than ignored.
const KEY_SOURCE_HEADERS = ['jku', 'x5u', 'jwk', 'x5c'] as const;

const JWKS_ALGORITHMS = ['RS256', 'ES256'];

export function createJwtVerifier(
  jwtConfig: Config['jwt'],
  publicKey: { key: KeyObject; algorithm: Algorithm } | null,
  opts: JwtVerifierOptions = {},
): JwtVerifier {
  const secret = jwtConfig.secret;
  // A KeyObject made once: given the string, jsonwebtoken first tries createPublicKey on it for
  // every request and catches the failure, a top entry of register's CPU profile.
  const secretKey = secret !== null ? createSecretKey(Buffer.from(secret, 'utf8')) : null;
  const jwks = jwtConfig.jwksUrl
    ? createJwksKeySource({
        url: jwtConfig.jwksUrl,
        log: opts.log ?? createLogger({ service: 'api', level: 'silent', destination: { write: () => {} } }),
        ...(opts.jwksRefetchIntervalMs !== undefined ? { refetchIntervalMs: opts.jwksRefetchIntervalMs } : {}),
        ...(opts.jwksTimeoutMs !== undefined ? { timeoutMs: opts.jwksTimeoutMs } : {}),
        ...(opts.jwksMaxAgeMs !== undefined ? { maxAgeMs: opts.jwksMaxAgeMs } : {}),
      })
    : null;
  const configured = secret !== null || publicKey !== null || jwks !== null;
  const options = {
    ...(jwtConfig.issuer ? { issuer: jwtConfig.issuer } : {}),
    ...(jwtConfig.audience ? { audience: jwtConfig.audience } : {}),
  };

  /** jid (else sub), required; exp required (a token without one would be valid forever). */
  const identityOf = (payload: JwtPayload | string): ClientIdentity => {
    if (typeof payload !== 'object') throw unauthorized('invalid_token', 'token payload is not an object');
    if (typeof payload.exp !== 'number') throw unauthorized('invalid_token', 'token has no exp claim');
    const claim = payload.jid ?? payload.sub;
    if (typeof claim !== 'string' || claim === '') throw unauthorized('invalid_token', 'token has no jid or sub claim');
    return { jid: claim.toLowerCase() };
  };

  // jose hands out one CryptoKey per published key (it caches its imports); the KeyObject made
  // from it is cached beside it, so the hot path is the same jsonwebtoken call as for the other keys.
  const jwksKeyObjects = new WeakMap<object, KeyObject>();
  const keyFromJwks = async (source: JwksKeySource, header: JWTHeaderParameters): Promise<KeyObject> => {
    let found: Awaited<ReturnType<JwksKeySource>>;
    try {
      found = await source(header);
    } catch (err) {
      if (err instanceof JwksUnavailableError) throw new HttpError('jwks_unavailable', 'the identity provider keys are unavailable; try again shortly');
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw unauthorized('invalid_token', 'token kid is not in the identity provider key set');
      // A key of the wrong type, a private or malformed key, several keys for one kid.
      throw unauthorized('invalid_token', 'token kid names no usable key in the identity provider key set');
    }
    let key = jwksKeyObjects.get(found);
    if (!key) {
      key = KeyObject.from(found as Parameters<typeof KeyObject.from>[0]);
      jwksKeyObjects.set(found, key);
    }
    return key;
  };

  return {
    configured,
    async verify(token) {
      if (!configured) throw unauthorized('jwt_not_configured', 'client authentication is not configured on this server');
      const decoded = jwt.decode(token, { complete: true });
      if (!decoded || typeof decoded.header?.alg !== 'string') throw unauthorized('invalid_token', 'token is malformed');
      const header = decoded.header as unknown as Record<string, unknown>;
      for (const name of KEY_SOURCE_HEADERS) {
        if (name in header) throw unauthorized('invalid_token', `token header ${name} is not accepted`);
      }
      if ('kid' in header && typeof header.kid !== 'string') throw unauthorized('invalid_token', 'token kid is not a string');
      const alg = decoded.header.alg;
      // Tokens naming a key go to the provider's key set; RS256/ES256 without a kid to
      // JWT_PUBLIC_KEY_PATH. HS256 only ever to JWT_SECRET: a key set never verifies HMAC.
      // Choose the key by the header's alg, but only among the pinned algorithms (jose pins a
      // JWKS key to its type: RS256 only an RSA key, ES256 only a P-256 one).
      let key: KeyObject;
      if (jwks && typeof header.kid === 'string' && JWKS_ALGORITHMS.includes(alg)) key = await keyFromJwks(jwks, decoded.header as JWTHeaderParameters);
      else if (alg === 'HS256' && secretKey !== null) key = secretKey;
      else if (publicKey && alg === publicKey.algorithm) key = publicKey.key;
      else if (jwks && JWKS_ALGORITHMS.includes(alg)) throw unauthorized('invalid_token', 'token has no kid');
      else throw unauthorized('invalid_token', `token algorithm ${alg.slice(0, 16)} is not accepted`);

      let payload: JwtPayload | string;
      try {
        payload = jwt.verify(token, key, { ...options, algorithms: [alg as Algorithm] });
      } catch (err) {
        if (err instanceof jwt.TokenExpiredError) throw unauthorized('token_expired', 'token has expired');
        if (err instanceof jwt.NotBeforeError) throw unauthorized('invalid_token', 'token is not valid yet');
        throw unauthorized('invalid_token', 'token is invalid');
      }
      return identityOf(payload);
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
    verifier.verify(token).then(
      (identity) => {
        res.locals.identity = identity;
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

export function bearerToken(header: string | undefined): string | null {
  const match = header ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? null;
}
