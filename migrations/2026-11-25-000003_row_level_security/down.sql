DROP POLICY tenant_wall ON audit_events;
ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY;
DROP POLICY tenant_wall ON verification_sessions;
ALTER TABLE verification_sessions DISABLE ROW LEVEL SECURITY;
DROP POLICY tenant_wall ON allowed_countries;
ALTER TABLE allowed_countries DISABLE ROW LEVEL SECURITY;
DROP POLICY tenant_wall ON app_signatures;
ALTER TABLE app_signatures DISABLE ROW LEVEL SECURITY;
DROP POLICY tenant_wall ON pool_numbers;
ALTER TABLE pool_numbers DISABLE ROW LEVEL SECURITY;
DROP POLICY tenant_wall ON api_keys;
ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY;
DROP POLICY tenant_wall ON tenants;
ALTER TABLE tenants DISABLE ROW LEVEL SECURITY;
DROP FUNCTION missedcall_system_scope();
DROP FUNCTION missedcall_current_tenant();
-- The role is shared by every database of the cluster; only this database's grants go.
REVOKE ALL ON tenants, api_keys, pool_numbers, app_signatures, allowed_countries,
    verification_sessions, audit_events, signing_keys FROM missedcall_app;
REVOKE USAGE ON SCHEMA public FROM missedcall_app;
