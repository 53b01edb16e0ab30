import { timed, type Db } from './client.ts';
import type { Platform } from './registrations.ts';

/** What an app (and an operator) sees of one registration: never its tokens. */
export interface RegistrationStatus {
  jid: string;
  device_id: string;
  platform: Platform;
  app_id: string | null;
  apns_environment: 'sandbox' | 'production' | null;
  created_at: Date;
  updated_at: Date;
  last_push_at: Date | null;
  last_wake_at: Date | null;
  last_wake_ms: number | null;
  unanswered_pushes: number;
}

/** GET /api/v1/push/register: every registration of one JID, oldest first. */
export async function listRegistrationStatus(db: Db, jid: string): Promise<RegistrationStatus[]> {
  const rows = await timed(
    db,
    db.sql<RegistrationStatus[]>`
      SELECT jid, device_id, platform, app_id, apns_environment, created_at, updated_at,
             last_push_at, last_wake_at, last_wake_ms, unanswered_pushes
      FROM push_registrations WHERE jid = ${jid.toLowerCase()} ORDER BY created_at, device_id`,
  );
  return [...rows];
}

/** A call push Apple or Google accepted for one device at `accepted_at` (epoch ms). */
export interface AcceptedPush {
  jid: string;
  device_id: string;
  accepted_at: number;
}

/**
 * Records when call pushes were accepted (last_push_at), many in one statement: the worker
 * collects them for a few milliseconds, since one UPDATE per push was a visible share of its
 * CPU and of Postgres's under load. A later push of a device always wins over an earlier one.
 */
export async function recordPushesAccepted(db: Db, pushes: readonly AcceptedPush[]): Promise<void> {
  // One row per device (an UPDATE ... FROM applies only one of several matches): the latest.
  const latest = new Map<string, AcceptedPush>();
  for (const p of pushes) {
    const key = `${p.jid} ${p.device_id}`;
    if ((latest.get(key)?.accepted_at ?? -Infinity) < p.accepted_at) latest.set(key, p);
  }
  if (latest.size === 0) return;
  const rows = [...latest.values()];
  await timed(
    db,
    db.sql`UPDATE push_registrations r SET last_push_at = to_timestamp(v.at / 1000.0)
           FROM unnest(${db.sql.array(rows.map((p) => p.jid))}::text[], ${db.sql.array(rows.map((p) => p.device_id))}::uuid[],
                       ${db.sql.array(rows.map((p) => p.accepted_at))}::float8[]) AS v(jid, device_id, at)
           WHERE r.jid = v.jid AND r.device_id = v.device_id
             AND (r.last_push_at IS NULL OR r.last_push_at < to_timestamp(v.at / 1000.0))`,
  );
}

/**
 * A REGISTER proved the device woke `wakeMs` after the push accepted at `acceptedAt`: the
 * unanswered streak ends. True when the registration still exists.
 */
export async function recordWake(db: Db, jid: string, deviceId: string, at: number, wakeMs: number): Promise<boolean> {
  const result = await timed(
    db,
    db.sql`UPDATE push_registrations
           SET last_wake_at = to_timestamp(${at / 1000}), last_wake_ms = ${Math.round(wakeMs)}, unanswered_pushes = 0
           WHERE jid = ${jid} AND device_id = ${deviceId}`,
  );
  return result.count > 0;
}

/** An accepted push whose wake window closed (epoch ms of its acceptance). */
export interface DuePush {
  jid: string;
  device_id: string;
  accepted_at: number;
}

/**
 * These accepted pushes saw no credited wake within the TTL: each is one more unanswered push of
 * its device, unless a wake was credited after it (a later push's wake also answers this one).
 * One statement for the whole batch (the sweeper's; one UPDATE per push was most of Postgres's
 * CPU in the phase after a burst). The count is decided per row under the row lock, as a single
 * UPDATE per push was: a wake recorded meanwhile is seen. Returns how many were counted per
 * device ("jid device_id" -> count); devices with none counted are absent.
 */
export async function countUnansweredPushes(db: Db, pushes: readonly DuePush[]): Promise<Map<string, number>> {
  const counted = new Map<string, number>();
  if (pushes.length === 0) return counted;
  const rows = await timed(
    db,
    db.sql<{ jid: string; device_id: string; n: number }[]>`
      WITH due AS (
        SELECT * FROM unnest(${db.sql.array(pushes.map((p) => p.jid))}::text[], ${db.sql.array(pushes.map((p) => p.device_id))}::uuid[],
                             ${db.sql.array(pushes.map((p) => p.accepted_at))}::float8[]) AS d(jid, device_id, at))
      UPDATE push_registrations r
      SET unanswered_pushes = r.unanswered_pushes + (
        SELECT count(*) FROM due d WHERE d.jid = r.jid AND d.device_id = r.device_id
          AND (r.last_wake_at IS NULL OR r.last_wake_at < to_timestamp(d.at / 1000.0)))
      WHERE EXISTS (
        SELECT 1 FROM due d WHERE d.jid = r.jid AND d.device_id = r.device_id
          AND (r.last_wake_at IS NULL OR r.last_wake_at < to_timestamp(d.at / 1000.0)))
      RETURNING r.jid, r.device_id::text, (
        SELECT count(*)::int FROM due d WHERE d.jid = r.jid AND d.device_id = r.device_id
          AND (r.last_wake_at IS NULL OR r.last_wake_at < to_timestamp(d.at / 1000.0))) AS n`,
  );
  for (const row of rows) counted.set(`${row.jid} ${row.device_id}`, row.n);
  return counted;
}

/** Whether `deviceId` is one of the devices behind a callee (the `registered` webhook's user). */
export async function isDeviceOfUser(db: Db, username: string, domain: string | null, deviceId: string): Promise<boolean> {
  const local = username.toLowerCase();
  const rows = await timed(
    db,
    domain
      ? db.sql`SELECT 1 FROM push_registrations WHERE jid = ${`${local}@${domain.toLowerCase()}`} AND device_id = ${deviceId}`
      : db.sql`SELECT 1 FROM push_registrations WHERE jid_local = ${local} AND device_id = ${deviceId}`,
  );
  return rows.length > 0;
}
