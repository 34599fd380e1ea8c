//! The data directory: master key, local CA, server certificate, admin credential, `env.sh`.
//!
//! Files holding secrets are created with mode 0600 (the directory 0700) and written atomically
//! (temporary file, fsync, rename), so a crash never leaves half a key behind.

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crypto::envelope::MasterKey;
use crypto::pki::CertificateAuthority;
use domain::UnixTime;

use crate::StartError;

/// Server certificates are renewed when fewer than this many days of validity remain.
const SERVER_CERT_RENEW_DAYS: i64 = 30;
const SERVER_CERT_VALIDITY_DAYS: u32 = 365;

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
        let fail =
            |error: std::io::Error| StartError::DataDir { path: root.to_owned(), source: error };
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
                write_private(file, key.to_base64().expose().as_bytes()).map_err(|error| {
                    StartError::DataDir { path: file.to_owned(), source: error }
                })?;
                tracing::info!(path = %file.display(), "created master key");
                Ok(key)
            }
            Err(error) => Err(StartError::DataDir { path: file.to_owned(), source: error }),
        }
    }

    /// Loads the local CA, or creates it on first start; then loads the server certificate,
    /// issuing a new one when it is missing, near expiry, or lacks one of `dns_names`.
    pub fn tls_material(
        &self,
        dns_names: &[String],
        ip_addresses: &[IpAddr],
        now: UnixTime,
    ) -> Result<TlsMaterial, StartError> {
        let io =
            |path: PathBuf| move |error| StartError::DataDir { path: path.clone(), source: error };
        let ca_key_path = self.path("ca.key");
        let mut ca_created = false;
        let ca = match (fs::read_to_string(self.ca_cert_path()), fs::read_to_string(&ca_key_path)) {
            (Ok(cert), Ok(key)) => {
                CertificateAuthority::from_pem(&cert, &key).map_err(|error| {
                    StartError::Tls(format!("local CA in {}: {error}", self.root.display()))
                })?
            }
            _ => {
                let ca = CertificateAuthority::generate("Ambient Local CA", now)
                    .map_err(|error| StartError::Tls(format!("generate local CA: {error}")))?;
                write_private(&ca_key_path, ca.key_pem().as_bytes())
                    .map_err(io(ca_key_path.clone()))?;
                write_public(&self.ca_cert_path(), ca.cert_pem().as_bytes())
                    .map_err(io(self.ca_cert_path()))?;
                tracing::info!(path = %self.ca_cert_path().display(), "created local CA");
                ca_created = true;
                ca
            }
        };
        self.write_ca_bundle(&ca)?;

        let cert_path = self.path("server.pem");
        let key_path = self.path("server.key");
        if let (Ok(cert_pem), Ok(key_pem)) =
            (fs::read_to_string(&cert_path), fs::read_to_string(&key_path))
            && let Ok(info) = crypto::pki::certificate_info(cert_pem.as_bytes())
        {
            let fresh = info.not_after.secs() - now.secs() > SERVER_CERT_RENEW_DAYS * 86_400;
            let covers = dns_names.iter().all(|name| info.dns_names.contains(name))
                && ip_addresses.iter().all(|ip| info.ip_addresses.contains(ip));
            // A new CA (its key was lost) must not keep serving a certificate of the old one.
            let same_ca = !ca_created && info.issuer_cn.as_deref() == Some("Ambient Local CA");
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
        write_public(&path, bundle.as_bytes())
            .map_err(|error| StartError::DataDir { path, source: error })
    }
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
