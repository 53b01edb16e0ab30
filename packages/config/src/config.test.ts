import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('applies the SPEC defaults to an empty environment', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8443);
    expect(c.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/postgres');
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.apns.keyPath).toBe('/etc/veil/apns_key.p8');
    expect(c.apns.useSandbox).toBe(true);
    expect(c.apns.host).toBe('api.sandbox.push.apple.com');
    expect(c.fcm.serviceAccountPath).toBe('/etc/veil/fcm_service_account.json');
    expect(c.fcm.apiUrl).toBe('https://fcm.googleapis.com');
    expect(c.pushTtlSeconds).toBe(30);
    expect(c.pushMaxAttempts).toBe(5);
    expect(c.pushQueue).toBe('veil-push');
    expect(c.metricsPort).toBe(9464);
    expect(c.logLevel).toBe('info');
    expect(c.callNotifyAllowedCidrs).toContain('127.0.0.0/8');
  });

  it('uses the production gateway when APNS_USE_SANDBOX=false and APNS_HOST wins over both', () => {
    expect(loadConfig({ APNS_USE_SANDBOX: 'false' }).apns.host).toBe('api.push.apple.com');
    expect(loadConfig({ APNS_USE_SANDBOX: 'false', APNS_HOST: '127.0.0.1:9443' }).apns.host).toBe('127.0.0.1:9443');
  });

  it('takes PUSH_QUEUE as the queue base and refuses a name Redis keys should not carry', () => {
    expect(loadConfig({ PUSH_QUEUE: 'veil-push-staging' }).pushQueue).toBe('veil-push-staging');
    expect(() => loadConfig({ PUSH_QUEUE: 'a b:c' })).toThrow(/PUSH_QUEUE/);
  });

  it('gives each APNs environment its own gateway; APNS_HOST overrides only the default one, unless that one has its own', () => {
    expect(loadConfig({}).apns).toMatchObject({ defaultEnvironment: 'sandbox', hosts: { sandbox: 'api.sandbox.push.apple.com', production: 'api.push.apple.com' } });
    expect(loadConfig({ APNS_HOST: 'proxy:1' }).apns.hosts).toEqual({ sandbox: 'proxy:1', production: 'api.push.apple.com' });
    expect(loadConfig({ APNS_USE_SANDBOX: 'false', APNS_HOST: 'proxy:1' }).apns).toMatchObject({
      defaultEnvironment: 'production', host: 'proxy:1', hosts: { sandbox: 'api.sandbox.push.apple.com', production: 'proxy:1' },
    });
    const both = loadConfig({ APNS_HOST: 'proxy:1', APNS_SANDBOX_HOST: 'sb:2', APNS_PRODUCTION_HOST: 'prod:3' }).apns;
    expect(both.hosts).toEqual({ sandbox: 'sb:2', production: 'prod:3' });
    expect(both.host).toBe('sb:2');
    expect(() => loadConfig({ APNS_PRODUCTION_HOST: 'https://x' })).toThrow(/APNS_PRODUCTION_HOST must be host\[:port\]/);
    expect(loadConfig({}).appsPath).toBe('/etc/veil/apps.json');
    expect(loadConfig({}).apns.apnsHostOnly).toBe(false);
    expect(loadConfig({ APNS_HOST: 'proxy:1' }).apns.apnsHostOnly).toBe(true);
    expect(loadConfig({ APNS_HOST: 'proxy:1', APNS_PRODUCTION_HOST: 'prod:3' }).apns.apnsHostOnly).toBe(false);
    expect(loadConfig({ APNS_USE_SANDBOX: 'false', APNS_HOST: 'proxy:1', APNS_PRODUCTION_HOST: 'prod:3' }).apns.apnsHostOnly).toBe(true);
  });

  it('reports every problem at once, one message each', () => {
    try {
      loadConfig({ PORT: 'abc', PUSH_TTL_SECONDS: '0', LOG_LEVEL: 'loud', CALL_NOTIFY_ALLOWED_CIDRS: '10.0.0.0/99' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).toHaveLength(4);
      expect(problems.join('\n')).toMatch(/PORT/);
      expect(problems.join('\n')).toMatch(/PUSH_TTL_SECONDS/);
      expect(problems.join('\n')).toMatch(/LOG_LEVEL/);
      expect(problems.join('\n')).toMatch(/CALL_NOTIFY_ALLOWED_CIDRS/);
    }
  });

  it('takes APNs ids as plain trimmed strings: a malformed one is the worker\'s "not configured", not a fatal error', () => {
    const c = loadConfig({ APNS_KEY_ID: ' short ', APNS_TEAM_ID: 'lower-case!', APNS_BUNDLE_ID: 'com example' });
    expect(c.apns.keyId).toBe('short');
    expect(c.apns.teamId).toBe('lower-case!');
    expect(c.apns.bundleId).toBe('com example');
    const unset = loadConfig({ APNS_KEY_ID: '  ', APNS_TEAM_ID: '' });
    expect(unset.apns.keyId).toBeNull();
    expect(unset.apns.teamId).toBeNull();
    expect(unset.apns.bundleId).toBeNull();
  });

  it('still stops on a malformed APNS_HOST, which is not a credential', () => {
    expect(() => loadConfig({ APNS_HOST: 'http://gateway/' })).toThrow(/APNS_HOST must be host\[:port\]/);
  });

  it('lower-cases SIP_DOMAIN and trims the FCM URL', () => {
    const c = loadConfig({ SIP_DOMAIN: 'Example.COM', FCM_API_URL: 'http://127.0.0.1:1234/' });
    expect(c.sipDomain).toBe('example.com');
    expect(c.fcm.apiUrl).toBe('http://127.0.0.1:1234');
  });

  it('refuses a JWT_SECRET shorter than 32 bytes, counting bytes not characters', () => {
    expect(() => loadConfig({ JWT_SECRET: 'dev-secret' })).toThrow(/JWT_SECRET must be at least 32 bytes/);
    expect(() => loadConfig({ JWT_SECRET: 'x'.repeat(31) })).toThrow(ConfigError);
    expect(loadConfig({ JWT_SECRET: 'x'.repeat(32) }).jwt.secret).toBe('x'.repeat(32));
    // 16 two-byte characters are 32 bytes.
    expect(loadConfig({ JWT_SECRET: 'é'.repeat(16) }).jwt.secret).toBe('é'.repeat(16));
  });

  it('takes JWT_JWKS_URL over https only', () => {
    expect(loadConfig({ JWT_JWKS_URL: 'https://id.example.com/.well-known/jwks.json' }).jwt.jwksUrl).toBe('https://id.example.com/.well-known/jwks.json');
    expect(loadConfig({}).jwt.jwksUrl).toBeNull();
    expect(() => loadConfig({ JWT_JWKS_URL: 'http://id.example.com/jwks.json' })).toThrow(/JWT_JWKS_URL must be an https URL/);
    expect(() => loadConfig({ JWT_JWKS_URL: 'not a url' })).toThrow(/JWT_JWKS_URL must be an https URL/);
  });

  it('defaults MAX_DEVICES_PER_USER to 10 and REGISTRATION_MAX_AGE_DAYS to 270, and checks their range', () => {
    const c = loadConfig({});
    expect(c.maxDevicesPerUser).toBe(10);
    expect(c.registrationMaxAgeDays).toBe(270);
    expect(loadConfig({ MAX_DEVICES_PER_USER: '3', REGISTRATION_MAX_AGE_DAYS: '30' })).toMatchObject({ maxDevicesPerUser: 3, registrationMaxAgeDays: 30 });
    expect(() => loadConfig({ MAX_DEVICES_PER_USER: '0' })).toThrow(/MAX_DEVICES_PER_USER must be at least 1/);
    expect(() => loadConfig({ REGISTRATION_MAX_AGE_DAYS: 'forever' })).toThrow(/REGISTRATION_MAX_AGE_DAYS must be a whole number/);
  });
});
