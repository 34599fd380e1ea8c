//! The assignment watch: long-polls `/hosting/assignments`, and on each new state installs the
//! resources (dropping tokens of detached identities), opens a listener for each new resource
//! on `resource_listen_ip` (on the port it had before a restart, if free), closes the listeners
//! of resources that left, and reports the endpoints with `/hosting/status`. Failures back off (1 s, 2 s, ... 10 s) and retry; the
//! loop never exits on its own.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use api_types::hosting::{Assignments, HostStatus};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

use crate::Error;
use crate::endpoint::{self, Scope};
use crate::remembered::{Ports, SHARED_IMDS_KEY};
use crate::state::Shared;
use crate::tls::SniffingListener;
use crate::upstream::{Backoff, CallError};

/// Longest pause between watch attempts after failures.
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A watch that answers the same version faster than this is paced, so a misbehaving server
/// cannot make the agent spin.
const WATCH_ROUND_MIN: Duration = Duration::from_secs(1);
/// Per-resource listeners at most; resources beyond are logged and not served.
const RESOURCE_LISTENERS_MAX: usize = 1024;

/// Everything the watch task needs.
pub(crate) struct WatchContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) listeners: Arc<Mutex<Listeners>>,
    pub(crate) listen_ip: IpAddr,
    pub(crate) imds_address: Option<SocketAddr>,
    pub(crate) endpoints: tokio::sync::watch::Sender<BTreeMap<String, String>>,
    /// The listeners' ports, remembered across restarts.
    pub(crate) ports: Mutex<Ports>,
}

/// The open per-resource listeners, by resource key.
#[derive(Default)]
pub(crate) struct Listeners {
    by_resource: BTreeMap<String, ResourceListener>,
}

