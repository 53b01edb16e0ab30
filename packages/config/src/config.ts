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
    /** https:// JWKS of the apps' identity provider (RS256/ES256 tokens chosen by kid). */
    jwksUrl: string | null;
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
    /** Where a registration without its own apns_environment goes (APNS_USE_SANDBOX). */
    defaultEnvironment: ApnsEnvironment;
    /** host[:port] of each gateway: APNS_SANDBOX_HOST / APNS_PRODUCTION_HOST, else APNS_HOST for the default one, else Apple's. */
    hosts: Record<ApnsEnvironment, string>;
    /**
     * APNS_HOST is set and the other environment has no variable of its own: APNs traffic is
     * pinned to one override (round 1's single-gateway set-up: a test gateway, one egress proxy).
     */
    apnsHostOnly: boolean;
  };
  /** PUSH_APPS_PATH: the apps file with per-app credentials (missing file = no extra apps). */
  appsPath: string;
  fcm: {
    serviceAccountPath: string;
    apiUrl: string;
  };
  /** Base name of the push queues (PUSH_QUEUE); each platform gets `${pushQueue}-${platform}`. */
  pushQueue: string;
  pushTtlSeconds: number;
  pushMaxAttempts: number;
  /** iOS missed-call alerts (worker): the alert's title, and how long Apple keeps it for an offline phone. */
  missedCall: { title: string; ttlSeconds: number };
  workerConcurrency: number;
  metricsPort: number;
  /** Registering one more device evicts the JID's least recently updated registration. */
  maxDevicesPerUser: number;
  /** Registrations not updated for longer are deleted by the worker's daily clean-up. */
  registrationMaxAgeDays: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export const APNS_PRODUCTION_HOST = 'api.push.apple.com';
export const APNS_SANDBOX_HOST = 'api.sandbox.push.apple.com';

export type ApnsEnvironment = 'sandbox' | 'production';
export const APNS_ENVIRONMENTS: readonly ApnsEnvironment[] = ['sandbox', 'production'];

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

const hostPort = (name: string) =>
  optional.refine((v) => v === null || /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(v), `${name} must be host[:port]`);

