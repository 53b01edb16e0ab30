import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Test processes trust the local APNs/FCM stand-ins the same way an operator trusts a proxy:
// NODE_EXTRA_CA_CERTS, read at process start, so it is set here before vitest forks its workers.
// Overwritten, not defaulted: a shell that already exports a system bundle there would otherwise
// leave the stand-ins untrusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE).
process.env.NODE_EXTRA_CA_CERTS = fileURLToPath(new URL('./packages/testkit/certs/ca.crt', import.meta.url));

export default defineConfig({
  test: {
    pool: 'forks',
    include: ['packages/*/src/**/*.test.ts', 'services/*/src/**/*.test.ts', 'services/*/test/**/*.test.ts', 'infra/**/test/**/*.test.ts', 'tools/**/*.test.ts', 'bench/lib/**/*.test.ts'],
    // CI also writes a JSON report, from which .ci/run prints a plain "N passed, N failed" line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.ci/out/vitest.json' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: more files at once only makes timing-sensitive fault tests flaky.
    maxWorkers: 2,
  },
});
