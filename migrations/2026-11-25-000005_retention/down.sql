DROP INDEX verification_sessions_unpurged_idx;
ALTER TABLE verification_sessions DROP COLUMN purged_at;
ALTER TABLE tenants DROP COLUMN retention_days;
