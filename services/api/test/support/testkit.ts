// @veil/testkit is not a dependency of this package (adding it would change the lockfile),
// so the shared helpers are imported by path.
export { createTestDb, TEST_DATABASE_URL, type TestDb } from '../../../../packages/testkit/src/db.ts';
export { testQueueName, obliterateQueue, dropCallState, TEST_REDIS_URL } from '../../../../packages/testkit/src/queue.ts';
