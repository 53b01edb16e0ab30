import { randomBytes } from 'node:crypto';
import { createDb, type Db } from '@veil/db/client';
import { runMigrations } from '@veil/db/migrate';

export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDb extends Db {
  /** Drops the suite's schema and closes the pool. */
  drop(): Promise<void>;
}

/** A fresh, migrated schema of the suite's own in the shared local Postgres. */
export async function createTestDb(label = 'test'): Promise<TestDb> {
  const schema = `${label.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(5).toString('hex')}`;
  const db = createDb({ url: TEST_DATABASE_URL, schema, max: 10, queryTimeoutMs: 10_000 });
  await runMigrations(db);
  return {
    ...db,
    async drop() {
      await db.sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await db.close();
    },
  };
}

/**
 * An empty database of the suite's own (`CREATE DATABASE`), for tests where the service runs its
 * own migrations from scratch; `url` points at it, `drop()` removes it even with clients connected.
 */
export async function createTestDatabase(label = 'test'): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `veil_${label.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(5).toString('hex')}`;
  const admin = createDb({ url: TEST_DATABASE_URL, max: 1, queryTimeoutMs: 30_000 });
  await admin.sql.unsafe(`CREATE DATABASE "${name}"`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.href,
    async drop() {
      await admin.sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.close();
    },
  };
}
