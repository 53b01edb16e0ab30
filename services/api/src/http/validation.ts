import { z } from 'zod';
import { CALL_END_REASONS } from '@veil/queue/contracts';
import { badRequest } from './errors.ts';

// Unknown fields are ignored (zod strips them); a known field of the wrong type is a 400.

// `local@domain`, lower-cased: no '/', no whitespace or control characters, one '@'.
const JID_PART = /^[^\s@/\p{Cc}]+$/u;
export const jidSchema = z
  .string({ error: 'must be a string' })
  .max(511, 'must be at most 511 characters')
  .refine((v) => {
    const [local, domain, extra] = v.split('@');
    return (
      extra === undefined &&
      local !== undefined && domain !== undefined &&
      JID_PART.test(local) && local.length <= 255 &&
      JID_PART.test(domain) && domain.length <= 255
    );
  }, 'must be local@domain without whitespace or "/"')
  .transform((v) => v.toLowerCase());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const deviceIdSchema = z
  .string({ error: 'must be a string' })
  .regex(UUID, 'must be a UUID')
  .transform((v) => v.toLowerCase());

const platformSchema = z.enum(['ios', 'android'], { error: 'must be "ios" or "android"' });

// APNs device tokens are hex (32 bytes today; Apple allows them to grow, hence up to 200 chars).
const IOS_TOKEN = /^(?:[0-9a-fA-F]{2}){32,100}$/;
// FCM registration tokens: URL-safe base64-ish with ':' and '.' separators.
const ANDROID_TOKEN = /^[A-Za-z0-9_:.-]{1,4096}$/;
// Reverse-DNS: bundle identifiers and Android application ids.
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

export const registerSchema = z
  .object({
    jid: jidSchema,
    device_id: deviceIdSchema,
    platform: platformSchema,
    push_token: z.string({ error: 'must be a string' }).max(4096, 'must be at most 4096 characters'),
    app_id: z
      .string({ error: 'must be a string' })
      .regex(APP_ID, 'must be reverse-DNS characters, at most 255')
      .nullish()
      .transform((v) => v ?? null),
    // iOS: the ordinary remote-notification token, for missed-call alerts (a PushKit token takes
    // only VoIP pushes). Checked like an iOS push_token below; ignored for Android.
    alert_token: z.string({ error: 'must be a string' }).nullish(),
    // The APNs gateway of the token (development builds: sandbox); unset = the deployment default.
    apns_environment: z
      .enum(['sandbox', 'production'], { error: 'must be "sandbox" or "production"' })
      .nullish()
      .transform((v) => v ?? null),
  })
  .superRefine((body, ctx) => {
    if (body.platform === 'ios' && body.alert_token != null && !IOS_TOKEN.test(body.alert_token)) {
      ctx.addIssue({ code: 'custom', path: ['alert_token'], message: 'must be an even-length hex string of 64 to 200 characters' });
    }
    const ok = body.platform === 'ios' ? IOS_TOKEN.test(body.push_token) : ANDROID_TOKEN.test(body.push_token);
    if (!ok) {
      ctx.addIssue({
        code: 'custom',
        path: ['push_token'],
        message:
          body.platform === 'ios'
            ? 'must be an even-length hex string of 64 to 200 characters for ios'
            : 'must be 1 to 4096 characters of [A-Za-z0-9_:.-] for android',
      });
    }
  })
  .transform((body) => ({
    ...body,
    push_token: body.platform === 'ios' ? body.push_token.toLowerCase() : body.push_token,
    alert_token: body.platform === 'ios' && body.alert_token ? body.alert_token.toLowerCase() : null,
    // Android has one FCM environment: the field is ignored there, never stored.
    apns_environment: body.platform === 'ios' ? body.apns_environment : null,
  }));

export const deregisterSchema = z.object({ jid: jidSchema, device_id: deviceIdSchema });

// Kamailio's $rU: a SIP user part. '@', '/' and whitespace would never name one of our JIDs.
const USERNAME = /^[^\s@/\p{Cc}]{1,255}$/u;
const DOMAIN = /^[A-Za-z0-9.:[\]-]{1,255}$/;

/** Absent, null and "" all mean "not given" for the optional text fields Kamailio fills in. */
const optionalText = (max: number) =>
  z
    .string({ error: 'must be a string' })
    .max(max, `must be at most ${max} characters`)
    .nullish()
    .transform((v) => v ?? '');

export const callNotifySchema = z.object({
  callee_username: z
    .string({ error: 'must be a string' })
    .regex(USERNAME, 'must be 1 to 255 characters without whitespace, "@" or "/"')
    .transform((v) => v.toLowerCase()),
  caller_username: optionalText(255),
  caller_display_name: optionalText(255),
  call_id: z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(1024, 'must be at most 1024 characters'),
  call_type: z
    .enum(['audio', 'video'], { error: 'must be "audio" or "video"' })
    .nullish()
    .transform((v) => v ?? 'audio'),
  callee_domain: z.preprocess(
    (v) => (v === '' ? null : v),
    z
      .string({ error: 'must be a string' })
      .regex(DOMAIN, 'must be a domain name or address')
      .nullish()
      .transform((v) => (v ? v.toLowerCase() : null)),
  ),
});

const callIdSchema = z.string({ error: 'must be a string' }).min(1, 'must not be empty').max(1024, 'must be at most 1024 characters');

export const callEndedSchema = z.object({
  callee_username: callNotifySchema.shape.callee_username,
  call_id: callIdSchema,
  reason: z.enum(CALL_END_REASONS, { error: 'must be "cancelled", "timeout", "answered" or "declined"' }),
  callee_domain: callNotifySchema.shape.callee_domain,
});

/** A User-Agent is informational: a giant one is cut, not refused (a REGISTER is not to be argued with). */
const USER_AGENT_MAX = 256;

export const registeredSchema = z.object({
  username: callNotifySchema.shape.callee_username,
  // Informational: the user is found as call-notify finds its callee (SIP_DOMAIN rules).
  domain: z.string({ error: 'must be a string' }).max(255, 'must be at most 255 characters').nullish(),
  instance: z.string({ error: 'must be a string' }).max(1024, 'must be at most 1024 characters').nullish().transform((v) => v ?? ''),
  user_agent: z
    .string({ error: 'must be a string' })
    .nullish()
    .transform((v) => (v ?? '').slice(0, USER_AGENT_MAX)),
});

/** The device id inside a `+sip.instance` value: `"<urn:uuid:...>"`, `<urn:uuid:...>` or bare, any case. */
export function instanceDeviceId(instance: string): string | null {
  const m = /^["<\s]*(?:urn:uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})[>"\s]*$/i.exec(instance);
  return m ? m[1]!.toLowerCase() : null;
}

export { callIdSchema };

export type RegisterBody = z.infer<typeof registerSchema>;
export type CallNotifyBody = z.infer<typeof callNotifySchema>;

/** Parses a body or throws a 400 whose message names the first offending field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('body: must be a JSON object');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.') || 'body';
  const missing = issue.code === 'invalid_type' && (body as Record<string, unknown>)[field] === undefined;
  throw badRequest(`${field}: ${missing ? 'is required' : issue.message}`);
}
