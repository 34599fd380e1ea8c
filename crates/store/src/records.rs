//! Storage rows and the writes that change them. Plain data; JSON columns are `String`s that
//! the owning crate parses.
//!
//! Rows whose columns map one to one onto their fields derive `sqlx::FromRow`, which works on
//! both backends: SQLite's `INTEGER` booleans and `BLOB`s decode to the same `bool` and `Vec<u8>`
//! as PostgreSQL's `BOOLEAN` and `BYTEA`. `ResourceRecord` maps one column by hand (`sql.rs`).

/// One change, applied with others in a single transaction by `Store::apply`.
#[derive(Debug, Clone)]
pub enum Write {
    PutSetting {
        name: String,
        value: String,
    },
    /// Adds a setting that must not exist yet: `Error::Conflict` when it does (another node
    /// created it first).
    InsertSetting {
        name: String,
        value: String,
    },
    PutTenant(TenantRecord),
    PutSubscription(SubscriptionRecord),
    /// Inserts or replaces a resource, guarded by `expect`. The store bumps `version` by one on
    /// replace and keeps `resource_identity_links` in step with `user_identity_keys`.
    PutResource {
        record: ResourceRecord,
        expect: Expect,
    },
    /// Deletes a resource by key. Deleting an absent row is not an error.
    DeleteResource {
        key: String,
    },
    PutPrincipal(PrincipalRecord),
    /// Deletes a principal with its credentials and its role assignments.
    DeletePrincipal {
        object_id: String,
    },
    PutCredential(CredentialRecord),
    DeleteCredential {
        id: String,
    },
    PutFederatedCredential(FederatedCredentialRecord),
    DeleteFederatedCredential {
        key: String,
    },
    /// Deletes every federated credential of one identity.
    DeleteFederatedCredentialsOf {
        identity_key: String,
    },
    PutRoleDefinition(RoleDefinitionRecord),
    DeleteRoleDefinition {
        id: String,
    },
    /// Inserts a role assignment. A second assignment of the same role to the same principal at
    /// the same scope is a `Conflict`.
    InsertRoleAssignment(RoleAssignmentRecord),
    DeleteRoleAssignment {
        key: String,
    },
    /// Deletes every assignment at a scope or below it (lower-cased scope key).
    DeleteRoleAssignmentsUnder {
        scope_key: String,
    },
    PutSigningKey(SigningKeyRecord),
    PutHost(HostRecord),
    AppendActivityEvent(NewEventRecord),
    AppendSignInEvent(NewEventRecord),
    /// Counts into an aggregated activity event: inserts it when its key is new, else adds
    /// `count` to the stored event's count and keeps the later `last_timestamp`.
    AddToActivityAggregate(EventAggregate),
    /// The same for a sign-in event.
    AddToSignInAggregate(EventAggregate),
    /// Inserts or replaces a Key Vault secret's row (its name, current version, deletion state).
    PutVaultSecret(VaultSecretRecord),
    /// Inserts or replaces one version of a secret.
    PutVaultSecretVersion(VaultSecretVersionRecord),
    /// Deletes a secret with every version, for good.
    PurgeVaultSecret {
        vault_key: String,
        name_key: String,
    },
    /// Deletes every secret of a vault, for good.
    PurgeVault {
        vault_key: String,
    },
}

/// The setting every state-changing `Store::apply` increments in its own transaction (an
/// integer as text), so a node can notice another node's writes by reading one row.
pub const CHANGE_COUNTER_SETTING: &str = "change-counter";

impl Write {
    /// Whether the write changes what callers see (rows other than settings and the two logs);
    /// `Store::apply` bumps [`CHANGE_COUNTER_SETTING`] when any write in a batch does.
    pub fn changes_state(&self) -> bool {
        !matches!(
            self,
            Write::PutSetting { .. }
                | Write::InsertSetting { .. }
                | Write::AppendActivityEvent(_)
                | Write::AppendSignInEvent(_)
        )
    }
}

