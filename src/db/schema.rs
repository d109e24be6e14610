// @generated automatically by Diesel CLI.

diesel::table! {
    allowed_countries (tenant_id, country_code) {
        tenant_id -> Uuid,
        country_code -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        kind -> Text,
        prefix -> Text,
        key_hash -> Bytea,
        label -> Text,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    app_signatures (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        platform -> Text,
        signature -> Text,
        label -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        session_id -> Nullable<Uuid>,
        kind -> Text,
        ip -> Nullable<Text>,
        detail -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    pool_numbers (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        pattern -> Text,
        prefix -> Text,
        random_digits -> Int4,
        country -> Text,
        label -> Text,
        active -> Bool,
        weight -> Int4,
        last_used_at -> Nullable<Timestamptz>,
        cooldown_until -> Nullable<Timestamptz>,
        call_count -> Int8,
        failure_count -> Int8,
        consecutive_failures -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        private_key_encrypted -> Bytea,
        public_jwk -> Jsonb,
        created_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    tenants (id) {
        id -> Uuid,
        slug -> Text,
        name -> Text,
        status -> Text,
        validity_seconds -> Int4,
        max_attempts -> Int4,
        require_app_signature -> Bool,
        jwt_audience -> Text,
        jwt_ttl_seconds -> Int4,
        max_guess_probability -> Nullable<Float8>,
        ring_timeout_seconds -> Int4,
        interception_timeout_seconds -> Int4,
        rate_limit_overrides -> Jsonb,
        gateway -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        gateway_credentials_sealed -> Nullable<Bytea>,
        gateway_account_hint -> Nullable<Text>,
        approval_url -> Nullable<Text>,
        approval_secret_sealed -> Nullable<Bytea>,
        approval_timeout_ms -> Int4,
        approval_on_failure -> Text,
        test_numbers_enabled -> Bool,
        retention_days -> Int4,
    }
}

diesel::table! {
    verification_sessions (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        token_hash -> Bytea,
        phone_number -> Text,
        country -> Text,
        number_type -> Text,
        pool_number_id -> Nullable<Uuid>,
        expected_caller_id -> Text,
        status -> Text,
        attempts -> Int4,
        max_attempts -> Int4,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        app_signature -> Nullable<Text>,
        gateway -> Text,
        gateway_call_id -> Nullable<Text>,
        call_status -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        expires_at -> Timestamptz,
        verified_at -> Nullable<Timestamptz>,
        is_test -> Bool,
        metadata -> Nullable<Jsonb>,
        purged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        seq -> Int8,
        event_id -> Uuid,
        tenant_id -> Uuid,
        endpoint_id -> Uuid,
        event_type -> Text,
        session_id -> Nullable<Uuid>,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_attempt_at -> Nullable<Timestamptz>,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        url -> Text,
        description -> Text,
        events -> Array<Text>,
        secret_sealed -> Bytea,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(allowed_countries -> tenants (tenant_id));
diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(app_signatures -> tenants (tenant_id));
diesel::table! {
    test_numbers (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        phone_number -> Text,
        caller_id -> Text,
        label -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(audit_events -> tenants (tenant_id));
diesel::joinable!(audit_events -> verification_sessions (session_id));
diesel::joinable!(pool_numbers -> tenants (tenant_id));
diesel::joinable!(verification_sessions -> pool_numbers (pool_number_id));
diesel::joinable!(verification_sessions -> tenants (tenant_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_endpoints -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    allowed_countries,
    api_keys,
    app_signatures,
    audit_events,
    pool_numbers,
    signing_keys,
    tenants,
    test_numbers,
    verification_sessions,
    webhook_deliveries,
    webhook_endpoints,
);
