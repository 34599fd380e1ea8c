//! The server: control plane, token service and Key Vault data plane over one HTTPS listener,
//! plus start-up (data directory, keys, certificates, bootstrap).
//!
//! Binaries stay thin: they build a [`ServerConfig`] and call [`start`], which returns a
//! [`RunningServer`] once the listener is bound; tests do the same in-process.
//!
//! Start-up order: open the data directory, bind the listener (so a busy port fails fast),
//! load or create the master key, open and migrate the store, bootstrap the deployment, load or
//! issue the TLS certificate, then serve. Only this crate knows HTTP status codes and routing.

pub mod config;

mod arm;
mod auth;
mod bootstrap;
mod data_dir;
mod directory;
mod error;
mod hosting;
mod http;
mod jobs;
mod keyvault;
mod layers;
mod state;
mod sts;
#[cfg(test)]
mod testing;
mod time_format;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

pub use crate::bootstrap::Deployment;
pub use crate::config::{ConfigError, LogBounds, Mode, PublicUrl, ServerConfig, Settings};
use crate::data_dir::{DataDir, write_private, write_public};

/// Why the server could not start. Each says what to fix in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    // The io errors are fields, not `#[source]`s: the message already says them, and a source
    // would print them a second time in `{:#}` chains.
    #[error("data directory {path}: {error}")]
    DataDir { path: PathBuf, error: std::io::Error },
    #[error("listen on {addr}: {error}{}", listen_hint(.error))]
    Listen { addr: SocketAddr, error: std::io::Error },
    #[error(
        "port {port} is in use: it is the port this data directory's deployment picked on its first start \
         ({url}), kept so that tokens, vault URIs and the CLI profile stay valid; stop what holds it, \
         start with --public-url URL to listen on another port, or use another --data-dir"
    )]
    RememberedPortTaken { port: u16, url: String },
    #[error("{0}")]
    Store(#[from] store::Error),
    #[error("master key: {0}")]
    Key(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("token service: {0}")]
    Issuer(String),
}

/// What a router served beside the API (the web console) learns about the listener once it is
/// bound: where clients reach it, where this process can reach it, and whom to trust.
pub struct ListenInfo {
    /// The public URL's origin: the issuer's authority and the URL clients use.
    pub public_url: String,
    /// The bound address; calls to the API from inside this process go here.
    pub local_addr: SocketAddr,
    /// The local CA (PEM) that issued the server's certificate.
    pub ca_pem: String,
    pub tenant_id: String,
    /// Vaults are `{name}.vault.{dns_suffix}`.
    pub dns_suffix: String,
    /// A key for the console alone, derived from the master key (HKDF, label `console`).
    pub console_key: domain::Secret<[u8; 32]>,
}

/// Builds a router to nest at `/console` once the listener is bound.
pub type RouterFactory = Arc<dyn Fn(&ListenInfo) -> axum::Router + Send + Sync>;

/// A server that is accepting connections.
pub struct RunningServer {
    local_addr: SocketAddr,
    public_url: PublicUrl,
    base_url: String,
    deployment: Deployment,
    data_dir: DataDir,
    dns_suffix: String,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
    sign_in_log: issuer::SignInLog,
    state: state::AppState,
}

/// What to do about a listener that cannot bind, for the errors people meet.
fn listen_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another process holds it: stop it, or pass --listen 127.0.0.1:0 for a free port)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; pass --listen 127.0.0.1:0 for a free port)"
        }
        _ => "",
    }
}

/// The file in the data directory that remembers the port picked for `--listen ...:0`.
const LISTEN_PORT_FILE: &str = "listen-port";

