import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../../packages/testkit/src/ports.ts';

export const KAMAILIO_CFG = fileURLToPath(new URL('../../kamailio.cfg', import.meta.url));

/** Why the SIP tests cannot run here, or null when kamailio and sipp are both installed. */
export function missingSipTools(): string | null {
  const missing = ['kamailio', 'sipp'].filter((bin) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0);
  return missing.length ? `${missing.join(' and ')} not installed (apt-get install kamailio kamailio-utils-modules kamailio-extra-modules kamailio-json-modules sip-tester)` : null;
}

export interface KamailioOptions {
  /** UDP port on 127.0.0.1; default a free one. */
  port?: number;
  pushUrl: string;
  pushSecret?: string;
  pushTimeoutSeconds?: number;
  /** Hold mode: hold an INVITE this long for the callee to register. */
  holdMs?: number;
  /** -A PUSH_TTL_S: how long a pushed user's REGISTERs are reported. */
  pushTtlSeconds?: number;
  pushEndedUrl?: string;
  pushRegisteredUrl?: string;
}

export interface Kamailio {
  port: number;
  /** Everything kamailio printed so far (it logs to stderr with -E). */
  log(): string;
  stop(): Promise<void>;
}

/** One kamailio in the foreground on 127.0.0.1:<port>/udp, ready when it answers an OPTIONS ping. */
export async function startKamailio(opts: KamailioOptions): Promise<Kamailio> {
  const port = opts.port ?? (await freePort());
  const args = ['-DD', '-E', '-f', KAMAILIO_CFG, '-A', `SIP_LISTEN=udp:127.0.0.1:${port}`, '-A', `PUSH_URL="${opts.pushUrl}"`];
  if (opts.pushSecret !== undefined) args.push('-A', `PUSH_SECRET="${opts.pushSecret}"`);
  if (opts.pushTimeoutSeconds !== undefined) args.push('-A', `PUSH_TIMEOUT_S=${opts.pushTimeoutSeconds}`);
  if (opts.holdMs !== undefined) args.push('-A', 'WITH_PUSH_HOLD', '-A', `PUSH_HOLD_MS=${opts.holdMs}`);
  if (opts.pushTtlSeconds !== undefined) args.push('-A', `PUSH_TTL_S=${opts.pushTtlSeconds}`);
  if (opts.pushEndedUrl !== undefined) args.push('-A', `PUSH_ENDED_URL="${opts.pushEndedUrl}"`);
  if (opts.pushRegisteredUrl !== undefined) args.push('-A', `PUSH_REGISTERED_URL="${opts.pushRegisteredUrl}"`);
  // Small pools keep two suites on two cores light; the async workers carry the webhooks.
  args.push('-A', 'SIP_WORKERS=2');

  const child = spawn('kamailio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const kamailio: Kamailio = {
    port,
    log: () => output,
    stop: () => stopProcess(child, exited),
  };
  try {
    await waitForOptions(port, child, () => output);
  } catch (err) {
    await kamailio.stop();
    throw err;
  }
  return kamailio;
}

async function stopProcess(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

async function waitForOptions(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`kamailio exited (${child.exitCode}):\n${log()}`);
    if (await optionsPing(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`kamailio did not answer OPTIONS on ${port}:\n${log()}`);
}

function optionsPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 300);
    sock.on('message', (msg) => done(msg.toString().startsWith('SIP/2.0 200')));
    sock.on('error', () => done(false));
    sock.bind(0, '127.0.0.1', () => {
      const local = sock.address().port;
      const branch = `z9hG4bK-ping-${Date.now()}-${Math.random().toString(36).slice(2)}`;
      const msg = [
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=${branch}`,
        `From: <sip:ping@127.0.0.1>;tag=${branch}`,
        `To: <sip:127.0.0.1:${port}>`,
        `Call-ID: ${branch}`,
        'CSeq: 1 OPTIONS',
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      sock.send(msg, port, '127.0.0.1');
    });
  });
}
