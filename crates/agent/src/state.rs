//! What the agent's tasks share: the server client, the resources placed on the host and their
//! tenant (as of the last assignments), the token cache, the per-resource rate limiters, and
//! whether the server has stopped accepting the host.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Instant;

use api_types::hosting::{Faults, HostedResource};

use crate::RateLimit;
use crate::cache::TokenCache;
use crate::rate_limit::Limiter;
use crate::upstream::ServerApi;

/// The limiter key of the shared IMDS listener when it cannot name one resource.
pub(crate) const SHARED_LIMITER_KEY: &str = "";

pub(crate) struct Shared {
    /// The host name the agent is enrolled as.
    pub(crate) host: String,
    pub(crate) api: ServerApi,
    pub(crate) clock: Arc<dyn domain::Clock>,
    pub(crate) cache: TokenCache,
    rate_limit: RateLimit,
    /// By resource key (lower-cased id).
    resources: RwLock<Arc<BTreeMap<String, Arc<HostedResource>>>>,
    /// By resource key, plus [`SHARED_LIMITER_KEY`].
    limiters: Mutex<HashMap<String, Arc<Limiter>>>,
    /// The tenant of the resources' identities, from the assignments.
    tenant: RwLock<Option<String>>,
    /// The server refused the host's certificate (401/403 on the watch or renewal).
    revoked: AtomicBool,
    /// The faults injected on the host (for the shared IMDS listener when it serves no single
    /// resource); each resource's effective faults are in its `HostedResource::faults`.
    host_faults: RwLock<Option<Faults>>,
    /// The HTTPS identity of the Service Fabric endpoint, set once at start.
    pub(crate) service_fabric: OnceLock<crate::tls::ServiceFabricTls>,
}

impl Shared {
    pub(crate) fn new(
        host: String,
        api: ServerApi,
        clock: Arc<dyn domain::Clock>,
        rate_limit: RateLimit,
    ) -> Self {
        Shared {
            host,
            api,
            clock,
            cache: TokenCache::default(),
            rate_limit,
            resources: RwLock::default(),
            limiters: Mutex::default(),
            tenant: RwLock::default(),
            revoked: AtomicBool::new(false),
            host_faults: RwLock::default(),
            service_fabric: OnceLock::new(),
        }
    }

    /// The resources placed on the host, by key.
    pub(crate) fn resources(&self) -> Arc<BTreeMap<String, Arc<HostedResource>>> {
        self.resources.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn resource(&self, key: &str) -> Option<Arc<HostedResource>> {
        self.resources().get(key).cloned()
    }

    /// The faults injected on the host, as of the last assignments.
    pub(crate) fn host_faults(&self) -> Option<Faults> {
        self.host_faults.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Installs the host's faults from new assignments.
    pub(crate) fn set_host_faults(&self, faults: Option<Faults>) {
        *self.host_faults.write().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Installs new assignments. Cached tokens of identities no longer attached to their
    /// resource, and the limiters and tenants of resources that left, are dropped at once; so
    /// are the cached tokens of a resource whose faults changed (a shorter lifetime applies at
    /// once).
    pub(crate) fn set_resources(&self, tenant_id: String, resources: Vec<HostedResource>) {
        if !tenant_id.is_empty() {
            *self.tenant.write().unwrap_or_else(PoisonError::into_inner) = Some(tenant_id);
        }
        let resources: BTreeMap<String, Arc<HostedResource>> = resources
            .into_iter()
            .map(|resource| (resource.resource_key.to_ascii_lowercase(), Arc::new(resource)))
            .collect();
        let attached: HashSet<(String, String)> =
            resources
                .iter()
                .flat_map(|(key, resource)| {
                    resource.system.iter().chain(resource.user.iter()).map(move |identity| {
                        (key.clone(), identity.principal_id.to_ascii_lowercase())
                    })
                })
                .collect();
        let before = self.resources();
        let faults_changed: HashSet<String> = resources
            .iter()
            .filter(|(key, resource)| {
                before.get(*key).is_some_and(|old| old.faults != resource.faults)
            })
            .map(|(key, _)| key.clone())
            .collect();
        *self.resources.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(resources);
        self.cache.retain(|slot| {
            attached.contains(&(slot.resource_key.clone(), slot.principal_id.clone()))
                && !faults_changed.contains(&slot.resource_key)
        });
        let placed = self.resources();
        lock(&self.limiters).retain(|key, _| key == SHARED_LIMITER_KEY || placed.contains_key(key));
    }

    /// The limiter for `key` (a resource key or [`SHARED_LIMITER_KEY`]).
    pub(crate) fn limiter(&self, key: &str) -> Arc<Limiter> {
        lock(&self.limiters)
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Limiter::new(self.rate_limit, Instant::now())))
            .clone()
    }

    /// The tenant of the resources' identities, once the first assignments arrived.
    pub(crate) fn tenant(&self) -> Option<String> {
        self.tenant.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }

    /// Records whether the server accepts the host. Turning revoked drops every cached token.
    pub(crate) fn set_revoked(&self, revoked: bool) {
        let was_revoked = self.revoked.swap(revoked, Ordering::SeqCst);
        if revoked && !was_revoked {
            self.cache.clear();
            tracing::error!(host = %self.host, "the server refused this host's certificate; no more tokens are served");
        } else if !revoked && was_revoked {
            tracing::info!(host = %self.host, "the server accepts this host again");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
