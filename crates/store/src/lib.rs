//! The database: schema, migrations, queries and transactions. The only crate that speaks SQL.
//!
//! [`Store`] is one trait with two implementations, [`SqliteStore`] (the embedded default, WAL
//! with `synchronous=FULL`) and [`PostgresStore`] (several servers may share one database).
//! Both run the same query text (`sql.rs`), expanded per backend, and each has its own migration
//! history under `migrations/{sqlite,postgres}`, kept parallel, embedded with its checksums by
//! `sqlx::migrate!` (`migrate.rs`; opening refuses a database whose applied migration was edited
//! since, or that is newer than this build).
//!
//! Typical use: [`open`] a store from a database URL (it migrates), read with the `get_*` and
//! `list_*` methods, and change anything with [`Store::apply`], which runs a batch of [`Write`]s
//! in one transaction: either all of them are durable when it returns `Ok`, or none is.
//!
//! Rows are plain structs in [`records`], decoded with `sqlx::FromRow`; `server` and the semantic
//! crates convert them to and from domain types by hand.

pub mod records;

mod migrate;
mod postgres;
mod sql;
mod sqlite;

use async_trait::async_trait;

pub use crate::postgres::PostgresStore;
pub use crate::records::*;
pub use crate::sqlite::SqliteStore;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A conditional write found the row changed, or a unique key already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write referred to a row that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database cannot be reached or refused the connection.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database URL or options are not usable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// A stored row did not decode; the database holds something this version cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The schema cannot be brought up to date: a migration failed, an applied migration was
    /// edited since, or the database is newer than this build.
    #[error("database migration: {0}")]
    Migration(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Rows [`Store::prune_events`] deletes per transaction.
pub const PRUNE_CHUNK_ROWS: i64 = 5000;

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict(db.message().to_owned())
            }
            // PostgreSQL's connection exceptions (08), operator intervention such as a shutdown
            // in progress (57) and insufficient resources (53): the database cannot serve now.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|code| {
                    ["08", "57", "53"].iter().any(|class| code.starts_with(class))
                }) =>
            {
                Error::Unavailable(error)
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Error::Unavailable(error),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                Error::Corrupt(error.to_string())
            }
            _ => Error::Database(error),
        }
    }
}

