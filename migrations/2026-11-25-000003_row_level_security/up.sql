-- The second wall between tenants. The service's pooled connections log in as
-- `missedcall_app`, which owns nothing and cannot bypass row-level security (it needs a
-- password, or a trust rule, before it can log in; the owner only creates and migrates). Each unit of work declares whose
-- rows it may touch: `missedcall.tenant_id` for a tenant's requests, `missedcall.system = on`
-- only for the few cross-tenant tasks (key lookup, gateway callbacks, expiry, the operator).
-- A connection that declares nothing sees nothing.
-- Roles are shared by the cluster's databases, which may migrate at the same time.
DO $$
BEGIN
    BEGIN
        CREATE ROLE missedcall_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    IF NOT pg_has_role(current_user, 'missedcall_app', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT missedcall_app TO %I', current_user);
        EXCEPTION
            WHEN unique_violation THEN NULL;
        END;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO missedcall_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, api_keys, pool_numbers, app_signatures,
    allowed_countries, verification_sessions, audit_events, signing_keys TO missedcall_app;

CREATE FUNCTION missedcall_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('missedcall.tenant_id', true), '')::uuid $$;

CREATE FUNCTION missedcall_system_scope() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('missedcall.system', true), '') = 'on' $$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON tenants
    USING (id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (id = missedcall_current_tenant() OR missedcall_system_scope());

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON api_keys
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());

ALTER TABLE pool_numbers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON pool_numbers
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());

ALTER TABLE app_signatures ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON app_signatures
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());

ALTER TABLE allowed_countries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON allowed_countries
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());

ALTER TABLE verification_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON verification_sessions
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON audit_events
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());