/// One listening socket and the task serving it. Dropping it stops accepting and lets
/// in-flight requests finish.
pub(crate) struct ResourceListener {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Runs the watch until the task is aborted.
pub(crate) async fn run(context: WatchContext) {
    let mut applied: Option<String> = None;
    let mut status_pending = false;
    let mut backoff = Backoff::new(WATCH_BACKOFF_MAX);
    loop {
        if status_pending {
            match context.report_status().await {
                Ok(()) => status_pending = false,
                Err(error) => {
                    context.failed("status report", &error, &mut backoff).await;
                    continue;
                }
            }
        }
        let started = tokio::time::Instant::now();
        match context.shared.api.assignments(applied.as_deref().unwrap_or("")).await {
            Ok(assignments) => {
                backoff.reset();
                context.shared.set_revoked(false);
                if applied.as_deref() == Some(assignments.version.as_str()) {
                    tokio::time::sleep_until(started + WATCH_ROUND_MIN).await;
                    continue;
                }
                let version = assignments.version.clone();
                let complete = context.apply(assignments).await;
                status_pending = true;
                if complete {
                    applied = Some(version);
                } else {
                    // Asking again with no version brings the state back at once.
                    applied = None;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
            Err(error) => context.failed("assignment watch", &error, &mut backoff).await,
        }
    }
}

impl WatchContext {
    /// Installs `assignments` and opens and closes listeners to match. False when a listener
    /// could not be opened (to be retried).
    async fn apply(&self, assignments: Assignments) -> bool {
        let Assignments { version, tenant_id, resources, faults } = assignments;
        tracing::info!(%version, resources = resources.len(), "assignments changed");
        for resource in &resources {
            if let Some(faults) = resource.faults.as_ref().filter(|faults| !faults.is_empty()) {
                tracing::warn!(resource = %resource.resource_key, ?faults, "faults injected on this resource's endpoints");
            }
        }
        self.shared.set_host_faults(faults);
        self.shared.set_resources(tenant_id, resources);
        let placed = self.shared.resources();
        let mut listeners = self.listeners.lock().await;
        let gone: Vec<String> = listeners
            .by_resource
            .keys()
            .filter(|key| !placed.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(listener) = listeners.by_resource.remove(&key) {
                tracing::info!(resource = %key, address = %listener.address, "resource left the host; endpoint closed");
                drop(listener);
            }
        }
        let mut complete = true;
        for key in placed.keys() {
            if listeners.by_resource.contains_key(key) {
                continue;
            }
            if listeners.by_resource.len() >= RESOURCE_LISTENERS_MAX {
                tracing::error!(resource = %key, max = RESOURCE_LISTENERS_MAX, "too many resources on this host; not served");
                continue;
            }
            let address = SocketAddr::new(self.listen_ip, 0);
            let remembered = self.ports.lock().await.get(key);
            match ResourceListener::bind_remembered(
                &self.shared,
                address,
                remembered,
                Scope::Resource(key.clone()),
            )
            .await
            {
                Ok(listener) => {
                    tracing::info!(resource = %key, address = %listener.address, "endpoint opened");
                    listeners.by_resource.insert(key.clone(), listener);
                }
                Err(error) => {
                    tracing::error!(resource = %key, %error, "cannot open endpoint");
                    complete = false;
                }
            }
        }
        self.endpoints.send_replace(listeners.endpoints());
        let mut ports = self.ports.lock().await;
        let mut remembered: BTreeMap<String, u16> = listeners
            .by_resource
            .iter()
            .map(|(key, listener)| (key.clone(), listener.address.port()))
            .collect();
        if let Some(port) = ports.get(SHARED_IMDS_KEY) {
            remembered.insert(SHARED_IMDS_KEY.to_owned(), port);
        }
        ports.save(remembered);
        complete
    }

    async fn report_status(&self) -> Result<(), CallError> {
        let status = HostStatus {
            endpoints: self.endpoints.borrow().clone(),
            imds: self.imds_address.map(|address| format!("http://{address}")),
            service_fabric_thumbprint: self
                .shared
                .service_fabric
                .get()
                .map(|tls| tls.thumbprint.clone()),
            service_fabric_ca_pem: self.shared.service_fabric.get().map(|tls| tls.ca_pem.clone()),
        };
        self.shared.api.report_status(&status).await
    }

    async fn failed(&self, call: &str, error: &CallError, backoff: &mut Backoff) {
        if error.is_unauthorized() {
            self.shared.set_revoked(true);
        }
        let delay = backoff.next_delay();
        tracing::warn!(call, %error, retry_in_secs = delay.as_secs(), "call to the server failed");
        tokio::time::sleep(delay).await;
    }
}

impl Listeners {
    /// Resource key to base URL.
    pub(crate) fn endpoints(&self) -> BTreeMap<String, String> {
        self.by_resource.iter().map(|(key, listener)| (key.clone(), listener.url())).collect()
    }

    /// Removes every listener, for shutdown.
    pub(crate) fn take_all(&mut self) -> Vec<ResourceListener> {
        std::mem::take(&mut self.by_resource).into_values().collect()
    }
}

impl ResourceListener {
    /// Binds `address` and serves `scope`'s routes on it.
    pub(crate) async fn bind(
        shared: &Arc<Shared>,
        address: SocketAddr,
        scope: Scope,
    ) -> Result<Self, Error> {
        let listen_error = |source| Error::Listen { address, source };
        let listener = TcpListener::bind(address).await.map_err(listen_error)?;
        let address = listener.local_addr().map_err(listen_error)?;
        // Resource listeners also answer HTTPS (Service Fabric); the shared IMDS one does not.
        let tls = match scope {
            Scope::Resource(_) => shared.service_fabric.get().map(|tls| tls.acceptor.clone()),
            Scope::SharedImds => None,
        };
        let listener = SniffingListener::new(listener, tls).map_err(listen_error)?;
        let service = endpoint::router(shared.clone(), scope)
            .into_make_service_with_connect_info::<crate::attest::Connection>();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    // Either a stop message or the sender dropping ends the wait.
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%address, %error, "endpoint failed");
            }
        });
        Ok(ResourceListener { address, stop, task })
    }

    /// Binds `address`, on `remembered` instead of its port when given; falls back to
    /// `address` when the remembered port is taken.
    pub(crate) async fn bind_remembered(
        shared: &Arc<Shared>,
        address: SocketAddr,
        remembered: Option<u16>,
        scope: Scope,
    ) -> Result<Self, Error> {
        if let Some(port) = remembered {
            match Self::bind(shared, SocketAddr::new(address.ip(), port), scope.clone()).await {
                Ok(listener) => return Ok(listener),
                Err(error) => {
                    tracing::warn!(%error, ?scope, "the endpoint's former port is taken; it gets a new one")
                }
            }
        }
        Self::bind(shared, address, scope).await
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting and waits for in-flight requests to finish.
    pub(crate) async fn close(self) {
        let ResourceListener { stop, task, .. } = self;
        drop(stop);
        if let Err(error) = task.await {
            tracing::debug!(%error, "endpoint task ended abnormally");
        }
    }
}
