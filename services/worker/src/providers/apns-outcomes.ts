/**
 * How the worker treats each APNs answer, as data.
 * https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns
 * (status codes and the `reason` strings of the JSON error body).
 */
export type ApnsAction =
  /** The token is dead for this app: purge the registration if it still holds it. */
  | 'token-invalid'
  /** Try again later (backoff, Retry-After). */
  | 'retry'
  /** Our provider JWT is too old: mint a new one, then try again. */
  | 'renew-provider-token'
  /** The same request would fail again: keep the registration, log, stop. */
  | 'permanent';

export const APNS_REASON_ACTIONS: Readonly<Record<string, ApnsAction>> = {
  // 410: the device no longer takes pushes for this topic.
  Unregistered: 'token-invalid',
  ExpiredToken: 'token-invalid',
  // 400: the token is malformed or belongs to another environment / app.
  BadDeviceToken: 'token-invalid',
  DeviceTokenNotForTopic: 'token-invalid',
  // 403: the JWT is older than an hour.
  ExpiredProviderToken: 'renew-provider-token',
  // 429 / 5xx: Apple is busy or down.
  TooManyRequests: 'retry',
  TooManyProviderTokenUpdates: 'retry',
  InternalServerError: 'retry',
  ServiceUnavailable: 'retry',
  Shutdown: 'retry',
  // Everything else is a problem with our key, topic or payload: retrying cannot help.
  TopicDisallowed: 'permanent',
  BadTopic: 'permanent',
  MissingTopic: 'permanent',
  PayloadTooLarge: 'permanent',
  PayloadEmpty: 'permanent',
  InvalidProviderToken: 'permanent',
  MissingProviderToken: 'permanent',
  BadCertificate: 'permanent',
  BadCertificateEnvironment: 'permanent',
  Forbidden: 'permanent',
  InvalidPushType: 'permanent',
  BadExpirationDate: 'permanent',
  BadPriority: 'permanent',
  BadMessageId: 'permanent',
  BadCollapseId: 'permanent',
  DuplicateHeaders: 'permanent',
  BadPath: 'permanent',
  MethodNotAllowed: 'permanent',
  IdleTimeout: 'retry',
};

/** By reason first; a reason this table does not know falls back on the status code. */
export function classifyApnsAnswer(status: number, reason: string | null): ApnsAction {
  const byReason = reason ? APNS_REASON_ACTIONS[reason] : undefined;
  if (byReason) return byReason;
  if (status === 410) return 'token-invalid';
  if (status === 429 || status >= 500) return 'retry';
  return 'permanent';
}
