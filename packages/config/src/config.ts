import { z } from 'zod';
import { DEFAULT_ALLOWED_CIDRS, parseCidr } from './cidr.ts';
import { redisTargetFrom, type RedisTarget } from './redis-target.ts';

/** Everything both services read from the environment, parsed once at start-up. */
export interface Config {
  port: number;
  databaseUrl: string;
  redisUrl: string;
  /** REDIS_URL alone, or with REDIS_SENTINELS / REDIS_CLUSTER_NODES: what createRedis connects to. */
  redis: RedisTarget;
  jwt: {
    secret: string | null;
    publicKeyPath: string | null;
    issuer: string | null;
    audience: string | null;
  };
  sipDomain: string | null;
  callNotifySecret: string | null;
  callNotifyAllowedCidrs: string[];
  apns: {
    keyPath: string;
    keyId: string | null;
    teamId: string | null;
    bundleId: string | null;
    useSandbox: boolean;
    /** host[:port] of the gateway actually used (APNS_HOST, else sandbox or production). */
    host: string;
  };
  fcm: {
    serviceAccountPath: string;
    apiUrl: string;
  };
  pushTtlSeconds: number;
  pushMaxAttempts: number;
  workerConcurrency: number;
  metricsPort: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export const APNS_PRODUCTION_HOST = 'api.push.apple.com';
export const APNS_SANDBOX_HOST = 'api.sandbox.push.apple.com';

/** Thrown by loadConfig with one message per problem, so an operator can fix them all at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

const optional = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? null : v.trim()));

const withDefault = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? fallback : v.trim()));

const integer = (name: string, fallback: number, min: number, max: number) =>
  withDefault(String(fallback)).pipe(
    z
      .string()
      .regex(/^\d+$/, `${name} must be a whole number`)
      .transform(Number)
      .pipe(z.number().min(min, `${name} must be at least ${min}`).max(max, `${name} must be at most ${max}`)),
  );

const bool = (name: string, fallback: boolean) =>
  withDefault(String(fallback)).pipe(
    z
      .string()
      .transform((v) => v.toLowerCase())
      .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no'], { message: `${name} must be true or false` }))
      .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  );

const url = (name: string, fallback: string, protocols: string[]) =>
  withDefault(fallback).refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `${name} must be a ${protocols.join(' or ')} URL`);

const schema = z.object({
  PORT: integer('PORT', 8443, 0, 65535),
  DATABASE_URL: url('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/postgres', ['postgres:', 'postgresql:']),
  REDIS_URL: url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
  JWT_SECRET: optional,
  JWT_PUBLIC_KEY_PATH: optional,
  JWT_ISSUER: optional,
  JWT_AUDIENCE: optional,
  SIP_DOMAIN: optional.transform((v) => v?.toLowerCase() ?? null),
  CALL_NOTIFY_SECRET: optional,
  CALL_NOTIFY_ALLOWED_CIDRS: optional
    .transform((v) => (v === null ? DEFAULT_ALLOWED_CIDRS : v.split(/[\s,]+/).filter(Boolean)))
    .superRefine((list, ctx) => {
      for (const cidr of list) {
        if (!parseCidr(cidr)) ctx.addIssue({ code: 'custom', message: `CALL_NOTIFY_ALLOWED_CIDRS: invalid CIDR "${cidr}"` });
      }
    }),
  APNS_KEY_PATH: withDefault('/etc/veil/apns_key.p8'),
  // Plain strings: their format is checked by the worker's APNs setup, where a bad value leaves
  // iOS "not configured" instead of stopping both services (SPEC).
  APNS_KEY_ID: optional,
  APNS_TEAM_ID: optional,
  APNS_BUNDLE_ID: optional,
  APNS_USE_SANDBOX: bool('APNS_USE_SANDBOX', true),
  APNS_HOST: optional.refine((v) => v === null || /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(v), 'APNS_HOST must be host[:port]'),
  FCM_SERVICE_ACCOUNT_PATH: withDefault('/etc/veil/fcm_service_account.json'),
  FCM_API_URL: url('FCM_API_URL', 'https://fcm.googleapis.com', ['https:', 'http:']).transform((v) => v.replace(/\/+$/, '')),
  PUSH_TTL_SECONDS: integer('PUSH_TTL_SECONDS', 30, 1, 3600),
  PUSH_MAX_ATTEMPTS: integer('PUSH_MAX_ATTEMPTS', 5, 1, 100),
  WORKER_CONCURRENCY: integer('WORKER_CONCURRENCY', 100, 1, 10000),
  METRICS_PORT: integer('METRICS_PORT', 9464, 0, 65535),
  REDIS_SENTINELS: optional,
  REDIS_SENTINEL_NAME: withDefault('mymaster'),
  REDIS_CLUSTER_NODES: optional,
  LOG_LEVEL: withDefault('info').pipe(
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      message: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
    }),
  ),
});

/** The only reader of process.env: services call loadConfig(process.env), tests pass their own object. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => issue.message));
  }
  const e = parsed.data;
  const redis = redisTargetFrom({ url: e.REDIS_URL, sentinels: e.REDIS_SENTINELS, sentinelName: e.REDIS_SENTINEL_NAME, clusterNodes: e.REDIS_CLUSTER_NODES });
  if (Array.isArray(redis)) throw new ConfigError(redis);
  return {
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redis,
    jwt: { secret: e.JWT_SECRET, publicKeyPath: e.JWT_PUBLIC_KEY_PATH, issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE },
    sipDomain: e.SIP_DOMAIN,
    callNotifySecret: e.CALL_NOTIFY_SECRET,
    callNotifyAllowedCidrs: e.CALL_NOTIFY_ALLOWED_CIDRS,
    apns: {
      keyPath: e.APNS_KEY_PATH,
      keyId: e.APNS_KEY_ID,
      teamId: e.APNS_TEAM_ID,
      bundleId: e.APNS_BUNDLE_ID,
      useSandbox: e.APNS_USE_SANDBOX,
      host: e.APNS_HOST ?? (e.APNS_USE_SANDBOX ? APNS_SANDBOX_HOST : APNS_PRODUCTION_HOST),
    },
    fcm: { serviceAccountPath: e.FCM_SERVICE_ACCOUNT_PATH, apiUrl: e.FCM_API_URL },
    pushTtlSeconds: e.PUSH_TTL_SECONDS,
    pushMaxAttempts: e.PUSH_MAX_ATTEMPTS,
    workerConcurrency: e.WORKER_CONCURRENCY,
    metricsPort: e.METRICS_PORT,
    logLevel: e.LOG_LEVEL,
  };
}

/** For a service's main: print one line per problem and exit, instead of a stack trace. */
export function loadConfigOrExit(env: Record<string, string | undefined>, service: string): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`${service}: invalid configuration: ${problem}\n`);
    process.exit(78); // EX_CONFIG
  }
}
