import { randomUUID } from 'node:crypto';
import postgres from 'postgres';

export interface Callee {
  username: string;
}

/** Callees with one iOS and one Android device each, written straight into the api's schema. */
export async function seedCallees(databaseUrl: string, count: number): Promise<Callee[]> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = [];
    for (let i = 0; i < count; i++) {
      const jid = `callee${i}@bench.example`;
      rows.push({ jid, device_id: randomUUID(), platform: 'ios', push_token: (i.toString(16).padStart(8, '0') + 'ab'.repeat(28)).slice(0, 64), app_id: null });
      rows.push({ jid, device_id: randomUUID(), platform: 'android', push_token: `bench-fcm-${i}:${'x'.repeat(140)}`, app_id: null });
    }
    for (let i = 0; i < rows.length; i += 1000) {
      await sql`INSERT INTO push_registrations ${sql(rows.slice(i, i + 1000), 'jid', 'device_id', 'platform', 'push_token', 'app_id')}`;
    }
    return Array.from({ length: count }, (_, i) => ({ username: `callee${i}` }));
  } finally {
    await sql.end();
  }
}
