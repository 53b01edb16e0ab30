-- One row per (user, device). jid is stored lower-case; jid_local and jid_domain are derived
-- so the call-notify lookup (by username, optionally narrowed by domain) is one index scan.
CREATE TABLE push_registrations (
  jid          text        NOT NULL,
  device_id    uuid        NOT NULL,
  platform     text        NOT NULL CHECK (platform IN ('ios', 'android')),
  push_token   text        NOT NULL,
  app_id       text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  jid_local    text        GENERATED ALWAYS AS (split_part(jid, '@', 1)) STORED,
  -- FCM tokens reach 4096 characters, past btree's row limit, so uniqueness is kept on a digest
  -- (md5 because generated columns need an immutable function; tokens are not attacker-chosen
  -- binary, so collisions are not a concern here).
  token_digest bytea       GENERATED ALWAYS AS (decode(md5(push_token), 'hex')) STORED,
  PRIMARY KEY (jid, device_id),
  CHECK (jid = lower(jid))
);

-- A token belongs to one device: registering it elsewhere moves it (a phone that changed hands).
CREATE UNIQUE INDEX push_registrations_token ON push_registrations (platform, token_digest);

-- call-notify without a domain: every JID whose local part is the callee's username.
-- With a domain the primary key's (jid) prefix answers instead.
CREATE INDEX push_registrations_callee ON push_registrations (jid_local)
  INCLUDE (jid, device_id, platform, push_token, app_id);
