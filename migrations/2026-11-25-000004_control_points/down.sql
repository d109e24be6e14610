ALTER TABLE verification_sessions DROP COLUMN metadata;
ALTER TABLE verification_sessions DROP COLUMN is_test;
DROP TABLE test_numbers;
ALTER TABLE tenants DROP COLUMN test_numbers_enabled;
ALTER TABLE tenants DROP CONSTRAINT tenants_approval_needs_secret;
ALTER TABLE tenants DROP COLUMN approval_on_failure;
ALTER TABLE tenants DROP COLUMN approval_timeout_ms;
ALTER TABLE tenants DROP COLUMN approval_secret_sealed;
ALTER TABLE tenants DROP COLUMN approval_url;
