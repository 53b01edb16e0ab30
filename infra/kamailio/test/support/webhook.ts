import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedPost {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** How the stand-in api answers: 202 at once, after a delay, or never (the socket just hangs). */
export type WebhookMode = { kind: 'ok' } | { kind: 'delay'; ms: number } | { kind: 'hang' };

/**
 * A stand-in for the api's call-notify: records every POST body Kamailio sends. It can be
 * stopped and restarted on the same port to play "webhook down".
 */
export async function startWebhookRecorder() {
  const posts: RecordedPost[] = [];
  let mode: WebhookMode = { kind: 'ok' };
  const hanging = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        body = { unparsable: raw };
      }
      posts.push({ url: req.url ?? '', headers: req.headers, body });
      const answer = () => {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"status":"queued","devices":1}');
      };
      if (mode.kind === 'ok') answer();
      else if (mode.kind === 'delay') setTimeout(answer, mode.ms);
      else hanging.add(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  const closeServer = async () => {
    for (const res of hanging) res.destroy();
    hanging.clear();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };

  return {
    url: `http://127.0.0.1:${port}/api/v1/push/call-notify`,
    posts,
    setMode(next: WebhookMode) {
      mode = next;
    },
    postsFor(callId: string) {
      return posts.filter((p) => p.body.call_id === callId);
    },
    /** "Webhook down": nothing listens on the port until up() is called. */
    async down() {
      await closeServer();
    },
    async up() {
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    async stop() {
      if (server.listening) await closeServer();
    },
  };
}

export type WebhookRecorder = Awaited<ReturnType<typeof startWebhookRecorder>>;
