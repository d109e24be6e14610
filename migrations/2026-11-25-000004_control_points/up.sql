-- The tenant's approval hook: asked before each call; its signing secret is sealed with the
-- master key.
ALTER TABLE tenants ADD COLUMN approval_url TEXT CHECK (approval_url IS NULL OR length(approval_url) <= 2000);
ALTER TABLE tenants ADD COLUMN approval_secret_sealed BYTEA;
ALTER TABLE tenants ADD COLUMN approval_timeout_ms INTEGER NOT NULL DEFAULT 2000
    CHECK (approval_timeout_ms BETWEEN 100 AND 10000);
ALTER TABLE tenants ADD COLUMN approval_on_failure TEXT NOT NULL DEFAULT 'DENY'
    CHECK (approval_on_failure IN ('ALLOW', 'DENY'));
ALTER TABLE tenants ADD CONSTRAINT tenants_approval_needs_secret
    CHECK (approval_url IS NULL OR approval_secret_sealed IS NOT NULL);
ALTER TABLE tenants ADD COLUMN test_numbers_enabled BOOLEAN NOT NULL DEFAULT TRUE;

-- Numbers that verify without a call, for QA, automated tests and app-store review.
CREATE TABLE test_numbers (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    phone_number TEXT NOT NULL CHECK (phone_number ~ '^\+[1-9][0-9]{1,14}$'),
    caller_id TEXT NOT NULL CHECK (caller_id ~ '^\+[1-9][0-9]{1,14}$'),
    label TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, phone_number)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON test_numbers TO missedcall_app;
ALTER TABLE test_numbers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON test_numbers
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());

ALTER TABLE verification_sessions ADD COLUMN is_test BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE verification_sessions ADD COLUMN metadata JSONB;
