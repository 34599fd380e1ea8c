//! The data directory: master key, the deployment CA's certificate, this node's server
//! certificate, admin credential, `env.sh`.
//!
//! Files holding secrets are created with mode 0600 (the directory 0700) and written atomically
//! (temporary file, fsync, rename), so a crash never leaves half a key behind.
//!
//! The deployment's CA (it signs every node's server certificate and the agents' client
//! certificates) lives in the database, its private key sealed under the master key, so every
//! node given the same database and master key serves certificates of the same CA: agents and
//! clients trust one `ca.pem` whichever node they reach. Data directories from before keep
//! their `ca.pem`/`ca.key`, which are moved into the database on the first start.

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use crypto::envelope::MasterKey;
use crypto::pki::CertificateAuthority;
use domain::UnixTime;
use serde::{Deserialize, Serialize};

use crate::StartError;

/// Server certificates are renewed when fewer than this many days of validity remain.
const SERVER_CERT_RENEW_DAYS: i64 = 30;
const SERVER_CERT_VALIDITY_DAYS: u32 = 365;
/// The store setting holding the deployment CA.
const CA_SETTING: &str = "deployment-ca";
/// Associated data sealing the CA's private key.
const CA_SEALING_AAD: &[u8] = b"deployment-ca";
/// Beside `server.pem`: the SHA-256 of the CA certificate that issued it.
const SERVER_CERT_ISSUER_FILE: &str = "server.issuer";

/// The CA as stored in the `deployment-ca` setting.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCa {
    certificate_pem: String,
    /// The PEM private key sealed under the master key, base64.
    sealed_key: String,
}

/// Paths inside the data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

/// The TLS material the listener serves.
pub struct TlsMaterial {
    pub ca: CertificateAuthority,
    pub server_cert_pem: String,
    pub server_key_pem: zeroize::Zeroizing<String>,
}

