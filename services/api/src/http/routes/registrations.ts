import { Router } from 'express';
import type { Db } from '@veil/db/client';
import { deleteRegistration, upsertRegistration } from '@veil/db/registrations';
import { listRegistrationStatus } from '@veil/db/wakes';
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

export function registrationRoutes(deps: { db: Db; verifier: JwtVerifier; isMigrated: () => boolean; log: Logger }): Router {
  const router = Router();
  const auth = requireClientJwt(deps.verifier);
  const migrated = requireMigrated(deps.isMigrated);

  router.post('/api/v1/push/register', auth, jsonBody, migrated, async (req, res) => {
    const body = parseBody(registerSchema, req.body);
    assertOwner(res.locals.identity as ClientIdentity, body.jid);
    const { registration, created } = await upsertRegistration(deps.db, body);
    deps.log.info(
      { jid: body.jid, device_id: body.device_id, platform: body.platform, token_hash: tokenHash(body.push_token), alert_token: body.alert_token !== null, created },
      created ? 'Push registration created' : 'Push registration updated',
    );
    res.status(created ? 201 : 200).json(registration);
  });

  // An app's settings screen: this user's devices and whether they wake (never a token).
  router.get('/api/v1/push/register', auth, migrated, async (_req, res) => {
    const { jid } = res.locals.identity as ClientIdentity;
    res.status(200).json({ registrations: await listRegistrationStatus(deps.db, jid) });
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
