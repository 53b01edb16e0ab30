import type { CredentialSet } from './credential-sets.ts';
import type { PushProvider } from './types.ts';

/**
 * One credential set in use: its providers (one per APNs environment, or one FCM provider),
 * each with its own warm connection and provider/OAuth token, made on first use and then kept.
 *
 * A reload that replaces or removes the set retires it: new pushes already go to its successor,
 * and its connections are closed only once the sends still running on it have finished, so a
 * rotation never cuts a push in flight.
 */
export class LiveCredentialSet {
  private readonly providers = new Map<string, PushProvider>();
  private inflight = 0;
  private retired = false;
  private closing: Promise<void> | null = null;

  constructor(
    readonly set: CredentialSet,
    /** Makes the provider for `channel` (an APNs environment, or 'fcm'). */
    private readonly make: (set: CredentialSet, channel: string) => PushProvider,
  ) {}

  get fingerprint(): string {
    return this.set.fingerprint;
  }

  /** Runs one send on this set; the set stays open until every such run has finished. */
  async run<T>(send: (provider: (channel: string) => PushProvider) => Promise<T>): Promise<T> {
    this.inflight++;
    try {
      return await send((channel) => this.provider(channel));
    } finally {
      this.inflight--;
      if (this.retired && this.inflight === 0) void this.close();
    }
  }

  /** No new sends come here; close once the running ones are done. */
  retire(): void {
    this.retired = true;
    if (this.inflight === 0) void this.close();
  }

  /** How many providers (connections) this set has opened: one per channel actually used. */
  channelsOpened(): string[] {
    return [...this.providers.keys()];
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([...this.providers.values()].map((p) => p.close().catch(() => {}))).then(() => {});
    return this.closing;
  }

  private provider(channel: string): PushProvider {
    let p = this.providers.get(channel);
    if (!p) {
      p = this.make(this.set, channel);
      this.providers.set(channel, p);
    }
    return p;
  }
}
