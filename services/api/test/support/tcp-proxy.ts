import { connect, createServer, type Socket } from 'node:net';

export type ProxyMode = 'close' | 'forward';

export interface TcpProxy {
  port: number;
  /** What happens to NEW connections: closed as soon as accepted, or forwarded to the target. */
  setMode(mode: ProxyMode): void;
  /**
   * Existing connections stop forwarding in both directions but stay open: bytes vanish, nobody
   * says a word (NAT state lost, a failover behind the same address). Returns how many.
   */
  blackholeExisting(): number;
  close(): Promise<void>;
}

/** A TCP proxy of the test's own in front of a real server, to break the path in chosen ways. */
export async function startTcpProxy(target: { host: string; port: number }, mode: ProxyMode): Promise<TcpProxy> {
  let current = mode;
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  };

  const server = createServer((client) => {
    track(client);
    if (current === 'close') {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    track(upstream);
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', done);
    upstream.on('close', done);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: (server.address() as { port: number }).port,
    setMode: (m) => void (current = m),
    blackholeExisting() {
      const n = pairs.size;
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      pairs.clear();
      return n;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
