//! The per-host metadata agent: serves the Instance Metadata Service (IMDS) and App Service
//! managed-identity endpoints to the workloads on one host, and fetches their tokens from the
//! server. It holds no signing key: a compromised host exposes only the tokens it fetched.
//!
//! Typical use (what `command::run`, behind `ambient agent` and `ambient-agent`, does):
//!
//! ```text
//! let mut config = AgentConfig::new(vec![server_url], server_ca_pem, data_dir);
//! config.host = Some("web-01".into());              // first start only, with
//! config.join_token = Some(Secret::new(token));     // the one-time join token
//! let agent = agent::start(config).await?;          // enrolls (or reuses agent.key/agent.pem)
//! agent.endpoints();                                // per-resource listeners, by resource key
//! agent.shutdown().await;
//! ```
//!
//! How it is put together:
//!
//! - `command`: the agent as a command line (`AgentArgs`, `run`), shared by both binaries,
//!   with the stop signals and tracing set-up they start with.
//! - `credentials`: enrollment with a join token, the files in the data directory
//!   (`agent.key` 0600, `agent.pem`, `agent.json`), and certificate renewal at half-life.
//! - `upstream`: the HTTPS client of the server's hosting API (`/hosting/...`), authenticated
//!   by the host's client certificate; the client is swapped atomically on renewal.
//! - `watch`: the assignment watch; opens a listener per resource placed on the host, closes
//!   it when the resource leaves, and reports the endpoints back to the server.
//! - `remembered`: the server list and the listeners' ports, kept in the data directory so a
//!   restarted agent serves every resource on the port it had.
//! - `endpoint`: the routes every listener serves (IMDS token, identity info, instance
//!   metadata, App Service token), with their exact wire shapes and refusals (`refusal`).
//! - `tls`: HTTPS on the same listeners for Service Fabric's protocol, with the certificate
//!   whose thumbprint is reported to the server.
//! - `attest`: workload attestation, which process is at the other end of a connection
//!   (`/proc`) and whether it matches the resource's workload selectors.
//! - `faults`: the faults injected on the endpoints, applied before anything else.
//! - `cache`, `rate_limit`: the single-flight token cache and the per-resource token bucket.
//!   Identity selection is `api_types::hosting::HostedResource::select`, the same function the
//!   server applies.

#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod command;

mod attest;
mod cache;
mod credentials;
mod endpoint;
mod faults;
mod files;
mod rate_limit;
mod refusal;
mod remembered;
mod state;
mod tls;
mod upstream;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::state::Shared;
use crate::upstream::ServerApi;
use crate::watch::{Listeners, ResourceListener};

/// How long [`RunningAgent::shutdown`] lets in-flight requests finish.
const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the agent needs to start.
#[derive(Clone)]
pub struct AgentConfig {
    /// The base URLs of the deployment's servers, `https://...` (for example
    /// `https://localhost:8443`), tried in order when one cannot be reached. Saved in the data
    /// directory; empty means the saved list.
    pub server_urls: Vec<String>,
    /// PEM certificates to trust for the server's TLS certificate (the server's CA).
    pub server_ca_pem: Vec<u8>,
    /// Holds `agent.key` (0600), `agent.pem` and `agent.json`; created 0700 when missing.
    pub data_dir: PathBuf,
    /// The host name; needed with a join token, otherwise read from `agent.json`.
    pub host: Option<String>,
    /// The one-time join token for the first start.
    pub join_token: Option<domain::Secret<String>>,
    /// The shared IMDS listener (`169.254.169.254:80` on a real host); `None` for none.
    pub imds_listen: Option<SocketAddr>,
    /// Per-resource listeners bind `(resource_listen_ip, 0)`.
    pub resource_listen_ip: IpAddr,
    /// Requests allowed per resource.
    pub rate_limit: RateLimit,
    /// The time source for token refresh and certificate renewal decisions.
    pub clock: Arc<dyn domain::Clock>,
}