impl DataDir {
    /// Creates the directory (mode 0700) if needed and checks that it is usable.
    pub fn open(root: &Path) -> Result<DataDir, StartError> {
        let fail = |error: std::io::Error| StartError::DataDir { path: root.to_owned(), error };
        if root.exists() && !root.is_dir() {
            return Err(fail(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        fs::create_dir_all(root).map_err(fail)?;
        let probe = root.join(".write-probe");
        fs::write(&probe, b"").map_err(fail)?;
        fs::remove_file(&probe).map_err(fail)?;
        fs::read_dir(root).map_err(fail)?;
        if fs::metadata(root).map_err(fail)?.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(fail)?;
        }
        Ok(DataDir { root: root.to_owned() })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn ca_cert_path(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// Our CA followed by the system's trusted roots, for tools that replace their trust store
    /// with one file (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`) and still need public sites.
    pub fn ca_bundle_path(&self) -> PathBuf {
        self.path("ca-bundle.pem")
    }

    /// Loads the master key from `AMBIENT_MASTER_KEY`, or from `file`, creating the file (0600)
    /// with a new random key on first start.
    pub fn master_key(&self, file: &Path, from_env: Option<&str>) -> Result<MasterKey, StartError> {
        if let Some(text) = from_env {
            return MasterKey::from_base64(text.trim())
                .map_err(|error| StartError::Key(format!("AMBIENT_MASTER_KEY: {error}")));
        }
        match fs::read_to_string(file) {
            Ok(text) => MasterKey::from_base64(text.trim())
                .map_err(|error| StartError::Key(format!("{}: {error}", file.display()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate();
                write_private(file, key.to_base64().expose().as_bytes())
                    .map_err(|error| StartError::DataDir { path: file.to_owned(), error })?;
                tracing::info!(path = %file.display(), "created master key");
                Ok(key)
            }
            Err(error) => Err(StartError::DataDir { path: file.to_owned(), error }),
        }
    }

    /// The deployment CA: the one in the store, or (first start of a deployment) the one in
    /// this directory's `ca.pem`/`ca.key` from an earlier version, or a new one. Writes
    /// `ca.pem` and `ca-bundle.pem` for clients.
    pub async fn deployment_ca(
        &self,
        store: &dyn store::Store,
        master_key: &MasterKey,
        now: UnixTime,
    ) -> Result<CertificateAuthority, StartError> {
        let ca = match load_stored_ca(store, master_key).await? {
            Some(ca) => ca,
            None => {
                let ca_key_path = self.path("ca.key");
                let local = match (
                    fs::read_to_string(self.ca_cert_path()),
                    fs::read_to_string(&ca_key_path),
                ) {
                    (Ok(cert), Ok(key)) => {
                        Some(CertificateAuthority::from_pem(&cert, &key).map_err(|error| {
                            StartError::Tls(format!("local CA in {}: {error}", self.root.display()))
                        })?)
                    }
                    _ => None,
                };
                let ca = match local {
                    Some(ca) => ca,
                    None => CertificateAuthority::generate("Ambient Local CA", now)
                        .map_err(|error| StartError::Tls(format!("generate local CA: {error}")))?,
                };
                let stored = StoredCa {
                    certificate_pem: ca.cert_pem().to_owned(),
                    sealed_key: base64::engine::general_purpose::STANDARD
                        .encode(master_key.seal(ca.key_pem().as_bytes(), CA_SEALING_AAD)),
                };
                let value = serde_json::to_string(&stored)
                    .map_err(|error| StartError::Tls(format!("store the CA: {error}")))?;
                match store
                    .apply(vec![store::Write::InsertSetting { name: CA_SETTING.to_owned(), value }])
                    .await
                {
                    Ok(()) => {
                        tracing::info!("the deployment CA is kept in the database");
                        ca
                    }
                    // Another node stored one first: use that.
                    Err(store::Error::Conflict(_)) => load_stored_ca(store, master_key)
                        .await?
                        .ok_or_else(|| StartError::Tls("the deployment CA vanished".to_owned()))?,
                    Err(error) => return Err(error.into()),
                }
            }
        };
        if fs::read_to_string(self.ca_cert_path()).ok().as_deref() != Some(ca.cert_pem()) {
            write_public(&self.ca_cert_path(), ca.cert_pem().as_bytes())
                .map_err(|error| StartError::DataDir { path: self.ca_cert_path(), error })?;
        }
        self.write_ca_bundle(&ca)?;
        Ok(ca)
    }

    /// This node's server certificate from `ca`: the one in `server.pem` when `ca` issued it,
    /// it covers `dns_names` and `ip_addresses` and has more than 30 days left, else a new one.
    pub fn tls_material(
        &self,
        ca: CertificateAuthority,
        dns_names: &[String],
        ip_addresses: &[IpAddr],
        now: UnixTime,
    ) -> Result<TlsMaterial, StartError> {
        let io = |path: PathBuf| move |error| StartError::DataDir { path: path.clone(), error };
        let cert_path = self.path("server.pem");
        let key_path = self.path("server.key");
        let issuer_path = self.path(SERVER_CERT_ISSUER_FILE);
        let ca_fingerprint = hex(&crypto::hash::sha256(ca.cert_der()));
        if let (Ok(cert_pem), Ok(key_pem), Ok(issuer)) = (
            fs::read_to_string(&cert_path),
            fs::read_to_string(&key_path),
            fs::read_to_string(&issuer_path),
        ) && let Ok(info) = crypto::pki::certificate_info(cert_pem.as_bytes())
        {
            let fresh = info.not_after.secs() - now.secs() > SERVER_CERT_RENEW_DAYS * 86_400;
            let covers = dns_names.iter().all(|name| info.dns_names.contains(name))
                && ip_addresses.iter().all(|ip| info.ip_addresses.contains(ip));
            // A certificate of another CA (a node joining a deployment) is never served.
            let same_ca = issuer.trim() == ca_fingerprint;
            if fresh && covers && same_ca {
                return Ok(TlsMaterial {
                    ca,
                    server_cert_pem: cert_pem,
                    server_key_pem: zeroize::Zeroizing::new(key_pem),
                });
            }
        }
        let issued = ca
            .issue_server_certificate(dns_names, ip_addresses, now, SERVER_CERT_VALIDITY_DAYS)
            .map_err(|error| StartError::Tls(format!("issue server certificate: {error}")))?;
        write_private(&key_path, issued.key_pem.as_bytes()).map_err(io(key_path.clone()))?;
        write_public(&cert_path, issued.cert_pem.as_bytes()).map_err(io(cert_path.clone()))?;
        write_public(&issuer_path, ca_fingerprint.as_bytes()).map_err(io(issuer_path.clone()))?;
        tracing::info!(path = %cert_path.display(), "issued server certificate");
        Ok(TlsMaterial { ca, server_cert_pem: issued.cert_pem, server_key_pem: issued.key_pem })
    }

    fn write_ca_bundle(&self, ca: &CertificateAuthority) -> Result<(), StartError> {
        let mut bundle = ca.cert_pem().to_owned();
        for system in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"] {
            if let Ok(roots) = fs::read_to_string(system) {
                bundle.push('\n');
                bundle.push_str(&roots);
                break;
            }
        }
        let path = self.ca_bundle_path();
        write_public(&path, bundle.as_bytes()).map_err(|error| StartError::DataDir { path, error })
    }
}

/// The deployment CA stored in the database, if there is one.
async fn load_stored_ca(
    store: &dyn store::Store,
    master_key: &MasterKey,
) -> Result<Option<CertificateAuthority>, StartError> {
    let Some(value) = store.get_setting(CA_SETTING).await? else { return Ok(None) };
    let unusable =
        |why: String| StartError::Tls(format!("the deployment CA in the database: {why}"));
    let stored: StoredCa =
        serde_json::from_str(&value).map_err(|error| unusable(error.to_string()))?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&stored.sealed_key)
        .map_err(|error| unusable(error.to_string()))?;
    let key_pem = master_key.open(&sealed, CA_SEALING_AAD).map_err(|_| {
        unusable(
            "its key does not open under this master key (every node needs the same master key)"
                .to_owned(),
        )
    })?;
    let key_pem = std::str::from_utf8(&key_pem).map_err(|error| unusable(error.to_string()))?;
    CertificateAuthority::from_pem(&stored.certificate_pem, key_pem)
        .map(Some)
        .map_err(|error| unusable(error.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Writes a file readable only by its owner, atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic(path, contents, 0o600)
}

/// Writes a file others may read, atomically.
pub fn write_public(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic(path, contents, 0o644)
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::set_permissions(&temporary, fs::Permissions::from_mode(mode))?;
    fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
