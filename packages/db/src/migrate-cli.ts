import { loadConfigOrExit } from '@veil/config/config';
import { createLogger } from '@veil/log/logger';
import { createDb } from './client.ts';
import { runMigrations } from './migrate.ts';

// `pnpm migrate`: the same migrations the API applies at start, for operators who run them first.
const config = loadConfigOrExit(process.env, 'migrate');
const log = createLogger({ service: 'migrate', level: config.logLevel });
const db = createDb({ url: config.databaseUrl, max: 1, connectTimeoutSeconds: 10, queryTimeoutMs: 120_000 });
try {
  const applied = await runMigrations(db);
  log.info({ applied }, applied.length ? 'Migrations applied' : 'Database is up to date');
} catch (err) {
  log.error({ err }, 'Migration failed');
  process.exitCode = 1;
} finally {
  await db.close();
}
