import { Router } from 'express';
import type { AppContext } from '../../context.ts';
import { requireClientJwt, type ClientIdentity } from '../auth.ts';
import { HttpError } from '../errors.ts';
import { callIdSchema } from '../validation.ts';

/**
 * What a woken app asks when no INVITE arrives: is the call still ringing? Only calls that
 * pushed one of the caller's own devices exist for them; any other call_id, another user's call
 * included, is the same 404.
 */
export function callRoutes(ctx: AppContext): Router {
  const router = Router();
  router.get('/api/v1/push/calls/:call_id', requireClientJwt(ctx.verifier), async (req, res) => {
    const parsed = callIdSchema.safeParse(req.params.call_id);
    if (!parsed.success) throw new HttpError('invalid_request', `call_id: ${parsed.error.issues[0]!.message}`);
    const { jid } = res.locals.identity as ClientIdentity;
    const view = await ctx.producer.calls.view(parsed.data, jid);
    if (!view) throw new HttpError('not_found', 'no such call');
    res.status(200).json({ call_id: parsed.data, ...view });
  });
  return router;
}
