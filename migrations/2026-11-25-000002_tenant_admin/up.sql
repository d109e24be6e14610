-- A tenant's own gateway account: sealed with the master key (AES-256-GCM, the tenant id as
-- associated data); the hint (`AC…1234`) is all any query shows.
ALTER TABLE tenants ADD COLUMN gateway_credentials_sealed BYTEA;
ALTER TABLE tenants ADD COLUMN gateway_account_hint TEXT;
ALTER TABLE tenants ADD CONSTRAINT tenants_gateway_known CHECK (gateway IS NULL OR gateway IN ('simulator', 'twilio'));
ALTER TABLE tenants ADD CONSTRAINT tenants_credentials_need_gateway
    CHECK (gateway_credentials_sealed IS NULL OR gateway IS NOT NULL);

-- Listing a tenant's keys and signatures in creation order.
CREATE INDEX app_signatures_tenant_idx ON app_signatures (tenant_id, created_at);
-- Statistics read sessions by creation time; the tenant/created index serves them.
