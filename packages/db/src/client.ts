import postgres, { type Sql } from 'postgres';

export interface DbOptions {
  url: string;
  /** A schema of its own (tests); production uses the database's default search_path. */
  schema?: string;
  max?: number;
  /** Give up on an unreachable Postgres quickly: a call is waiting. */
  connectTimeoutSeconds?: number;
  /** Client-side bound on every query, for a server that accepts connections but never answers. */
  queryTimeoutMs?: number;
}

export interface Db {
  sql: Sql;
  schema: string | null;
  queryTimeoutMs: number;
  close(): Promise<void>;
}

/** Postgres did not answer in time or refused the connection: callers map this to 503. */
export class DbUnavailableError extends Error {
  readonly retry = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DbUnavailableError';
  }
}

export function createDb(opts: DbOptions): Db {
  const schema = opts.schema ?? null;
  if (schema !== null && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name: ${schema}`);
  const queryTimeoutMs = opts.queryTimeoutMs ?? 1500;
  const sql = postgres(opts.url, {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutSeconds ?? 1,
    idle_timeout: 60,
    onnotice: () => {},
    connection: {
      application_name: 'veil-push',
      // The server-side twin of queryTimeoutMs: a slow query is cancelled rather than left running.
      statement_timeout: queryTimeoutMs,
      ...(schema ? { search_path: schema } : {}),
    },
  });
  return {
    sql,
    schema,
    queryTimeoutMs,
    close: () => sql.end({ timeout: 5 }),
  };
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P01', // admin_shutdown
  '57P03', // cannot_connect_now (starting up)
  '57014', // query_canceled (statement_timeout)
  '53300', // too_many_connections
]);

/** True for the failures that mean "Postgres is not answering", not "the query was wrong". */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof DbUnavailableError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNAVAILABLE_CODES.has(code);
}

/**
 * Runs a query with the client-side deadline. postgres.js has no query timeout of its own, and
 * a server that never answers would otherwise hold the request forever.
 */
export async function timed<T>(db: Db, query: PromiseLike<T> & { cancel?: () => unknown }): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        query.cancel?.();
      } catch {
        // cancelling is best effort; the caller already has its answer
      }
      reject(new DbUnavailableError(`Postgres did not answer within ${db.queryTimeoutMs} ms`));
    }, db.queryTimeoutMs);
  });
  try {
    return await Promise.race([query, deadline]);
  } catch (err) {
    if (isUnavailable(err) && !(err instanceof DbUnavailableError)) {
      throw new DbUnavailableError(`Postgres unavailable: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
