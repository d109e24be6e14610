DROP TABLE signing_keys;
DROP TABLE audit_events;
DROP TABLE verification_sessions;
DROP TABLE allowed_countries;
DROP TABLE app_signatures;
DROP TABLE pool_numbers;
DROP TABLE api_keys;
DROP TABLE tenants;
