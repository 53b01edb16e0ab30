import { Router } from 'express';
import type { Db } from '@veil/db/client';
import { deleteRegistration, upsertRegistration } from '@veil/db/registrations';
import type { Logger } from '@veil/log/logger';
import { tokenHash } from '@veil/log/token-hash';
import { requireClientJwt, type ClientIdentity, type JwtVerifier } from '../auth.ts';
import { HttpError, requireMigrated } from '../errors.ts';
import { jsonBody } from '../json-body.ts';
import { deregisterSchema, parseBody, registerSchema } from '../validation.ts';

/** A user touches only their own JID's registrations: the JWT's jid must be the body's jid. */
function assertOwner(identity: ClientIdentity, jid: string): void {
  if (identity.jid !== jid) throw new HttpError(403, 'forbidden', 'jid does not match the token');
}

export function registrationRoutes(deps: {
  db: Db;
  verifier: JwtVerifier;
  isMigrated: () => boolean;
  log: Logger;
  /** MAX_DEVICES_PER_USER: one account never fans a call out to unboundedly many pushes. */
  maxDevicesPerUser?: number;
}): Router {
  const router = Router();
  const auth = requireClientJwt(deps.verifier);
  const migrated = requireMigrated(deps.isMigrated);

  router.post('/api/v1/push/register', auth, jsonBody, migrated, async (req, res) => {
    const body = parseBody(registerSchema, req.body);
    assertOwner(res.locals.identity as ClientIdentity, body.jid);
    const { registration, created, evicted } = await upsertRegistration(
      deps.db,
      body,
      deps.maxDevicesPerUser !== undefined ? { maxDevices: deps.maxDevicesPerUser } : {},
    );
    for (const gone of evicted) {
      deps.log.info({ jid: body.jid, device_id: gone.device_id, platform: gone.platform, max_devices: deps.maxDevicesPerUser }, 'Registration evicted');
    }
    deps.log.info(
      { jid: body.jid, device_id: body.device_id, platform: body.platform, token_hash: tokenHash(body.push_token), created },
      created ? 'Push registration created' : 'Push registration updated',
    );
    res.status(created ? 201 : 200).json(registration);
  });

  router.delete('/api/v1/push/register', auth, jsonBody, migrated, async (req, res) => {
    const body = parseBody(deregisterSchema, req.body);
    assertOwner(res.locals.identity as ClientIdentity, body.jid);
    const removed = await deleteRegistration(deps.db, body.jid, body.device_id);
    deps.log.info({ jid: body.jid, device_id: body.device_id, removed }, 'Push registration deleted');
    res.status(204).end();
  });

  return router;
}
