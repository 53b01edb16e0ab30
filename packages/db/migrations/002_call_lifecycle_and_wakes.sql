-- Round 2: missed-call alerts and wake tracking.
-- alert_token: an iOS app's ordinary remote-notification token (PushKit tokens take only VoIP
-- pushes, so a visible missed-call alert needs its own token). Never returned, never logged.
ALTER TABLE push_registrations ADD COLUMN alert_token text;
-- An alert token moves with the phone like a push token: registering it clears it elsewhere.
CREATE INDEX push_registrations_alert_token ON push_registrations (alert_token) WHERE alert_token IS NOT NULL;

-- Wake tracking: when Apple or Google last accepted a call push, when the REGISTER that followed
-- one was last seen and how long after the push, and how many accepted pushes in a row went
-- without such a REGISTER.
ALTER TABLE push_registrations ADD COLUMN last_push_at timestamptz;
ALTER TABLE push_registrations ADD COLUMN last_wake_at timestamptz;
ALTER TABLE push_registrations ADD COLUMN last_wake_ms integer;
ALTER TABLE push_registrations ADD COLUMN unanswered_pushes integer NOT NULL DEFAULT 0;

-- The callee index carried push_token as an INCLUDE column, and btree rows are limited to about
-- 2.7 kB: a 4096-character FCM token (which the API accepts) could not be stored at all. The
-- lookup by jid_local stays an index scan; the tokens come from the table.
DROP INDEX push_registrations_callee;
CREATE INDEX push_registrations_callee ON push_registrations (jid_local);
