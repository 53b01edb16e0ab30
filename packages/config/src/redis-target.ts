/**
 * Where the services find Redis: one server (REDIS_URL), a master found through Sentinel
 * (REDIS_SENTINELS + REDIS_SENTINEL_NAME) or a Redis Cluster (REDIS_CLUSTER_NODES). Parsed once
 * with the rest of the configuration; packages/queue turns it into a connection.
 */
export interface RedisNode {
  host: string;
  port: number;
}

export type RedisTarget =
  | { mode: 'single'; url: string }
  | {
      mode: 'sentinel';
      sentinels: RedisNode[];
      /** The master's name in the sentinels' configuration. */
      name: string;
      /** From REDIS_URL: the data nodes' credentials and database; sentinels are asked without them. */
      username: string | null;
      password: string | null;
      db: number;
      tls: boolean;
    }
  | { mode: 'cluster'; nodes: RedisNode[]; username: string | null; password: string | null; tls: boolean };

/** `host:port,host:port` (IPv6 as `[addr]:port`), or the problem with it. */
export function parseRedisNodes(name: string, value: string): RedisNode[] | string {
  const items = value.split(/[\s,]+/).filter(Boolean);
  if (items.length === 0) return `${name} must list at least one host:port`;
  const nodes: RedisNode[] = [];
  for (const item of items) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(item);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) return `${name}: "${item}" is not host:port`;
    nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return nodes;
}

/**
 * The target from the already-validated variables, or one problem per bad variable. REDIS_URL
 * still matters in the other modes: it carries the password (and for Sentinel the db index),
 * so one secret serves every mode.
 */
export function redisTargetFrom(env: {
  url: string;
  sentinels: string | null;
  sentinelName: string;
  clusterNodes: string | null;
}): RedisTarget | string[] {
  if (env.sentinels !== null && env.clusterNodes !== null) {
    return ['REDIS_SENTINELS and REDIS_CLUSTER_NODES are exclusive: set one of them'];
  }
  if (env.sentinels === null && env.clusterNodes === null) return { mode: 'single', url: env.url };
  const u = new URL(env.url);
  const username = u.username ? decodeURIComponent(u.username) : null;
  const password = u.password ? decodeURIComponent(u.password) : null;
  const tls = u.protocol === 'rediss:';
  if (env.sentinels !== null) {
    const sentinels = parseRedisNodes('REDIS_SENTINELS', env.sentinels);
    const dbText = u.pathname.replace(/^\//, '');
    const problems = typeof sentinels === 'string' ? [sentinels] : [];
    if (dbText !== '' && !/^\d{1,2}$/.test(dbText)) problems.push('REDIS_URL: the database must be a number');
    if (!/^[A-Za-z0-9._-]+$/.test(env.sentinelName)) problems.push('REDIS_SENTINEL_NAME must be a master name such as mymaster');
    if (problems.length > 0 || typeof sentinels === 'string') return problems;
    return { mode: 'sentinel', sentinels, name: env.sentinelName, username, password, db: Number(dbText || 0), tls };
  }
  const nodes = parseRedisNodes('REDIS_CLUSTER_NODES', env.clusterNodes!);
  if (typeof nodes === 'string') return [nodes];
  // Redis Cluster has one database; a db index in REDIS_URL would be silently ignored.
  if (u.pathname.replace(/^\//, '') !== '' && u.pathname !== '/0') return ['REDIS_URL: Redis Cluster has no databases; drop the /<db> from the URL'];
  return { mode: 'cluster', nodes, username, password, tls };
}