/// The condition a `PutResource` write must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create only: fails with `Conflict` when the key exists.
    Absent,
    /// Replace only the row at exactly this version: fails with `Conflict` otherwise.
    Version(i64),
    /// Create or replace unconditionally.
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantRecord {
    pub id: String,
    pub display_name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionRecord {
    pub id: String,
    pub tenant_id: String,
    pub display_name: String,
    pub state: String,
    pub created_at: i64,
}

/// An ARM resource or resource group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// Lower-cased `id`.
    pub key: String,
    /// The id as it was created.
    pub id: String,
    pub subscription_id: String,
    /// Lower-cased resource group name; `None` for subscription-level resources.
    pub resource_group_key: Option<String>,
    /// Lower-cased `Namespace/type`; `microsoft.resources/resourcegroups` for groups.
    pub type_key: String,
    pub name: String,
    pub location: String,
    /// JSON object.
    pub tags: String,
    /// JSON object.
    pub properties: String,
    /// JSON `identity` block, if the resource has one.
    pub identity: Option<String>,
    /// The host the resource runs on, for compute resources.
    pub host_id: Option<String>,
    /// Lower-cased ids of the user-assigned identities the resource holds.
    pub user_identity_keys: Vec<String>,
    /// Starts at 1; each replace adds one.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PrincipalRecord {
    pub object_id: String,
    pub tenant_id: String,
    /// `ServicePrincipal`, `ManagedIdentity` or `User`.
    pub kind: String,
    pub app_id: String,
    pub display_name: String,
    /// For managed identities, the lower-cased id of the resource that owns the identity: the
    /// compute resource for a system-assigned one, the identity resource for a user-assigned one.
    pub managed_by_key: Option<String>,
    /// `SystemAssigned` or `UserAssigned` for managed identities.
    pub identity_kind: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CredentialRecord {
    pub id: String,
    pub principal_id: String,
    /// `secret` or `certificate`.
    pub kind: String,
    pub display_name: String,
    /// HMAC of a client secret (never the secret).
    pub secret_hash: Option<Vec<u8>>,
    /// The first characters of a client secret, as Entra shows them.
    pub hint: Option<String>,
    pub thumbprint_sha1: Option<String>,
    pub thumbprint_sha256: Option<String>,
    pub certificate_der: Option<Vec<u8>>,
    pub expires_at: i64,
    pub created_at: i64,
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("id", &self.id)
            .field("principal_id", &self.principal_id)
            .field("kind", &self.kind)
            .field("hint", &self.hint)
            .field("thumbprint_sha1", &self.thumbprint_sha1)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FederatedCredentialRecord {
    pub key: String,
    pub id: String,
    pub identity_key: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    /// JSON array of strings.
    pub audiences: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleDefinitionRecord {
    pub id: String,
    pub role_name: String,
    pub role_type: String,
    pub description: String,
    /// JSON array of scopes.
    pub assignable_scopes: String,
    /// JSON array of permission blocks.
    pub permissions: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleAssignmentRecord {
    /// Lower-cased `id`.
    pub key: String,
    pub id: String,
    /// The assignment's GUID name.
    pub name: String,
    pub scope: String,
    pub scope_key: String,
    /// GUID of the role definition.
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub description: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub tenant_id: String,
    pub algorithm: String,
    /// The private key, sealed by `crypto`'s envelope encryption.
    pub private_key: Vec<u8>,
    pub certificate_der: Vec<u8>,
    pub created_at: i64,
    /// The key signs from this time on (it is published before).
    pub signs_from: i64,
    /// The key stops signing at this time, once rotated out.
    pub signs_until: Option<i64>,
    /// The key leaves the JWKS at this time, after its last token expired.
    pub published_until: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("signs_from", &self.signs_from)
            .field("signs_until", &self.signs_until)
            .field("published_until", &self.published_until)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HostRecord {
    pub id: String,
    /// `pending`, `active` or `revoked`.
    pub state: String,
    pub join_token_hash: Option<Vec<u8>>,
    pub join_token_expires_at: Option<i64>,
    pub certificate_sha256: Option<String>,
    pub certificate_not_after: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An activity or sign-in event to append. `subscription_id`, `resource_group_key` and
/// `resource_key` are used by activity events; `principal_id`, `app_id` and `result` by sign-in
/// events; the whole event is in `body` (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEventRecord {
    pub event_id: String,
    pub tenant_id: String,
    pub subscription_id: Option<String>,
    pub resource_group_key: Option<String>,
    pub resource_key: Option<String>,
    pub correlation_id: Option<String>,
    pub principal_id: Option<String>,
    pub app_id: Option<String>,
    pub status: String,
    pub timestamp: i64,
    pub body: String,
}

/// An event that stands for several alike ones: the first one's record, the key that names the
/// aggregate (unique per log), and how many events (with the newest time) this write adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAggregate {
    /// The first event; its `timestamp` is when the aggregate began.
    pub record: NewEventRecord,
    pub aggregate_key: String,
    /// Events this write adds, at least 1.
    pub count: i64,
    /// The newest of the events this write adds.
    pub last_timestamp: i64,
}

/// A stored event with its sequence number (the order of appending).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRecord {
    pub seq: i64,
    pub event_id: String,
    pub timestamp: i64,
    pub body: String,
    /// How many events this one stands for (1 unless aggregated).
    pub event_count: i64,
    /// The newest of those events (`timestamp` unless aggregated).
    pub last_timestamp: i64,
}

/// One of the two logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLog {
    Activity,
    SignIn,
}

/// Which events to list: newest last, `seq > after_seq`, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Activity events: the subscription. Sign-in events: the tenant.
    pub partition: String,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub principal_id: Option<String>,
    pub resource_group_key: Option<String>,
    pub correlation_id: Option<String>,
    /// Only events appended after this sequence number (paging oldest first).
    pub after_seq: i64,
    /// Only events appended before this sequence number (paging newest first).
    pub before_seq: Option<i64>,
    /// Newest first (as the activity log and Graph's sign-in log list), else oldest first.
    pub newest_first: bool,
    pub limit: i64,
}

/// Which resources to list. Every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct ResourceFilter {
    pub subscription_id: Option<String>,
    pub resource_group_key: Option<String>,
    pub type_key: Option<String>,
    pub host_id: Option<String>,
    /// Only resources whose key starts with this prefix (children of a resource).
    pub key_prefix: Option<String>,
}

