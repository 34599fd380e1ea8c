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
mod cache;
mod convert;
mod data_dir;
mod directory;
mod error;
mod federation;
mod hosting;
mod http;
mod keyvault;
mod state;
mod sts;
mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

pub use crate::bootstrap::Deployment;
pub use crate::config::{ConfigError, Mode, ServerConfig, Settings};
use crate::data_dir::{DataDir, write_private, write_public};

/// Why the server could not start. Each says what to fix in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
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
    /// `https://{public_host}:{port}`: the issuer's authority and the URL clients use.
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

/// How often the key-rotation job looks at the keys (it rotates only when due).
const KEY_ROTATION_TICK: std::time::Duration = std::time::Duration::from_secs(60);
/// How often deleted secrets past their retention are looked for.
const VAULT_PURGE_TICK: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts the server described by `config` and returns once it accepts connections.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let data_dir = DataDir::open(&config.data_dir)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr: config.listen, source })?;

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
    let mut dns_names = vec![
        config.public_host.clone(),
        "localhost".to_owned(),
        format!("login.{suffix}"),
        format!("management.{suffix}"),
        format!("vault.{suffix}"),
        format!("*.vault.{suffix}"),
    ];
    dns_names.dedup();
    let mut ip_addresses = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if !local_addr.ip().is_unspecified() && !ip_addresses.contains(&local_addr.ip()) {
        ip_addresses.push(local_addr.ip());
    }
    let tls_material = data_dir.tls_material(&dns_names, &ip_addresses, config.clock.now())?;
    let tls_config = tls::server_config(
        &tls_material.server_cert_pem,
        &tls_material.server_key_pem,
        tls_material.ca.cert_pem(),
    )?;

    let base_url = format!("https://{}:{}", config.public_host, local_addr.port());
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
    let state = state::AppState {
        changes: Arc::new(state::Changes::default()),
        ca: Arc::new(tls_material.ca),
        host_certificate_lifetime_secs: config.host_certificate_lifetime_secs,
        identity_headers: Arc::new(identity_headers),
        directory: Arc::new(directory::Directory::new(store.clone())),
        store,
        clock: config.clock.clone(),
        deployment: Arc::new(deployment.clone()),
        hasher: Arc::new(hasher),
        master_key: master_key.clone(),
        issuer: issuer.clone(),
        sign_in_log: sign_in_log.clone(),
        base_url: Arc::from(base_url.as_str()),
        dns_suffix: Arc::from(config.dns_suffix.as_str()),
        vault_host: Arc::from(vault_host(&config.dns_suffix, local_addr.port()).as_str()),
        caches: Arc::new(state::HotCaches::default()),
    };
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
    let background = vec![
        tokio::spawn(rotate_keys(issuer)),
        tokio::spawn(purge_deleted_secrets(state.store.clone(), state.clock.clone())),
    ];
    let running = RunningServer {
        local_addr,
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
    tracing::info!(url = %running.base_url, mode = ?config.mode, "server listening");
    Ok(running)
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://localhost:{port}`.
    pub fn base_url(&self) -> &str {
        &self.base_url
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
        script
    }

    /// Writes `env.sh` and the CLI profile for the admin.
    fn write_client_files(&self) -> Result<(), StartError> {
        let io = |path: PathBuf| move |source| StartError::DataDir { path: path.clone(), source };
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
    }
}

/// Purges soft-deleted secrets whose retention ended. Every node ticks; the lease lets one act.
async fn purge_deleted_secrets(store: Arc<dyn store::Store>, clock: Arc<dyn domain::Clock>) {
    let holder = domain::Guid::new_random().to_string();
    let mut interval = tokio::time::interval(VAULT_PURGE_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = clock.now();
        match store
            .try_acquire_lease("vault-purge", &holder, now.millis(), now.plus_secs(300).millis())
            .await
        {
            Ok(true) => match vault::purge_due(store.as_ref(), now).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "purged deleted secrets past their retention"),
                Err(error) => tracing::warn!(%error, "purging deleted secrets failed"),
            },
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "vault purge lease failed"),
        }
    }
}

/// `vault.{suffix}` with the port unless it is 443.
fn vault_host(dns_suffix: &str, port: u16) -> String {
    if port == 443 { format!("vault.{dns_suffix}") } else { format!("vault.{dns_suffix}:{port}") }
}

/// The scheduled key rotation: every node ticks; the lease lets one of them act, and every
/// node reloads so keys rotated elsewhere are published and trusted here too.
async fn rotate_keys(issuer: Arc<issuer::Issuer>) {
    let holder = domain::Guid::new_random().to_string();
    let mut interval = tokio::time::interval(KEY_ROTATION_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = issuer.rotation_tick(&holder).await {
            tracing::warn!(%error, "signing-key rotation check failed");
        }
        if let Err(error) = issuer.reload().await {
            tracing::warn!(%error, "signing-key reload failed");
        }
    }
}