/// Opens the store a URL names and brings its schema up to date.
///
/// `sqlite://PATH` (created if missing) or `postgres://...` / `postgresql://...`.
pub async fn open(database_url: &str) -> Result<Box<dyn Store>> {
    if database_url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(database_url).await?))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Box::new(PostgresStore::open(database_url).await?))
    } else {
        Err(Error::Config(format!(
            "unsupported database url (expected sqlite:// or postgres://): {}",
            redact_url(database_url)
        )))
    }
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:[redacted]{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The persistent state of one Ambient deployment.
///
/// Reads return rows as they were last committed. Every change goes through [`Store::apply`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is (`sqlite` or `postgres`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip that proves the database answers.
    async fn ping(&self) -> Result<()>;

    /// Runs `writes` in one transaction, in order. On `Err` nothing was written.
    async fn apply(&self, writes: Vec<Write>) -> Result<()>;

    async fn get_setting(&self, name: &str) -> Result<Option<String>>;

    async fn get_tenant(&self, id: &str) -> Result<Option<TenantRecord>>;
    async fn list_tenants(&self) -> Result<Vec<TenantRecord>>;

    async fn get_subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>>;
    async fn list_subscriptions(&self) -> Result<Vec<SubscriptionRecord>>;

    /// A resource (or resource group) by its lower-cased id.
    async fn get_resource(&self, key: &str) -> Result<Option<ResourceRecord>>;
    /// Resources matching `filter`, ordered by key, after `page.after_key`, at most `page.limit`.
    async fn list_resources(
        &self,
        filter: &ResourceFilter,
        page: &Page,
    ) -> Result<Vec<ResourceRecord>>;
    /// Keys of the resources that hold the user-assigned identity `identity_key`.
    async fn list_resources_holding_identity(&self, identity_key: &str) -> Result<Vec<String>>;

    async fn get_principal(&self, object_id: &str) -> Result<Option<PrincipalRecord>>;
    async fn get_principal_by_app_id(&self, app_id: &str) -> Result<Option<PrincipalRecord>>;
    async fn list_principals(&self, kind: Option<&str>) -> Result<Vec<PrincipalRecord>>;
    /// Principals whose lifecycle belongs to the resource `resource_key`.
    async fn list_principals_managed_by(&self, resource_key: &str) -> Result<Vec<PrincipalRecord>>;
    async fn list_credentials(&self, principal_id: &str) -> Result<Vec<CredentialRecord>>;

    async fn get_federated_credential(
        &self,
        key: &str,
    ) -> Result<Option<FederatedCredentialRecord>>;
    async fn list_federated_credentials(
        &self,
        identity_key: &str,
    ) -> Result<Vec<FederatedCredentialRecord>>;

    async fn get_role_definition(&self, id: &str) -> Result<Option<RoleDefinitionRecord>>;
    async fn list_role_definitions(&self) -> Result<Vec<RoleDefinitionRecord>>;

    async fn get_role_assignment(&self, key: &str) -> Result<Option<RoleAssignmentRecord>>;
    /// Assignments of one principal, whatever their scope. The authorization hot path.
    async fn list_role_assignments_for_principal(
        &self,
        principal_id: &str,
    ) -> Result<Vec<RoleAssignmentRecord>>;
    /// Assignments whose scope is one of `scope_keys` (lower-cased), or all when `None`.
    async fn list_role_assignments(
        &self,
        scope_keys: Option<&[String]>,
    ) -> Result<Vec<RoleAssignmentRecord>>;

    async fn list_signing_keys(&self, tenant_id: &str) -> Result<Vec<SigningKeyRecord>>;

    async fn get_host(&self, id: &str) -> Result<Option<HostRecord>>;
    async fn list_hosts(&self) -> Result<Vec<HostRecord>>;

    async fn get_vault_secret(
        &self,
        vault_key: &str,
        name_key: &str,
    ) -> Result<Option<VaultSecretRecord>>;
    /// Secrets of a vault by name, `deleted` ones or live ones, after `after_name_key`.
    async fn list_vault_secrets(
        &self,
        vault_key: &str,
        deleted: bool,
        after_name_key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VaultSecretRecord>>;
    async fn get_vault_secret_version(
        &self,
        vault_key: &str,
        name_key: &str,
        version: &str,
    ) -> Result<Option<VaultSecretVersionRecord>>;
    /// Every version of a secret, oldest first.
    async fn list_vault_secret_versions(
        &self,
        vault_key: &str,
        name_key: &str,
    ) -> Result<Vec<VaultSecretVersionRecord>>;
    /// Soft-deleted secrets whose purge date has passed.
    async fn list_vault_secrets_due(&self, now: i64, limit: i64) -> Result<Vec<VaultSecretRecord>>;

    async fn list_activity_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>>;
    async fn list_sign_in_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>>;

    /// Deletes the events of `log` whose newest time is before `before`, then the oldest until
    /// at most `keep_max` remain, in transactions of at most [`PRUNE_CHUNK_ROWS`] rows so other
    /// writers take turns. Returns how many were deleted.
    async fn prune_events(&self, log: EventLog, before: i64, keep_max: i64) -> Result<u64>;

    /// Closes every connection; SQLite then checkpoints its write-ahead log into the database
    /// file and removes it. Calls after this fail.
    async fn close(&self);

    /// Records a client-assertion `jti` until `expires_at`. Returns `false` when the same `jti`
    /// was already recorded and has not expired (a replay). Forgets expired entries on the way.
    async fn record_assertion_use(&self, jti_key: &str, expires_at: i64, now: i64) -> Result<bool>;

    /// Takes or renews the lease `name` for `holder` until `expires_at` if it is free, expired or
    /// already held by `holder`. Returns whether `holder` holds it now.
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool>;
}
