import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkerMetrics } from './metrics.ts';
import type { QueueProbe } from './queue-probe.ts';

export interface MetricsServerOptions {
  host?: string;
  /** Redis reachability for /readyz and the queue gauges; owned (closed) by the server from here on. */
  probe?: QueueProbe;
}

const json = (status: number, body: unknown) => [status, { 'content-type': 'application/json' }, JSON.stringify(body)] as const;

/**
 * /healthz (the process is up), /readyz (Redis answers within a second: a PING, or on a Cluster the masters of the queues and call state) and /metrics
 * (Prometheus text) on METRICS_PORT. Liveness never depends on Redis, so an outage does not get
 * workers restarted; readiness and `veil_worker_redis_up` make the outage visible.
 */
export async function startMetricsServer(
  metrics: WorkerMetrics,
  port: number,
  opts: MetricsServerOptions = {},
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const probe = opts.probe ?? null;
  metrics.attachQueueProbe(probe);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = ([status, headers, body]: ReturnType<typeof json>) => res.writeHead(status, headers).end(body);
    if (req.method === 'GET' && path === '/healthz') {
      send(json(200, { status: 'ok' }));
      return;
    }
    if (req.method === 'GET' && path === '/readyz') {
      if (!probe) {
        send(json(200, { status: 'ready' }));
        return;
      }
      void probe.ping().then((up) => {
        metrics.redisUp.set(up ? 1 : 0);
        send(up ? json(200, { status: 'ready', redis: 'ok' }) : json(503, { error: { code: 'not_ready', message: 'Redis not answering' } }));
      });
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    send(json(404, { error: { code: 'not_found', message: 'no such route' } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, opts.host ?? '0.0.0.0', resolve);
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      metrics.attachQueueProbe(null);
      await probe?.close();
    },
  };
}
