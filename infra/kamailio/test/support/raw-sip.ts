import dgram from 'node:dgram';

/**
 * Sends one INVITE, optionally the very same datagram again (a UDP retransmission: same branch,
 * same Call-ID) and collects the status lines Kamailio answers until a final one or the timeout.
 */
export function sendRawInvite(opts: {
  proxyPort: number;
  callee: string;
  callId: string;
  /** Omit to send the INVITE once. */
  resendAfterMs?: number;
  timeoutMs: number;
  /** Raw bytes for the From display name (not necessarily UTF-8); default "Retry". */
  displayName?: Buffer;
}): Promise<string[]> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const statuses: string[] = [];
    let timer: NodeJS.Timeout;
    const finish = () => {
      clearTimeout(timer);
      sock.close();
      resolve(statuses);
    };
    sock.on('message', (msg) => {
      const status = msg.toString().split('\r\n')[0]!;
      statuses.push(status);
      const code = Number(status.split(' ')[1]);
      if (code >= 200) {
        // The ACK for a non-2xx answer carries that answer's To tag, or tm keeps resending it.
        const to = msg.toString().split('\r\n').find((l) => /^(To|t):/i.test(l)) ?? '';
        sendAck(to);
        finish();
      }
    });
    let invite = Buffer.alloc(0);
    const display = opts.displayName ?? Buffer.from('"Retry"');
    let local = 0;
    const branch = `z9hG4bK-rt-${opts.callId}`;
    const sendAck = (toLine: string) => {
      const ack = [
        `ACK sip:${opts.callee}@127.0.0.1:${opts.proxyPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=${branch}`,
        `From: "Retry" <sip:carol@127.0.0.1:${local}>;tag=rt1`,
        toLine,
        `Call-ID: ${opts.callId}`,
        'CSeq: 1 ACK',
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      sock.send(ack, opts.proxyPort, '127.0.0.1');
    };
    sock.bind(0, '127.0.0.1', () => {
      local = sock.address().port;
      const head = [
        `INVITE sip:${opts.callee}@127.0.0.1:${opts.proxyPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=${branch}`,
        'From: ',
      ].join('\r\n');
      const rest = [
        ` <sip:carol@127.0.0.1:${local}>;tag=rt1`,
        `To: <sip:${opts.callee}@127.0.0.1:${opts.proxyPort}>`,
        `Call-ID: ${opts.callId}`,
        'CSeq: 1 INVITE',
        `Contact: <sip:carol@127.0.0.1:${local}>`,
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      invite = Buffer.concat([Buffer.from(head), display, Buffer.from(rest)]);
      sock.send(invite, opts.proxyPort, '127.0.0.1');
      if (opts.resendAfterMs !== undefined) setTimeout(() => sock.send(invite, opts.proxyPort, '127.0.0.1'), opts.resendAfterMs);
      timer = setTimeout(finish, opts.timeoutMs);
    });
  });
}

export interface RegisterOptions {
  user: string;
  /** Default 60; 0 removes the contact. */
  expires?: number;
  /** The Contact's +sip.instance parameter value as sent, e.g. `"<urn:uuid:...>"`. */
  instance?: string;
  userAgent?: string;
  /** Where the contact says the device listens; default this client's own port. */
  contactPort?: number;
}

/**
 * A phone's REGISTERs over one UDP socket, each timed from send to the final answer. Used where
 * the REGISTER's latency is the point (and by bench/kamailio-register.ts), as sipp's own start-up
 * would dwarf it.
 */
export async function createRegisterClient(proxyPort: number) {
  // A larger receive buffer than the default 208 KiB: a burst of 200s must not be dropped while
  // a loaded event loop is slow to read them.
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const local = sock.address().port;
  const waiting = new Map<string, (status: number) => void>();
  sock.on('message', (msg) => {
    const text = msg.toString();
    const status = Number(text.split(' ', 2)[1]);
    const callId = /^(?:Call-ID|i):\s*(.+)$/im.exec(text)?.[1]?.trim();
    if (status >= 200 && callId) waiting.get(callId)?.(status);
  });
  let seq = 0;

  return {
    port: local,
    /** Sends one REGISTER and resolves with its final status and the milliseconds it took. */
    register(opts: RegisterOptions, timeoutMs = 5000): Promise<{ status: number; ms: number }> {
      const n = ++seq;
      const callId = `reg-${process.pid}-${local}-${n}`;
      const params = opts.instance === undefined ? '' : `;+sip.instance=${opts.instance}`;
      const lines = [
        `REGISTER sip:127.0.0.1:${proxyPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-${callId}`,
        `From: <sip:${opts.user}@127.0.0.1>;tag=t${n}`,
        `To: <sip:${opts.user}@127.0.0.1>`,
        `Call-ID: ${callId}`,
        'CSeq: 1 REGISTER',
        `Contact: <sip:${opts.user}@127.0.0.1:${opts.contactPort ?? local}>${params}`,
        ...(opts.userAgent === undefined ? [] : [`User-Agent: ${opts.userAgent}`]),
        `Expires: ${opts.expires ?? 60}`,
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ];
      const started = performance.now();
      const message = lines.join('\r\n');
      return new Promise((resolve, reject) => {
        // Retransmitted like a real UA (RFC 3261 timer E: 500 ms, doubling up to 4 s): a loaded
        // machine drops loopback datagrams too.
        let interval = 500;
        let resend: NodeJS.Timeout;
        const retransmit = () => {
          sock.send(message, proxyPort, '127.0.0.1');
          interval = Math.min(interval * 2, 4000);
          resend = setTimeout(retransmit, interval);
        };
        const timer = setTimeout(() => {
          clearTimeout(resend);
          waiting.delete(callId);
          reject(new Error(`no answer to REGISTER ${callId} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(callId, (status) => {
          clearTimeout(timer);
          clearTimeout(resend);
          waiting.delete(callId);
          resolve({ status, ms: performance.now() - started });
        });
        sock.send(message, proxyPort, '127.0.0.1');
        resend = setTimeout(retransmit, interval);
      });
    },
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

export type RegisterClient = Awaited<ReturnType<typeof createRegisterClient>>;