const schema = z.object({
  PORT: integer('PORT', 8443, 0, 65535),
  DATABASE_URL: url('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/postgres', ['postgres:', 'postgresql:']),
  REDIS_URL: url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
  // HS256 with a short secret can be brute-forced offline from one captured token (RFC 7518
  // §3.2 asks for a key at least as long as the hash: 32 bytes).
  JWT_SECRET: optional.refine((v) => v === null || Buffer.byteLength(v, 'utf8') >= 32, 'JWT_SECRET must be at least 32 bytes (e.g. openssl rand -base64 32)'),
  JWT_PUBLIC_KEY_PATH: optional,
  JWT_ISSUER: optional,
  JWT_AUDIENCE: optional,
  // https only: the key set decides who may register devices, so it must not be swappable in transit.
  JWT_JWKS_URL: optional.refine((v) => {
    if (v === null) return true;
    try {
      return new URL(v).protocol === 'https:';
    } catch {
      return false;
    }
  }, 'JWT_JWKS_URL must be an https URL'),
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
  // iOS "not configured" instead of stopping both services.
  APNS_KEY_ID: optional,
  APNS_TEAM_ID: optional,
  APNS_BUNDLE_ID: optional,
  APNS_USE_SANDBOX: bool('APNS_USE_SANDBOX', true),
  APNS_HOST: hostPort('APNS_HOST'),
  APNS_SANDBOX_HOST: hostPort('APNS_SANDBOX_HOST'),
  APNS_PRODUCTION_HOST: hostPort('APNS_PRODUCTION_HOST'),
  PUSH_APPS_PATH: withDefault('/etc/veil/apps.json'),
  FCM_SERVICE_ACCOUNT_PATH: withDefault('/etc/veil/fcm_service_account.json'),
  FCM_API_URL: url('FCM_API_URL', 'https://fcm.googleapis.com', ['https:', 'http:']).transform((v) => v.replace(/\/+$/, '')),
  // Both services must agree on it; a test or a second deployment on one Redis picks its own.
  PUSH_QUEUE: withDefault('veil-push').refine((v) => /^[A-Za-z0-9._-]{1,100}$/.test(v), 'PUSH_QUEUE must be 1-100 letters, digits, dots, dashes or underscores'),
  PUSH_TTL_SECONDS: integer('PUSH_TTL_SECONDS', 30, 1, 3600),
  PUSH_MAX_ATTEMPTS: integer('PUSH_MAX_ATTEMPTS', 5, 1, 100),
  MISSED_CALL_TITLE: withDefault('Missed call').refine((v) => v.length <= 128, 'MISSED_CALL_TITLE must be at most 128 characters'),
  // Apple keeps a push for at most about a month; 0 would mean "deliver now or never".
  MISSED_CALL_TTL_SECONDS: integer('MISSED_CALL_TTL_SECONDS', 86400, 0, 30 * 86400),
  WORKER_CONCURRENCY: integer('WORKER_CONCURRENCY', 100, 1, 10000),
  METRICS_PORT: integer('METRICS_PORT', 9464, 0, 65535),
  MAX_DEVICES_PER_USER: integer('MAX_DEVICES_PER_USER', 10, 1, 1000),
  REGISTRATION_MAX_AGE_DAYS: integer('REGISTRATION_MAX_AGE_DAYS', 270, 1, 36500),
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
  const defaultEnvironment: ApnsEnvironment = e.APNS_USE_SANDBOX ? 'sandbox' : 'production';
  // APNS_HOST keeps its round-1 meaning (the default environment's gateway) unless that
  // environment has its own override.
  const hosts: Record<ApnsEnvironment, string> = {
    sandbox: e.APNS_SANDBOX_HOST ?? (defaultEnvironment === 'sandbox' ? e.APNS_HOST : null) ?? APNS_SANDBOX_HOST,
    production: e.APNS_PRODUCTION_HOST ?? (defaultEnvironment === 'production' ? e.APNS_HOST : null) ?? APNS_PRODUCTION_HOST,
  };
  const redis = redisTargetFrom({ url: e.REDIS_URL, sentinels: e.REDIS_SENTINELS, sentinelName: e.REDIS_SENTINEL_NAME, clusterNodes: e.REDIS_CLUSTER_NODES });
  if (Array.isArray(redis)) throw new ConfigError(redis);
  return {
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redis,
    jwt: { secret: e.JWT_SECRET, publicKeyPath: e.JWT_PUBLIC_KEY_PATH, issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE, jwksUrl: e.JWT_JWKS_URL },
    sipDomain: e.SIP_DOMAIN,
    callNotifySecret: e.CALL_NOTIFY_SECRET,
    callNotifyAllowedCidrs: e.CALL_NOTIFY_ALLOWED_CIDRS,
    apns: {
      keyPath: e.APNS_KEY_PATH,
      keyId: e.APNS_KEY_ID,
      teamId: e.APNS_TEAM_ID,
      bundleId: e.APNS_BUNDLE_ID,
      useSandbox: e.APNS_USE_SANDBOX,
      host: hosts[defaultEnvironment],
      defaultEnvironment,
      hosts,
      apnsHostOnly: e.APNS_HOST !== null && (defaultEnvironment === 'sandbox' ? e.APNS_PRODUCTION_HOST : e.APNS_SANDBOX_HOST) === null,
    },
    appsPath: e.PUSH_APPS_PATH,
    fcm: { serviceAccountPath: e.FCM_SERVICE_ACCOUNT_PATH, apiUrl: e.FCM_API_URL },
    pushQueue: e.PUSH_QUEUE,
    pushTtlSeconds: e.PUSH_TTL_SECONDS,
    pushMaxAttempts: e.PUSH_MAX_ATTEMPTS,
    missedCall: { title: e.MISSED_CALL_TITLE, ttlSeconds: e.MISSED_CALL_TTL_SECONDS },
    workerConcurrency: e.WORKER_CONCURRENCY,
    metricsPort: e.METRICS_PORT,
    maxDevicesPerUser: e.MAX_DEVICES_PER_USER,
    registrationMaxAgeDays: e.REGISTRATION_MAX_AGE_DAYS,
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