/// A page request: rows after `after_key`, at most `limit`.
#[derive(Debug, Clone)]
pub struct Page {
    pub after_key: Option<String>,
    pub limit: i64,
}

impl Page {
    pub fn first(limit: i64) -> Self {
        Page { after_key: None, limit }
    }
}

/// A Key Vault secret: the name and its state; values live in [`VaultSecretVersionRecord`]s.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VaultSecretRecord {
    /// Lower-cased id of the vault resource.
    pub vault_key: String,
    /// Lower-cased secret name (names are case-insensitive in Key Vault).
    pub name_key: String,
    /// The name as first set.
    pub name: String,
    pub current_version: String,
    /// Set while the secret is soft-deleted.
    pub deleted_at: Option<i64>,
    pub scheduled_purge_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version of a secret. `value` is sealed by `crypto`'s envelope encryption.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VaultSecretVersionRecord {
    pub vault_key: String,
    pub name_key: String,
    /// 32 lower-case hex digits.
    pub version: String,
    pub value: Vec<u8>,
    pub content_type: Option<String>,
    /// JSON object.
    pub tags: String,
    pub enabled: bool,
    pub not_before: Option<i64>,
    pub expires: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for VaultSecretVersionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSecretVersionRecord")
            .field("vault_key", &self.vault_key)
            .field("name_key", &self.name_key)
            .field("version", &self.version)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}
