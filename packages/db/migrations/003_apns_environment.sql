-- The APNs gateway each iOS registration's token belongs to: development builds get sandbox
-- tokens, TestFlight and App Store builds production ones, and a token sent to the other
-- gateway is answered BadDeviceToken. NULL = the deployment default (APNS_USE_SANDBOX).
ALTER TABLE push_registrations
  ADD COLUMN apns_environment text CHECK (apns_environment IN ('sandbox', 'production'));

-- call-notify reads it with the rest of the device: keep that lookup an index-only scan.
DROP INDEX push_registrations_callee;
CREATE INDEX push_registrations_callee ON push_registrations (jid_local)
  INCLUDE (jid, device_id, platform, push_token, app_id, apns_environment);
