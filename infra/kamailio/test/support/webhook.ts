import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedPost {
  url: string;
  /** The last path segment: `call-notify`, `call-ended` or `registered`. */
  hook: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** performance.now() when the body had arrived. */
  at: number;
}

/** When the stand-in answers: at once, after a delay, or never (the socket just hangs). */
export type WebhookMode = { kind: 'ok' } | { kind: 'delay'; ms: number } | { kind: 'hang' };

export interface WebhookAnswer {
  status: number;
  body: unknown;
}

/** What the api answers each hook by default (the SPEC's success answers). */
const DEFAULT_ANSWERS: Record<string, WebhookAnswer> = {
  'call-notify': { status: 202, body: { status: 'queued', devices: 1 } },
  'call-ended': { status: 200, body: { status: 'ended', withdrawn: 0, notified: 0 } },
  registered: { status: 200, body: { woken: 0 } },
};

/**
 * A stand-in for the api's internal webhooks (call-notify, call-ended, registered): records
 * every POST Kamailio sends and answers each hook with a chosen status, at once, late or never.
 * It can be stopped and restarted on the same port to play "api down".
 */
export async function startWebhookRecorder() {
  const posts: RecordedPost[] = [];
  const modes = new Map<string, WebhookMode>();
  const answers = new Map<string, WebhookAnswer>();
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
      const url = req.url ?? '';
      const hook = url.split('/').pop() ?? '';
      posts.push({ url, hook, headers: req.headers, body, at: performance.now() });
      const mode = modes.get(hook) ?? modes.get('*') ?? { kind: 'ok' };
      const answer = () => {
        const { status, body: out } = answers.get(hook) ?? DEFAULT_ANSWERS[hook] ?? { status: 404, body: { error: { code: 'not_found' } } };
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out));
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
    /** The same server's URL for another hook (for -A PUSH_ENDED_URL and the like). */
    urlOf: (hook: string) => `http://127.0.0.1:${port}/api/v1/push/${hook}`,
    posts,
    /** Timing of one hook (`hook` omitted: every hook without a mode of its own). */
    setMode(next: WebhookMode, hook = '*') {
      modes.set(hook, next);
    },
    /** The status and body one hook answers from now on. */
    answer(hook: string, status: number, body: unknown = {}) {
      answers.set(hook, { status, body });
    },
    /** Back to answering every hook at once with the SPEC's success answers. */
    reset() {
      modes.clear();
      answers.clear();
    },
    /** call-notify posts for one Call-ID. */
    postsFor(callId: string) {
      return posts.filter((p) => p.hook === 'call-notify' && p.body.call_id === callId);
    },
    /** Posts to one hook, optionally only those whose body matches every given field. */
    postsTo(hook: string, match: Record<string, unknown> = {}) {
      return posts.filter((p) => p.hook === hook && Object.entries(match).every(([k, v]) => p.body[k] === v));
    },
    /** "api down": nothing listens on the port until up() is called. */
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
