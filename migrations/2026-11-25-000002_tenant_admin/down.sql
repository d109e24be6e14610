DROP INDEX app_signatures_tenant_idx;
ALTER TABLE tenants DROP CONSTRAINT tenants_credentials_need_gateway;
ALTER TABLE tenants DROP CONSTRAINT tenants_gateway_known;
ALTER TABLE tenants DROP COLUMN gateway_account_hint;
ALTER TABLE tenants DROP COLUMN gateway_credentials_sealed;