/// Starts the server described by `config` and returns once it accepts connections.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let data_dir = DataDir::open(&config.data_dir)?;
    let listener = bind(&config, &data_dir).await?;
    let local_addr =
        listener.local_addr().map_err(|error| StartError::Listen { addr: config.listen, error })?;
    let public_url =
        config.public_url.clone().unwrap_or_else(|| PublicUrl::new("localhost", local_addr.port()));

    let master_key = data_dir.master_key(
        &config.master_key_file,
        config.master_key_base64.as_ref().map(|key| key.expose().as_str()),
    )?;
    let hasher = crypto::hash::SecretHasher::new(&master_key.derive_subkey("client-secret-pepper"));
    let master_key = Arc::new(master_key);
    let store: Arc<dyn store::Store> = Arc::from(store::open(&config.database_url).await?);
    let deployment =
        bootstrap::ensure(store.as_ref(), config.clock.as_ref(), &hasher, &data_dir.root).await?;

    let suffix = &config.dns_suffix;
    let public_ip = public_url.host().trim_matches(['[', ']']).parse::<IpAddr>().ok();
    let mut dns_names = vec![
        "localhost".to_owned(),
        format!("login.{suffix}"),
        format!("management.{suffix}"),
        format!("vault.{suffix}"),
        format!("*.vault.{suffix}"),
    ];
    if public_ip.is_none() && !dns_names.iter().any(|name| name == public_url.host()) {
        dns_names.push(public_url.host().to_owned());
    }
    let mut ip_addresses = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    for ip in
        [Some(local_addr.ip()).filter(|ip| !ip.is_unspecified()), public_ip].into_iter().flatten()
    {
        if !ip_addresses.contains(&ip) {
            ip_addresses.push(ip);
        }
    }
    let ca = data_dir.deployment_ca(store.as_ref(), &master_key, config.clock.now()).await?;
    let tls_material = data_dir.tls_material(ca, &dns_names, &ip_addresses, config.clock.now())?;
    let tls_config = tls::server_config(
        &tls_material.server_cert_pem,
        &tls_material.server_key_pem,
        tls_material.ca.cert_pem(),
    )?;

    let base_url = public_url.origin().to_owned();
    let issuer = Arc::new(
        issuer::Issuer::load(
            store.clone(),
            master_key.clone(),
            config.clock.clone(),
            issuer::IssuerConfig::new(base_url.clone(), deployment.tenant_id.clone()),
        )
        .await
        .map_err(|error| StartError::Issuer(error.to_string()))?,
    );
    let sign_in_log = issuer::SignInLog::start(store.clone());
    let identity_headers =
        crypto::hash::SecretHasher::new(&master_key.derive_subkey("identity-header"));
    let state = state::AppState::new(state::Shared {
        changes: Arc::new(state::Changes::default()),
        ca: Arc::new(tls_material.ca),
        host_certificate_lifetime_secs: config.host_certificate_lifetime_secs,
        identity_headers: Arc::new(identity_headers),
        directory: Arc::new(directory::Directory::new(store.clone(), config.clock.clone())),
        store,
        clock: config.clock.clone(),
        deployment: Arc::new(deployment.clone()),
        hasher: Arc::new(hasher),
        master_key: master_key.clone(),
        issuer: issuer.clone(),
        sign_in_log: sign_in_log.clone(),
        base_url: Arc::from(base_url.as_str()),
        dns_suffix: Arc::from(config.dns_suffix.as_str()),
        vault_host: Arc::from(public_url.vault_host(&config.dns_suffix).as_str()),
        caches: Arc::new(state::HotCaches::default()),
        leadership: Arc::new(jobs::Leadership::default()),
        throttle: Arc::new(sts::Throttle::new(config.sign_in_failures_per_minute)),
        activity_bound: Arc::new(state::ActivityBound::default()),
        logs: config.logs,
        host_contacts: Arc::new(domain::TtlCache::new(
            hosting::LAST_CONTACT_WRITE_MILLIS,
            state::HOT_PATH_ENTRIES_MAX,
        )),
        audiences: std::sync::OnceLock::new(),
    });
    let console = config.console.as_ref().map(|factory| {
        factory(&ListenInfo {
            public_url: base_url.clone(),
            local_addr,
            ca_pem: state.ca.cert_pem().to_owned(),
            tenant_id: deployment.tenant_id.clone(),
            dns_suffix: config.dns_suffix.clone(),
            console_key: domain::Secret::new(*master_key.derive_subkey("console")),
        })
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(tls::serve(
        listener,
        tls_config,
        http::router(state.clone(), console),
        shutdown_rx,
    ));
    let background = jobs::spawn(&state);
    let running = RunningServer {
        local_addr,
        public_url,
        base_url,
        deployment,
        data_dir,
        dns_suffix: config.dns_suffix.clone(),
        shutdown,
        task,
        background,
        sign_in_log,
        state,
    };
    running.write_client_files()?;
    tracing::info!(url = %running.base_url, listen = %local_addr, mode = ?config.mode, "server listening");
    Ok(running)
}

/// Binds the listener. Port 0 means a free port that stays the same: the port picked on the
/// data directory's first such start is remembered in `listen-port` and bound again on later
/// starts, so the deployment's URL (and with it the issuer, vault URIs and CLI profile) does
/// not change. If that port is taken the start fails, unless a public URL is configured (then
/// the listen port does not show in any URL and any free port will do).
async fn bind(
    config: &ServerConfig,
    data_dir: &DataDir,
) -> Result<tokio::net::TcpListener, StartError> {
    let listen = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr).await.map_err(|source| (addr, source))
    };
    let failed = |(addr, error)| StartError::Listen { addr, error };
    if config.listen.port() != 0 {
        return listen(config.listen).await.map_err(failed);
    }
    let port_file = data_dir.path(LISTEN_PORT_FILE);
    let remembered = std::fs::read_to_string(&port_file)
        .ok()
        .and_then(|text| text.trim().parse::<u16>().ok())
        .filter(|port| *port != 0);
    if let Some(port) = remembered {
        match listen(SocketAddr::new(config.listen.ip(), port)).await {
            Ok(listener) => return Ok(listener),
            Err((_, source))
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && config.public_url.is_none() =>
            {
                return Err(StartError::RememberedPortTaken {
                    port,
                    url: PublicUrl::new("localhost", port).to_string(),
                });
            }
            Err((addr, source)) if source.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!(%addr, "the remembered port is taken; listening on another (the public URL is unchanged)");
            }
            Err(error) => return Err(failed(error)),
        }
    }
    let listener = listen(config.listen).await.map_err(failed)?;
    if remembered.is_none() {
        let port = listener
            .local_addr()
            .map_err(|error| StartError::Listen { addr: config.listen, error })?
            .port();
        write_public(&port_file, format!("{port}\n").as_bytes())
            .map_err(|error| StartError::DataDir { path: port_file.clone(), error })?;
    }
    Ok(listener)
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The public URL's origin (`https://localhost:{port}` unless `--public-url` named one).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The public URL clients use.
    pub fn public_url(&self) -> &PublicUrl {
        &self.public_url
    }

    /// A URL that reaches this process's own listener directly, whatever the public URL names
    /// (a proxy, say): for the agent `ambient dev` runs in the same process.
    pub fn local_url(&self) -> String {
        let ip = if self.local_addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.local_addr.ip()
        };
        format!("https://{}", SocketAddr::new(ip, self.local_addr.port()))
    }

    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir.root
    }

    /// The PEM file with only the local CA.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.data_dir.ca_cert_path()
    }

    /// The variables a user exports to talk to this server, in order.
    pub fn env_exports(&self) -> Vec<(&'static str, String)> {
        let home = self.data_dir.root.display().to_string();
        let ca = self.data_dir.ca_cert_path().display().to_string();
        let bundle = self.data_dir.ca_bundle_path().display().to_string();
        vec![
            ("AMBIENT_HOME", home),
            ("AMBIENT_URL", self.base_url.clone()),
            ("AMBIENT_TENANT_ID", self.deployment.tenant_id.clone()),
            ("AMBIENT_SUBSCRIPTION_ID", self.deployment.subscription_id.clone()),
            ("AMBIENT_CA_BUNDLE", ca.clone()),
            ("REQUESTS_CA_BUNDLE", bundle.clone()),
            ("SSL_CERT_FILE", bundle),
            ("NODE_EXTRA_CA_CERTS", ca),
            ("AZURE_AUTHORITY_HOST", self.base_url.clone()),
        ]
    }

    /// The `/etc/hosts` line that makes the server's names resolve, with vault names appended.
    pub fn hosts_line(&self, vault_names: &[String]) -> String {
        let suffix = &self.dns_suffix;
        let mut names = vec![
            format!("login.{suffix}"),
            format!("management.{suffix}"),
            format!("vault.{suffix}"),
        ];
        names.extend(vault_names.iter().map(|vault| format!("{vault}.vault.{suffix}")));
        format!("127.0.0.1 {}", names.join(" "))
    }

    /// The commands that point the Azure CLI at this deployment: endpoint discovery configures
    /// everything (login endpoint, audiences, Graph, Key Vault suffix); instance discovery has
    /// to be turned off because MSAL would ask login.microsoftonline.com about any other host.
    pub fn az_setup(&self) -> Vec<String> {
        vec![
            format!("az cloud register -n Ambient --endpoint-resource-manager {}", self.base_url),
            "az cloud set -n Ambient".to_owned(),
            "az config set core.instance_discovery=false".to_owned(),
        ]
    }

    /// The text of `env.sh`.
    pub fn env_script(&self) -> String {
        let mut script = String::from(
            "# Ambient environment: source this file (. ./env.sh) in a shell that talks to Ambient.\n",
        );
        for (name, value) in self.env_exports() {
            script.push_str(&format!("export {name}='{}'\n", value.replace('\'', "'\\''")));
        }
        script.push_str(&format!(
            "# Key Vault names are <vault>.vault.{suffix}. If they do not resolve on this machine, add\n\
             # this line to /etc/hosts (with each vault's name appended as <vault>.vault.{suffix}):\n\
             # {line}\n",
            suffix = self.dns_suffix,
            line = self.hosts_line(&[]),
        ));
        script.push_str("# The Azure CLI (az) against this deployment:\n");
        for line in self.az_setup() {
            script.push_str(&format!("#   {line}\n"));
        }
        script
    }

    /// Writes `env.sh` and the CLI profile for the admin.
    fn write_client_files(&self) -> Result<(), StartError> {
        let io = |path: PathBuf| move |error| StartError::DataDir { path: path.clone(), error };
        let admin_file = self.data_dir.path("admin.json");
        if admin_file.exists() {
            let profile = api_types::profile::Profile {
                server: self.base_url.clone(),
                tenant: self.deployment.tenant_id.clone(),
                subscription: Some(self.deployment.subscription_id.clone()),
                ca_bundle: Some(self.data_dir.ca_cert_path().display().to_string()),
                credential: api_types::profile::ProfileCredential::Secret {
                    app_id: self.deployment.admin_app_id.clone(),
                    secret_file: admin_file.display().to_string(),
                },
            };
            let path = self.data_dir.path("profile.json");
            let json = serde_json::to_vec_pretty(&profile)
                .map_err(|error| StartError::Key(error.to_string()))?;
            write_private(&path, &json).map_err(io(path.clone()))?;
        }
        // `env.sh` last: once it exists, everything a client needs is in place.
        let env_path = self.data_dir.path("env.sh");
        write_public(&env_path, self.env_script().as_bytes()).map_err(io(env_path.clone()))?;
        Ok(())
    }

    /// A one-time join token for host `name`, creating the host if needed (`ambient dev` uses it
    /// to enroll its own agent through the same protocol as a remote one).
    pub async fn join_token(&self, name: &str) -> Result<String, String> {
        hosting::new_join_token(&self.state, name)
            .await
            .map(|(created, _)| created.join_token)
            .map_err(|error| error.message)
    }

    /// Stops accepting, drains in-flight requests and returns when the listener is closed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "server task ended abnormally");
        }
        for task in &self.background {
            task.abort();
        }
        self.sign_in_log.flush().await;
        // Last: SQLite folds its write-ahead log into the database file when the last
        // connection closes.
        self.state.store.close().await;
    }
}
