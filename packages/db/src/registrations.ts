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
  /** iOS only: the remote-notification token for missed-call alerts. */
  alert_token: string | null;
  apns_environment: ApnsEnvironment | null;
}

export interface RegistrationInput {
  jid: string;
  device_id: string;
  platform: Platform;
  push_token: string;
  app_id: string | null;
  /** Absent means none: each registration replaces the previous one's alert token. */
  alert_token?: string | null;
  /** Absent or null: the deployment default. Replaced by every registration of the device. */
  apns_environment?: ApnsEnvironment | null;
}

/** A registration removed to make room for a new device of the same JID (MAX_DEVICES_PER_USER). */
export interface EvictedRegistration {
  device_id: string;
  platform: Platform;
}

export interface UpsertOptions {
  /** At most this many devices per JID: a new one evicts the least recently updated (none when unset). */
  maxDevices?: number;
}

const UNIQUE_VIOLATION = '23505';

const DEADLOCK_DETECTED = '40P01';
// Namespace of the per-token advisory locks (two-key locks never collide with one-key ones such as the migration lock).
const TOKEN_LOCK_NAMESPACE = 0x7e11;
// Namespace of the per-JID locks that serialise one user's registrations while the device cap is enforced.
const JID_LOCK_NAMESPACE = 0x7e12;

/**
 * Inserts or updates (jid, device_id) and takes the token away from any other row holding it,
 * in one transaction. Registrations of one token are serialised by a transaction-scoped advisory
 * lock on it: without it, N devices racing for one token each insert, and all but one hit the
 * unique index again and again. Two swaps crossing each other (A->X while B->Y, X holding B and
 * Y holding A) can still deadlock; Postgres aborts one and it simply runs again.
 *
 * With maxDevices, a new device beyond the cap evicts the JID's least recently updated rows in
 * the same transaction. A lock on the JID, always taken before the token's (one order, so the two
 * locks cannot deadlock each other), makes N devices of one user registering at once count one
 * after the other instead of each seeing room for itself.
 */
