//! A server in the test's own process, for integration tests of the server's handlers:
//! [`TestServer::start`] runs `server::start` on `127.0.0.1:0` with a fresh data directory and
//! SQLite database, and hands out clients that trust its CA: [`TestServer::admin`] (the typed
//! `client::Client`, signed in as the bootstrap admin) and [`TestServer::http`] (raw requests,
//! for malformed input and exact wire checks). Dropping it stops the server and removes the
//! directory. [`load`] is a minimal HTTPS client for load generators. Dev-dependency only.

pub mod load;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde_json::Value;

/// A running in-process server.
pub struct TestServer {
    running: Option<server::RunningServer>,
    dir: PathBuf,
    admin_app_id: String,
    admin_secret: String,
}

impl TestServer {
    /// Starts a server with embedded defaults on a free port.
    pub async fn start() -> Result<TestServer> {
        let dir = std::env::temp_dir()
            .join(format!("ambient-test-server-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).context("create the data directory")?;
        let settings = server::Settings {
            data_dir: Some(dir.clone()),
            listen: Some("127.0.0.1:0".to_owned()),
            ..server::Settings::default()
        };
        let config = server::ServerConfig::resolve(server::Mode::Server, settings, None, &dir)?;
        let running = server::start(config).await.context("start the server")?;
        let admin: Value = serde_json::from_slice(&std::fs::read(dir.join("admin.json"))?)?;
        Ok(TestServer {
            running: Some(running),
            admin_app_id: admin["appId"].as_str().context("admin appId")?.to_owned(),
            admin_secret: admin["password"].as_str().context("admin password")?.to_owned(),
            dir,
        })
    }

    fn running(&self) -> &server::RunningServer {
        self.running.as_ref().expect("the server runs until dropped")
    }

    /// The public URL's origin, `https://localhost:{port}`.
    pub fn url(&self) -> &str {
        self.running().base_url()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.running().local_addr()
    }

    pub fn tenant_id(&self) -> &str {
        &self.running().deployment().tenant_id
    }

    pub fn subscription_id(&self) -> &str {
        &self.running().deployment().subscription_id
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The admin's client id and secret.
    pub fn admin_credentials(&self) -> (&str, &str) {
        (&self.admin_app_id, &self.admin_secret)
    }

    /// The typed client, signed in as the admin.
    pub fn admin(&self) -> Result<client::Client> {
        self.client_for(&self.admin_app_id, &self.admin_secret)
    }

    /// The typed client, signed in as another service principal.
    pub fn client_for(&self, app_id: &str, secret: &str) -> Result<client::Client> {
        let ca = std::fs::read(self.running().ca_cert_path())?;
        let options = identity::ClientOptions {
            authority_host: self.url().to_owned(),
            extra_root_certificates_pem: vec![ca.clone()],
            ..Default::default()
        };
        let credential =
            identity::ClientSecretCredential::new(self.tenant_id(), app_id, secret, options)?;
        Ok(client::Client::new(self.url(), Arc::new(credential), Some(&ca))?)
    }

    /// A raw HTTPS client trusting only this server's CA, with every name in `names` (vault
    /// host names, say) resolved to the server.
    pub fn http(&self, names: &[&str]) -> Result<reqwest::Client> {
        let ca = std::fs::read(self.running().ca_cert_path())?;
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
            .resolve("localhost", self.local_addr());
        for name in names {
            builder = builder.resolve(name, self.local_addr());
        }
        Ok(builder.build()?)
    }

    /// A client-credential token for the admin and `scope`.
    pub async fn admin_token(&self, scope: &str) -> Result<String> {
        let response = self
            .http(&[])?
            .post(format!("{}/{}/oauth2/v2.0/token", self.url(), self.tenant_id()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.admin_app_id.as_str()),
                ("client_secret", self.admin_secret.as_str()),
                ("scope", scope),
            ])
            .send()
            .await?;
        let body: Value = response.json().await?;
        Ok(body["access_token"].as_str().context("access_token")?.to_owned())
    }

    /// Stops the server and removes its directory.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // `stop` is the clean way; a dropped server still frees its directory.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
