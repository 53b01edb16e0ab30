import { Router } from 'express';
import { deleteRegistration, upsertRegistration } from '@veil/db/registrations';
import { listRegistrationStatus } from '@veil/db/wakes';
import { tokenHash } from '@veil/log/token-hash';
import type { AppContext } from '../../context.ts';
import { requireClientJwt, type ClientIdentity } from '../auth.ts';
import { HttpError, requireMigrated } from '../errors.ts';
import { jsonBody } from '../json-body.ts';
import { deregisterSchema, parseBody, registerSchema } from '../validation.ts';

/** A user touches only their own JID's registrations: the JWT's jid must be the body's jid. */
function assertOwner(identity: ClientIdentity, jid: string): void {
  if (identity.jid !== jid) throw new HttpError('forbidden', 'jid does not match the token');
}

export function registrationRoutes(ctx: AppContext): Router {
  const router = Router();
  const auth = requireClientJwt(ctx.verifier);
  const migrated = requireMigrated(ctx.isMigrated);

  router.post('/api/v1/push/register', auth, jsonBody, migrated, async (req, res) => {
    const body = parseBody(registerSchema, req.body);
    assertOwner(res.locals.identity as ClientIdentity, body.jid);
    const maxDevices = ctx.config.maxDevicesPerUser;
    const { registration, created, evicted } = await upsertRegistration(ctx.db, body, { maxDevices });
    for (const gone of evicted) {
      ctx.log.info({ jid: body.jid, device_id: gone.device_id, platform: gone.platform, max_devices: maxDevices }, 'Registration evicted');
    }
    ctx.log.info(
      { jid: body.jid, device_id: body.device_id, platform: body.platform, token_hash: tokenHash(body.push_token), alert_token: body.alert_token !== null, created },
      created ? 'Push registration created' : 'Push registration updated',
    );
    res.status(created ? 201 : 200).json(registration);
  });

  // An app's settings screen: this user's devices and whether they wake (never a token).
  router.get('/api/v1/push/register', auth, migrated, async (_req, res) => {
    const { jid } = res.locals.identity as ClientIdentity;
    res.status(200).json({ registrations: await listRegistrationStatus(ctx.db, jid) });
  });

  router.delete('/api/v1/push/register', auth, jsonBody, migrated, async (req, res) => {
    const body = parseBody(deregisterSchema, req.body);
    assertOwner(res.locals.identity as ClientIdentity, body.jid);
    const removed = await deleteRegistration(ctx.db, body.jid, body.device_id);
    ctx.log.info({ jid: body.jid, device_id: body.device_id, removed }, 'Push registration deleted');
    res.status(204).end();
  });

  return router;
}
