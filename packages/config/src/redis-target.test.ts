import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('Redis target', () => {
  it('is the one server of REDIS_URL when neither Sentinel nor Cluster is set', () => {
    expect(loadConfig({ REDIS_URL: 'redis://r:6380/2' }).redis).toEqual({ mode: 'single', url: 'redis://r:6380/2' });
  });

  it('finds the master through REDIS_SENTINELS, taking only password and db from REDIS_URL', () => {
    const c = loadConfig({ REDIS_SENTINELS: 's1:26379, s2:26380,[::1]:26381', REDIS_URL: 'redis://:p%40ss@ignored-host:1/3' });
    expect(c.redis).toEqual({
      mode: 'sentinel',
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: '::1', port: 26381 }],
      name: 'mymaster',
      username: null,
      password: 'p@ss',
      db: 3,
      tls: false,
    });
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'veil' }).redis).toMatchObject({ name: 'veil', db: 0, password: null });
  });

  it('connects to REDIS_CLUSTER_NODES with the password of REDIS_URL', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'n1:7000,n2:7001', REDIS_URL: 'rediss://user:pw@x' }).redis).toEqual({
      mode: 'cluster',
      nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }],
      username: 'user',
      password: 'pw',
      tls: true,
    });
  });

  it.each([
    [{ REDIS_SENTINELS: 's1' }, 'REDIS_SENTINELS: "s1" is not host:port'],
    [{ REDIS_SENTINELS: 's1:0' }, 'REDIS_SENTINELS: "s1:0" is not host:port'],
    [{ REDIS_CLUSTER_NODES: 'n1:70000' }, 'REDIS_CLUSTER_NODES: "n1:70000" is not host:port'],
    [{ REDIS_SENTINELS: 's1:1', REDIS_CLUSTER_NODES: 'n1:1' }, 'REDIS_SENTINELS and REDIS_CLUSTER_NODES are exclusive: set one of them'],
    [{ REDIS_CLUSTER_NODES: 'n1:1', REDIS_URL: 'redis://n1:1/4' }, 'REDIS_URL: Redis Cluster has no databases; drop the /<db> from the URL'],
    [{ REDIS_SENTINELS: 's1:1', REDIS_SENTINEL_NAME: 'my master' }, 'REDIS_SENTINEL_NAME must be a master name such as mymaster'],
  ])('refuses %o at start', (env, problem) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([problem]);
    }
  });

});
