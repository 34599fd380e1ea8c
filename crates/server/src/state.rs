//! What every handler shares: the store, the clock, the deployment's identity, the token
//! issuer, the sign-in log, the client directory and the keys derived from the master key.
//! Built once at start-up; cheap to clone.

use std::sync::Arc;

use domain::TtlCache;

use crate::bootstrap::Deployment;
use crate::directory::Directory;

/// How long cached rows are trusted: the bound on how stale another node's change can look.
pub const HOT_PATH_TTL_MILLIS: i64 = 2_000;
/// How long a verified token's claims are kept (they are re-checked on every use).
pub const TOKEN_CACHE_TTL_MILLIS: i64 = 60_000;
/// Entries each hot-path cache keeps at most.
pub const HOT_PATH_ENTRIES_MAX: usize = 10_000;

/// The handlers' shared state: one pointer, so the per-request clones that axum and the
/// extractors make cost one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points to.
pub struct Shared {
    pub store: Arc<dyn store::Store>,
    pub clock: Arc<dyn domain::Clock>,
    pub deployment: Arc<Deployment>,
    pub hasher: Arc<crypto::hash::SecretHasher>,
    pub master_key: Arc<crypto::envelope::MasterKey>,
    pub issuer: Arc<issuer::Issuer>,
    pub sign_in_log: issuer::SignInLog,
    pub directory: Arc<Directory>,
    /// Wakes assignment watches when resources, identities or hosts change on this node.
    pub changes: Arc<Changes>,
    /// The local CA: signs agents' client certificates.
    pub ca: Arc<crypto::pki::CertificateAuthority>,
    pub host_certificate_lifetime_secs: i64,
    /// Derives each resource's App Service secret (`X-IDENTITY-HEADER`).
    pub identity_headers: Arc<crypto::hash::SecretHasher>,
    /// The public URL's origin (`https://host[:port]`), without a trailing slash.
    pub base_url: Arc<str>,
    pub dns_suffix: Arc<str>,
    /// `vault.{suffix}[:port]`: vault `v` is served at `https://v.{vault_host}/`.
    pub vault_host: Arc<str>,
    pub caches: Arc<HotCaches>,
    /// Whether this node runs the deployment's background jobs (`jobs.rs`).
    pub leadership: Arc<crate::jobs::Leadership>,
    /// Failed token requests counted per address and client id (429 past the limit).
    pub throttle: Arc<crate::sts::Throttle>,
    /// Where refused and failed control-plane writes are counted in the activity log.
    pub activity_bound: Arc<ActivityBound>,
    /// What the background job keeps of the sign-in and activity logs.
    pub logs: crate::config::LogBounds,
    /// Hosts whose last contact this node wrote within the last minute.
    pub host_contacts: Arc<TtlCache<String, ()>>,
    /// Each surface's token audiences (`auth::audiences`), computed on first use.
    pub audiences: std::sync::OnceLock<crate::auth::Audiences>,
}

/// The flood bound of the activity log's `Failed` events (issue 17): one caller's refused or
/// failed writes of one action on one scope for one reason, within
/// [`domain::limits::ACTIVITY_FAILURE_WINDOW_SECS`], are one event with a count; a caller gets
/// at most [`domain::limits::LOG_EVENTS_PER_CALLER_PER_WINDOW_MAX`] such events per window and
/// one summary for the rest.
pub struct ActivityBound(std::sync::Mutex<domain::aggregate::Aggregator>);

impl Default for ActivityBound {
    fn default() -> Self {
        ActivityBound(std::sync::Mutex::new(domain::aggregate::Aggregator::new(
            domain::aggregate::AggregationPolicy {
                window_millis: domain::limits::ACTIVITY_FAILURE_WINDOW_SECS * 1000,
                per_caller_max: domain::limits::LOG_EVENTS_PER_CALLER_PER_WINDOW_MAX,
                callers_max: domain::limits::LOG_CALLERS_PER_WINDOW_MAX,
            },
        )))
    }
}

impl ActivityBound {
    /// Where an event of `caller` with `key` at `time` is counted.
    pub fn place(
        &self,
        caller: &str,
        key: &str,
        time: domain::UnixTime,
    ) -> domain::aggregate::Slot {
        // A panic while holding the lock cannot leave the aggregator half changed in a way that
        // matters: at worst one event is placed in a summary.
        let mut aggregator = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        aggregator.place(caller, key, time)
    }
}

/// The hot paths' caches. Every write on this node clears them at once (`AppState::changed`),
/// so a node always sees its own writes; another node's writes are seen within
/// [`HOT_PATH_TTL_MILLIS`]. Expiry follows the deployment's clock.
pub struct HotCaches {
    /// A principal's role assignments with their role definitions.
    pub grants: TtlCache<String, Arc<Vec<(domain::ResourceId, rbac::RoleDefinition)>>>,
    /// Vaults by lower-cased name.
    pub vaults: TtlCache<String, Arc<resources::Resource>>,
    /// Claims of tokens whose signature was verified, by SHA-256 of the token.
    pub tokens: TtlCache<[u8; 32], Arc<issuer::Claims>>,
    /// A secret's row and its current version's row, by (vault key, name key).
    pub secrets: TtlCache<
        (String, String),
        Arc<(store::VaultSecretRecord, store::VaultSecretVersionRecord)>,
    >,
}

impl Default for HotCaches {
    fn default() -> Self {
        HotCaches {
            grants: TtlCache::new(HOT_PATH_TTL_MILLIS, HOT_PATH_ENTRIES_MAX),
            tokens: TtlCache::new(TOKEN_CACHE_TTL_MILLIS, HOT_PATH_ENTRIES_MAX),
            vaults: TtlCache::new(HOT_PATH_TTL_MILLIS, HOT_PATH_ENTRIES_MAX),
            secrets: TtlCache::new(HOT_PATH_TTL_MILLIS, HOT_PATH_ENTRIES_MAX),
        }
    }
}

impl AppState {
    /// Something changed on this node: drop every cached row and wake the agents' watches.
    pub fn changed(&self) {
        self.directory.invalidate();
        self.caches.grants.clear();
        self.caches.vaults.clear();
        self.caches.secrets.clear();
        self.changes.notify();
    }
}

/// A change signal for long polls: waiters created before a change see it.
#[derive(Default)]
pub struct Changes(tokio::sync::Notify);

impl Changes {
    pub fn notify(&self) {
        self.0.notify_waiters();
    }

    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.notified()
    }
}
