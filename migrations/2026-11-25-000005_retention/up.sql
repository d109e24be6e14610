-- How long a tenant's phone numbers, client addresses and audit trail are kept.
ALTER TABLE tenants ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 30
    CHECK (retention_days BETWEEN 1 AND 3650);
-- Sessions whose personal data was purged.
ALTER TABLE verification_sessions ADD COLUMN purged_at TIMESTAMPTZ;
CREATE INDEX verification_sessions_unpurged_idx ON verification_sessions (created_at)
    WHERE purged_at IS NULL;
