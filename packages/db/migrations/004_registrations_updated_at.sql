-- The worker's daily clean-up deletes registrations not updated for REGISTRATION_MAX_AGE_DAYS;
-- without this index each run scans the whole table. MAX_DEVICES_PER_USER's eviction orders one
-- JID's few rows and is served by the primary key instead.
CREATE INDEX IF NOT EXISTS push_registrations_updated_at ON push_registrations (updated_at);
