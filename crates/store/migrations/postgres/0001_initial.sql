-- Initial schema (PostgreSQL dialect). Keep parallel with ../sqlite/0001_initial.sql.
-- Times are Unix milliseconds unless a column name says otherwise; JSON is stored as TEXT.

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    display_name TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every ARM resource, resource groups included. `key` is the lower-cased id.
CREATE TABLE resources (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    resource_group_key TEXT,
    type_key TEXT NOT NULL,
    name TEXT NOT NULL,
    location TEXT NOT NULL,
    tags TEXT NOT NULL,
    properties TEXT NOT NULL,
    identity TEXT,
    host_id TEXT,
    -- Space-separated lower-cased ids of held user-assigned identities (also in the link table).
    user_identity_keys TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX resources_by_group ON resources (subscription_id, resource_group_key, type_key, key);
CREATE INDEX resources_by_type ON resources (subscription_id, type_key, key);
CREATE INDEX resources_by_host ON resources (host_id, key);

-- Which user-assigned identities each resource holds, kept in step with `resources.identity`.
CREATE TABLE resource_identity_links (
    resource_key TEXT NOT NULL REFERENCES resources(key) ON DELETE CASCADE,
    identity_key TEXT NOT NULL,
    PRIMARY KEY (resource_key, identity_key)
);
CREATE INDEX resource_identity_links_by_identity ON resource_identity_links (identity_key);

-- Service principals, managed identities' principals and users.
CREATE TABLE principals (
    object_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    app_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    managed_by_key TEXT,
    identity_kind TEXT,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX principals_by_managed_by ON principals (managed_by_key);

CREATE TABLE principal_credentials (
    id TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals(object_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    display_name TEXT NOT NULL,
    secret_hash BYTEA,
    hint TEXT,
    thumbprint_sha1 TEXT,
    thumbprint_sha256 TEXT,
    certificate_der BYTEA,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX principal_credentials_by_principal ON principal_credentials (principal_id);

CREATE TABLE federated_credentials (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    name TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    audiences TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX federated_credentials_by_identity ON federated_credentials (identity_key);

CREATE TABLE role_definitions (
    id TEXT PRIMARY KEY,
    role_name TEXT NOT NULL,
    role_type TEXT NOT NULL,
    description TEXT NOT NULL,
    assignable_scopes TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE role_assignments (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    description TEXT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (principal_id, role_definition_id, scope_key)
);
CREATE INDEX role_assignments_by_principal ON role_assignments (principal_id);
CREATE INDEX role_assignments_by_scope ON role_assignments (scope_key);
CREATE INDEX role_assignments_by_name ON role_assignments (name);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    certificate_der BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    signs_from BIGINT NOT NULL,
    signs_until BIGINT,
    published_until BIGINT
);

CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    join_token_hash BYTEA,
    join_token_expires_at BIGINT,
    certificate_sha256 TEXT,
    certificate_not_after BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Key Vault secrets: one row per name, one row per version.
CREATE TABLE vault_secrets (
    vault_key TEXT NOT NULL,
    name_key TEXT NOT NULL,
    name TEXT NOT NULL,
    current_version TEXT NOT NULL,
    deleted_at BIGINT,
    scheduled_purge_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (vault_key, name_key)
);
CREATE INDEX vault_secrets_by_purge ON vault_secrets (scheduled_purge_at);

CREATE TABLE vault_secret_versions (
    vault_key TEXT NOT NULL,
    name_key TEXT NOT NULL,
    version TEXT NOT NULL,
    value BYTEA NOT NULL,
    content_type TEXT,
    tags TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    not_before BIGINT,
    expires BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (vault_key, name_key, version),
    FOREIGN KEY (vault_key, name_key) REFERENCES vault_secrets(vault_key, name_key) ON DELETE CASCADE
);

CREATE TABLE activity_events (
    seq BIGSERIAL PRIMARY KEY,
    event_data_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    resource_group_key TEXT,
    resource_key TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    status TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX activity_events_by_time ON activity_events (subscription_id, timestamp);

CREATE TABLE sign_in_events (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    principal_id TEXT,
    app_id TEXT,
    result TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX sign_in_events_by_time ON sign_in_events (tenant_id, timestamp);
CREATE INDEX sign_in_events_by_principal ON sign_in_events (principal_id, timestamp);

-- Client-assertion `jti` values seen, kept until the assertion expires.
CREATE TABLE used_assertions (
    jti_key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Background jobs take a lease so that one node of several runs each.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