export async function upsertRegistration(
  db: Db,
  input: RegistrationInput,
  opts: UpsertOptions = {},
): Promise<{ registration: Registration; created: boolean; evicted: EvictedRegistration[] }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await timed(db, db.sql.begin(async (tx) => {
        if (opts.maxDevices !== undefined) await tx`SELECT pg_advisory_xact_lock(${JID_LOCK_NAMESPACE}, hashtext(${input.jid}))`;
        await tx`SELECT pg_advisory_xact_lock(${TOKEN_LOCK_NAMESPACE}, hashtext(${`${input.platform}:${input.push_token}`}))`;
        await tx`
          DELETE FROM push_registrations
          WHERE platform = ${input.platform}
            AND token_digest = decode(md5(${input.push_token}::text), 'hex')
            AND NOT (jid = ${input.jid} AND device_id = ${input.device_id})`;
        // The same for the missed-call alert token: a phone that changed hands must not show its
        // old owner's missed calls (with the callers' names).
        if (input.alert_token) {
          await tx`
            UPDATE push_registrations SET alert_token = NULL
            WHERE alert_token = ${input.alert_token} AND NOT (jid = ${input.jid} AND device_id = ${input.device_id})`;
        }
        const [row] = await tx<(Registration & { created: boolean })[]>`
          INSERT INTO push_registrations (jid, device_id, platform, push_token, app_id, alert_token, apns_environment)
          VALUES (${input.jid}, ${input.device_id}, ${input.platform}, ${input.push_token}, ${input.app_id}, ${input.alert_token ?? null}, ${input.apns_environment ?? null})
          ON CONFLICT (jid, device_id) DO UPDATE
            SET platform = EXCLUDED.platform, push_token = EXCLUDED.push_token, app_id = EXCLUDED.app_id,
                alert_token = EXCLUDED.alert_token, apns_environment = EXCLUDED.apns_environment, updated_at = now()
          RETURNING jid, device_id, platform, app_id, apns_environment, created_at, updated_at, (xmax = 0) AS created`;
        const { created, ...registration } = row!;
        // Only a new device adds to the count; trimming to the cap also catches a cap lowered since.
        const evicted =
          created && opts.maxDevices !== undefined
            ? await tx<EvictedRegistration[]>`
                DELETE FROM push_registrations
                WHERE jid = ${input.jid} AND device_id IN (
                  SELECT device_id FROM push_registrations
                  WHERE jid = ${input.jid} AND device_id <> ${input.device_id}
                  ORDER BY updated_at DESC, device_id
                  OFFSET ${opts.maxDevices - 1})
                RETURNING device_id, platform`
            : [];
        return { registration, created, evicted: [...evicted] };
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
 * token, so a device that re-registered a fresh token meanwhile keeps it. With updatedBefore
 * (APNs 410's timestamp), only if the row was last updated before it: a device that registered
 * the same token again after Apple stopped accepting it has a valid token again.
 */
export async function deleteRegistrationIfToken(
  db: Db,
  jid: string,
  deviceId: string,
  pushToken: string,
  opts: { updatedBefore?: Date } = {},
): Promise<boolean> {
  const result = await timed(
    db,
    opts.updatedBefore
      ? db.sql`DELETE FROM push_registrations WHERE jid = ${jid} AND device_id = ${deviceId} AND push_token = ${pushToken}
                 AND updated_at < ${opts.updatedBefore}`
      : db.sql`DELETE FROM push_registrations WHERE jid = ${jid} AND device_id = ${deviceId} AND push_token = ${pushToken}`,
  );
  return result.count > 0;
}

/**
 * The clean-up of registrations nobody refreshed for maxAgeDays, in batches so no statement
 * outlives the query timeout however many rows expired at once. Returns how many were deleted.
 */
export async function deleteRegistrationsNotUpdatedSince(db: Db, maxAgeDays: number, batchSize = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await timed(
      db,
      db.sql`
        DELETE FROM push_registrations WHERE (jid, device_id) IN (
          SELECT jid, device_id FROM push_registrations
          WHERE updated_at < now() - make_interval(days => ${maxAgeDays})
          LIMIT ${batchSize})`,
    );
    total += result.count;
    if (result.count < batchSize) return total;
  }
}

/**
 * The callee's devices. With a domain: the JID username@domain (primary-key prefix scan);
 * without: every JID whose local part is the username (push_registrations_callee index).
 */
export async function findCalleeDevices(db: Db, username: string, domain: string | null): Promise<CalleeDevice[]> {
  const local = username.toLowerCase();
  const query = domain
    ? db.sql<CalleeDevice[]>`
        SELECT jid, device_id, platform, push_token, app_id, alert_token, apns_environment FROM push_registrations
        WHERE jid = ${`${local}@${domain.toLowerCase()}`}`
    : db.sql<CalleeDevice[]>`
        SELECT jid, device_id, platform, push_token, app_id, alert_token, apns_environment FROM push_registrations
        WHERE jid_local = ${local}`;
  return [...(await timed(db, query))];
}

/**
 * A rejected missed-call alert token clears only itself (if the row still holds it): the
 * registration and its VoIP token stay, since the ringing push still works.
 */
export async function clearAlertTokenIfToken(
  db: Db,
  jid: string,
  deviceId: string,
  alertToken: string,
  opts: { updatedBefore?: Date } = {},
): Promise<boolean> {
  const result = await timed(
    db,
    opts.updatedBefore
      ? db.sql`UPDATE push_registrations SET alert_token = NULL
               WHERE jid = ${jid} AND device_id = ${deviceId} AND alert_token = ${alertToken}
                 AND updated_at < ${opts.updatedBefore}`
      : db.sql`UPDATE push_registrations SET alert_token = NULL
               WHERE jid = ${jid} AND device_id = ${deviceId} AND alert_token = ${alertToken}`,
  );
  return result.count > 0;
}

/** Operator tooling: a JID's registrations (tokens included: callers mask them). */
export interface RegistrationDetail extends Registration {
  push_token: string;
  alert_token: string | null;
  last_push_at: Date | null;
  last_wake_at: Date | null;
  last_wake_ms: number | null;
  unanswered_pushes: number;
}

export async function listRegistrations(db: Db, jid: string): Promise<RegistrationDetail[]> {
  const rows = await timed(
    db,
    db.sql<RegistrationDetail[]>`
      SELECT jid, device_id, platform, push_token, alert_token, app_id, apns_environment, created_at, updated_at,
             last_push_at, last_wake_at, last_wake_ms, unanswered_pushes
      FROM push_registrations WHERE jid = ${jid.toLowerCase()} ORDER BY created_at`,
  );
  return [...rows];
}
