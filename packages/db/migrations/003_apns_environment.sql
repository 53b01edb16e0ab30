-- The APNs gateway each iOS registration's token belongs to: development builds get sandbox
-- tokens, TestFlight and App Store builds production ones, and a token sent to the other
-- gateway is answered BadDeviceToken. NULL = the deployment default (APNS_USE_SANDBOX).
ALTER TABLE push_registrations
  ADD COLUMN apns_environment text CHECK (apns_environment IN ('sandbox', 'production'));
