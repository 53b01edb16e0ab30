import { loadConfigOrExit } from '@veil/config/config';
import { createLogger } from '@veil/log/logger';
import { createJwtVerifier, JwtKeyError, loadJwtPublicKey } from './http/auth.ts';
import { createApiMetrics } from './metrics.ts';
import { createApiService } from './service.ts';

// Process edges only: environment, exit codes, signals. Everything else is built by createApiService.
const config = loadConfigOrExit(process.env, 'api');
const log = createLogger({ service: 'api', level: config.logLevel });

let publicKey = null;
try {
  publicKey = config.jwt.publicKeyPath ? loadJwtPublicKey(config.jwt.publicKeyPath) : null;
} catch (err) {
  if (!(err instanceof JwtKeyError)) throw err;
  process.stderr.write(`api: invalid configuration: ${err.message}\n`);
  process.exit(78); // EX_CONFIG, as for any other bad setting
}
const verifier = createJwtVerifier(config.jwt, publicKey, { log });
if (!verifier.configured) {
  // call-notify must work from a fresh clone, so this is not fatal; register/deregister answer 401.
  log.error('Neither JWT_SECRET, JWT_PUBLIC_KEY_PATH nor JWT_JWKS_URL is set: push registration is disabled (401 jwt_not_configured)');
}

const service = createApiService(config, { log, verifier, metrics: createApiMetrics({ defaultMetrics: true }) });
try {
  const port = await service.start();
  log.info({ port }, 'API listening');
} catch (err) {
  log.fatal({ error: (err as Error).message }, 'API cannot listen');
  process.exit(1);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'Shutting down: finishing in-flight requests');
  await service.destroy();
  log.info('Stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