/// The request budget of one resource: a token bucket and a cap on requests in flight.
/// Zero values are raised to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub requests_per_second: u32,
    /// Requests allowed in a burst above the sustained rate (the bucket's size).
    pub burst: u32,
    /// Requests served at the same time.
    pub concurrent: u32,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A server URL is not an `https://` URL.
    #[error("server url must start with https://")]
    InvalidServerUrl,
    /// No server URL was given and none is saved in the data directory.
    #[error("no server: pass the server's URL (--server https://...)")]
    NoServer,
    /// The data directory holds no credentials and no host name and join token were given.
    #[error("not enrolled: pass a host name and a join token")]
    NotEnrolled,
    /// The configured host name differs from the one the data directory was enrolled as.
    #[error("data directory belongs to host {stored}, not {configured}")]
    HostMismatch {
        /// The host name in `agent.json`.
        stored: String,
        /// The host name in the configuration.
        configured: String,
    },
    /// Reading or writing the data directory failed.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file in the data directory does not hold what it should.
    #[error("data directory {path}: {reason}")]
    CorruptDataDir {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating the host's key pair or CSR failed.
    #[error("generate key pair: {0}")]
    KeyGeneration(#[source] crypto::Error),
    /// The server CA or the host's certificate and key could not be loaded into TLS.
    #[error("tls configuration: {0}")]
    Tls(#[source] reqwest::Error),
    /// The server refused the enrollment (wrong, used or expired join token, unknown host).
    #[error("enrollment refused by the server (http {status})")]
    EnrollmentRefused {
        /// The HTTP status.
        status: u16,
    },
    /// The server could not be reached or answered something unexpected during enrollment.
    #[error("enrollment failed: {0}")]
    Enrollment(String),
    /// A listener could not be bound.
    #[error("listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A started agent. Dropping it stops the background work and closes the listeners;
/// [`RunningAgent::shutdown`] also waits for in-flight requests.
pub struct RunningAgent {
    shared: Arc<Shared>,
    imds: Option<ResourceListener>,
    listeners: Arc<Mutex<Listeners>>,
    endpoints: tokio::sync::watch::Receiver<BTreeMap<String, String>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the agent: enrolls or loads the host's credentials, binds the shared IMDS listener
/// if configured, and starts the assignment watch and certificate renewal in the background.
/// It returns before the first assignments arrive; see [`RunningAgent::wait_for_resource`].
pub async fn start(config: AgentConfig) -> Result<RunningAgent, Error> {
    files::ensure_private_dir(&config.data_dir)
        .map_err(|source| Error::DataDir { path: config.data_dir.clone(), source })?;
    let servers = remembered::servers(&config.data_dir, &config.server_urls)?;
    let credentials = credentials::load_or_enroll(&config, &servers).await?;
    let client =
        upstream::client(&config.server_ca_pem, Some(credentials.identity_pem().as_bytes()))
            .map_err(Error::Tls)?;
    let api = ServerApi::new(servers, client);
    let mut ports = remembered::Ports::load(&config.data_dir);
    let shared = Arc::new(Shared::new(
        credentials.host().to_owned(),
        api,
        config.clock.clone(),
        config.rate_limit,
    ));
    match tls::ServiceFabricTls::generate(config.resource_listen_ip, config.clock.now()) {
        Ok(tls) => {
            let _ = shared.service_fabric.set(tls);
        }
        Err(error) => {
            tracing::error!(%error, "no Service Fabric certificate; its endpoint is not served");
        }
    }

    let imds = match config.imds_listen {
        Some(address) => {
            let remembered = ports.get(remembered::SHARED_IMDS_KEY).filter(|_| address.port() == 0);
            let listener = ResourceListener::bind_remembered(
                &shared,
                address,
                remembered,
                endpoint::Scope::SharedImds,
            )
            .await?;
            if address.port() == 0 {
                let mut all = ports.all().clone();
                all.insert(remembered::SHARED_IMDS_KEY.to_owned(), listener.address().port());
                ports.save(all);
            }
            Some(listener)
        }
        None => None,
    };
    let imds_address = imds.as_ref().map(ResourceListener::address);

    let listeners = Arc::new(Mutex::new(Listeners::default()));
    let (endpoints_tx, endpoints) = tokio::sync::watch::channel(BTreeMap::new());
    let watch_task = tokio::spawn(watch::run(watch::WatchContext {
        shared: shared.clone(),
        listeners: listeners.clone(),
        listen_ip: config.resource_listen_ip,
        imds_address,
        endpoints: endpoints_tx,
        ports: Mutex::new(ports),
    }));
    let renew_task = tokio::spawn(credentials::renew_loop(
        shared.clone(),
        config.server_ca_pem.clone(),
        config.data_dir.clone(),
        credentials.schedule(),
    ));
    tracing::info!(host = %shared.host, servers = ?shared.api.servers(), imds = ?imds_address, "agent started");
    Ok(RunningAgent { shared, imds, listeners, endpoints, tasks: vec![watch_task, renew_task] })
}

impl AgentConfig {
    /// A configuration with the defaults: no host name or join token (the data directory must
    /// hold credentials), no shared IMDS listener, per-resource listeners on `127.0.0.1`,
    /// [`RateLimit::generous`] and the system clock.
    pub fn new(server_urls: Vec<String>, server_ca_pem: Vec<u8>, data_dir: PathBuf) -> Self {
        AgentConfig {
            server_urls,
            server_ca_pem,
            data_dir,
            host: None,
            join_token: None,
            imds_listen: None,
            resource_listen_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rate_limit: RateLimit::default(),
            clock: Arc::new(domain::SystemClock),
        }
    }
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("server_urls", &self.server_urls)
            .field("data_dir", &self.data_dir)
            .field("host", &self.host)
            .field("join_token", &self.join_token)
            .field("imds_listen", &self.imds_listen)
            .field("resource_listen_ip", &self.resource_listen_ip)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    /// Azure's documented IMDS figures: 20 requests per second, bursts of 20, 5 at a time.
    pub fn azure() -> Self {
        RateLimit { requests_per_second: 20, burst: 20, concurrent: 5 }
    }

    /// Room for busy development hosts: 200 requests per second, bursts of 400, 64 at a time.
    pub fn generous() -> Self {
        RateLimit { requests_per_second: 200, burst: 400, concurrent: 64 }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::generous()
    }
}

impl RunningAgent {
    /// The host name the agent is enrolled as.
    pub fn host(&self) -> &str {
        &self.shared.host
    }

    /// The current per-resource listeners: resource key to base URL (`http://ip:port`).
    pub fn endpoints(&self) -> BTreeMap<String, String> {
        self.endpoints.borrow().clone()
    }

    /// The shared IMDS listener's address, if one was configured.
    pub fn imds_address(&self) -> Option<SocketAddr> {
        self.imds.as_ref().map(ResourceListener::address)
    }

    /// Waits until the resource (by key or id, any case) has a listener, and returns its base
    /// URL; `None` after `timeout`.
    pub async fn wait_for_resource(&self, resource_key: &str, timeout: Duration) -> Option<String> {
        let key = resource_key.to_ascii_lowercase();
        let mut endpoints = self.endpoints.clone();
        let found =
            tokio::time::timeout(timeout, endpoints.wait_for(|map| map.contains_key(&key))).await;
        match found {
            Ok(Ok(map)) => map.get(&key).cloned(),
            _ => None,
        }
    }

    /// Stops the watch and renewal, closes every listener and waits (a few seconds at most)
    /// for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let mut closing: Vec<ResourceListener> = self.listeners.lock().await.take_all();
        closing.extend(self.imds.take());
        let drained = tokio::time::timeout(SHUTDOWN_DRAIN_TIMEOUT, async {
            for listener in closing {
                listener.close().await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("requests still in flight after the drain timeout");
        }
        tracing::info!(host = %self.shared.host, "agent stopped");
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        // Listeners close when their stop channels drop with the last owner of `listeners`.
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl fmt::Debug for RunningAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningAgent")
            .field("host", &self.shared.host)
            .field("imds", &self.imds_address())
            .field("endpoints", &self.endpoints())
            .finish()
    }
}
