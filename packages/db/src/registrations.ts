import type { ApnsEnvironment } from '@veil/config/config';
import { timed, type Db } from './client.ts';

export type Platform = 'ios' | 'android';

export interface Registration {
  jid: string;
  device_id: string;
  platform: Platform;
  app_id: string | null;
  /** The APNs gateway of an iOS token; null = the deployment default (APNS_USE_SANDBOX). */
  apns_environment: ApnsEnvironment | null;
  created_at: Date;
  updated_at: Date;
}

/** What call-notify needs to build a push job: the token, never sent back to clients. */
export interface CalleeDevice {
  jid: string;
  device_id: string;
  platform: Platform;
  push_token: string;
  app_id: string | null;
  apns_environment: ApnsEnvironment | null;
}

export interface RegistrationInput {
  jid: string;
  device_id: string;
  platform: Platform;
  push_token: string;
  app_id: string | null;
  /** Absent or null: the deployment default. Replaced by every registration of the device. */
  apns_environment?: ApnsEnvironment | null;
}

const UNIQUE_VIOLATION = '23505';

const DEADLOCK_DETECTED = '40P01';
// Namespace of the per-token advisory locks (two-key locks never collide with one-key ones such as the migration lock).
const TOKEN_LOCK_NAMESPACE = 0x7e11;

/**
 * Inserts or updates (jid, device_id) and takes the token away from any other row holding it,
 * in one transaction. Registrations of one token are serialised by a transaction-scoped advisory
 * lock on it: without it, N devices racing for one token each insert, and all but one hit the
 * unique index again and again. Two swaps crossing each other (A->X while B->Y, X holding B and
 * Y holding A) can still deadlock; Postgres aborts one and it simply runs again.
 */
export async function upsertRegistration(db: Db, input: RegistrationInput): Promise<{ registration: Registration; created: boolean }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await timed(db, db.sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${TOKEN_LOCK_NAMESPACE}, hashtext(${`${input.platform}:${input.push_token}`}))`;
        await tx`
          DELETE FROM push_registrations
          WHERE platform = ${input.platform}
            AND token_digest = decode(md5(${input.push_token}::text), 'hex')
            AND NOT (jid = ${input.jid} AND device_id = ${input.device_id})`;
        const [row] = await tx<(Registration & { created: boolean })[]>`
          INSERT INTO push_registrations (jid, device_id, platform, push_token, app_id, apns_environment)
          VALUES (${input.jid}, ${input.device_id}, ${input.platform}, ${input.push_token}, ${input.app_id}, ${input.apns_environment ?? null})
          ON CONFLICT (jid, device_id) DO UPDATE
            SET platform = EXCLUDED.platform, push_token = EXCLUDED.push_token,
                app_id = EXCLUDED.app_id, apns_environment = EXCLUDED.apns_environment, updated_at = now()
          RETURNING jid, device_id, platform, app_id, apns_environment, created_at, updated_at, (xmax = 0) AS created`;
        const { created, ...registration } = row!;
        return { registration, created };
      }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code === UNIQUE_VIOLATION || code === DEADLOCK_DETECTED) && attempt < 5) continue;
      throw err;
    }
  }
}

/** Deregistration; true when a row was removed. */
export async function deleteRegistration(db: Db, jid: string, deviceId: string): Promise<boolean> {
  const result = await timed(db, db.sql`DELETE FROM push_registrations WHERE jid = ${jid} AND device_id = ${deviceId}`);
  return result.count > 0;
}

/**
 * The worker's purge after Apple or Google rejected a token: only if the row still holds that
 * token, so a device that re-registered a fresh token meanwhile keeps it.
 */
export async function deleteRegistrationIfToken(db: Db, jid: string, deviceId: string, pushToken: string): Promise<boolean> {
  const result = await timed(
    db,
    db.sql`DELETE FROM push_registrations WHERE jid = ${jid} AND device_id = ${deviceId} AND push_token = ${pushToken}`,
  );
  return result.count > 0;
}

/**
 * The callee's devices. With a domain: the JID username@domain (primary-key prefix scan);
 * without: every JID whose local part is the username (push_registrations_callee index).
 */
export async function findCalleeDevices(db: Db, username: string, domain: string | null): Promise<CalleeDevice[]> {
  const local = username.toLowerCase();
  const query = domain
    ? db.sql<CalleeDevice[]>`
        SELECT jid, device_id, platform, push_token, app_id, apns_environment FROM push_registrations
        WHERE jid = ${`${local}@${domain.toLowerCase()}`}`
    : db.sql<CalleeDevice[]>`
        SELECT jid, device_id, platform, push_token, app_id, apns_environment FROM push_registrations
        WHERE jid_local = ${local}`;
  return [...(await timed(db, query))];
}

/** Operator tooling: a JID's registrations (tokens included: callers mask them). */
export async function listRegistrations(db: Db, jid: string): Promise<(Registration & { push_token: string })[]> {
  const rows = await timed(
    db,
    db.sql<(Registration & { push_token: string })[]>`
      SELECT jid, device_id, platform, push_token, app_id, apns_environment, created_at, updated_at
      FROM push_registrations WHERE jid = ${jid.toLowerCase()} ORDER BY created_at`,
  );
  return [...rows];
}
