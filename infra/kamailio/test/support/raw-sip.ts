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
