/**
 * How the worker treats each FCM HTTP v1 answer, as data.
 * https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
 * Errors come in google.rpc.Status form; the FCM code is in a
 * `type.googleapis.com/google.firebase.fcm.v1.FcmError` detail, and an INVALID_ARGUMENT about
 * the token carries a `google.rpc.BadRequest` detail whose field violation names `message.token`.
 */
export type FcmAction = 'token-invalid' | 'retry' | 'refresh-access-token' | 'permanent';

export const FCM_ERROR_ACTIONS: Readonly<Record<string, FcmAction>> = {
  UNREGISTERED: 'token-invalid', // 404: app uninstalled or token expired
  SENDER_ID_MISMATCH: 'token-invalid', // 403: token belongs to another Firebase project
  QUOTA_EXCEEDED: 'retry', // 429, with Retry-After
  UNAVAILABLE: 'retry', // 503
  INTERNAL: 'retry', // 500
  UNAUTHENTICATED: 'refresh-access-token', // 401: our OAuth token expired or was revoked
  THIRD_PARTY_AUTH_ERROR: 'permanent', // APNs credentials for an iOS app in Firebase
  PERMISSION_DENIED: 'permanent',
  // A bare NOT_FOUND (no UNREGISTERED detail) is not about the token: a wrong project id, a
  // misrouted FCM_API_URL or proxy answers so for every message, and purging on it would wipe
  // every Android registration. Left to the default: permanent, registration kept.
};

interface RpcDetail {
  '@type'?: string;
  errorCode?: string;
  fieldViolations?: { field?: string }[];
}

export interface FcmErrorBody {
  error?: { code?: number; status?: string; message?: string; details?: RpcDetail[] };
}

/** The FCM error code of a google.rpc error body, else its rpc status. */
export function fcmErrorCode(body: FcmErrorBody | null): string | null {
  const details = body?.error?.details ?? [];
  const fcm = details.find((d) => d['@type']?.endsWith('google.firebase.fcm.v1.FcmError'));
  return fcm?.errorCode ?? body?.error?.status ?? null;
}

function isAboutToken(body: FcmErrorBody | null): boolean {
  const details = body?.error?.details ?? [];
  return details.some(
    (d) => d['@type']?.endsWith('google.rpc.BadRequest') && (d.fieldViolations ?? []).some((v) => v.field === 'message.token'),
  );
}

export function classifyFcmAnswer(status: number, body: FcmErrorBody | null): { action: FcmAction; code: string } {
  const code = fcmErrorCode(body) ?? `HTTP ${status}`;
  if (code === 'INVALID_ARGUMENT') return { action: isAboutToken(body) ? 'token-invalid' : 'permanent', code };
  const byCode = FCM_ERROR_ACTIONS[code];
  if (byCode) return { action: byCode, code };
  if (status === 401) return { action: 'refresh-access-token', code };
  if (status === 429 || status >= 500) return { action: 'retry', code };
  return { action: 'permanent', code };
}
