//! The host's own credentials: a P-256 key generated on the host (it never leaves it) and the
//! client certificate the server issued for it.
//!
//! First start: with a host name and a one-time join token, the agent generates a key and a
//! CSR, `POST`s them to `/hosting/enroll`, and stores `agent.key` (0600), `agent.pem` and
//! `agent.json` (host name, certificate expiry and lifetime) in the data directory, in that
//! order, each atomically; `agent.json` last, so it marks a complete enrollment. Later starts
//! reuse the files and need no token.
//!
//! Renewal: at half the certificate's lifetime the agent generates a new key, `POST`s its CSR
//! to `/hosting/renew` (authenticated by the current certificate), writes the new files and
//! swaps the HTTPS client. A 401/403 there means the server no longer accepts the host: the
//! agent stops serving tokens and keeps retrying.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api_types::hosting::{EnrollRequest, IssuedHostCertificate};
use domain::{Clock, UnixTime};
use serde::{Deserialize, Serialize};

use crate::state::Shared;
use crate::upstream::{self, Backoff, CallError};
use crate::{AgentConfig, Error, files};

const KEY_FILE: &str = "agent.key";
const CERT_FILE: &str = "agent.pem";
const STATE_FILE: &str = "agent.json";
/// Longest pause between renewal attempts after failures.
const RENEW_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The renewal wait re-reads the clock at least this often, so a clock that jumps is noticed.
const RENEW_CHECK_INTERVAL_MAX: Duration = Duration::from_secs(30);

/// The host's name, key and certificate, loaded or freshly enrolled.
pub(crate) struct Credentials {
    host: String,
    cert_pem: String,
    key_pem: SecretPem,
    schedule: RenewalSchedule,
}

/// When to renew the certificate next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RenewalSchedule {
    renew_at: UnixTime,
    /// The certificate's expiry, when known.
    not_after: Option<UnixTime>,
}

/// PEM text holding a private key: `Debug` prints `[redacted]` and the bytes are overwritten
/// when dropped (best effort: TLS libraries keep their own copies).
pub(crate) struct SecretPem(Vec<u8>);

/// `agent.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostState {
    host: String,
    /// Unix seconds; absent in files from elsewhere, which makes the agent renew at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_not_after: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_lifetime_secs: Option<i64>,
}

/// A failed renewal.
#[derive(Debug, thiserror::Error)]
enum RenewError {
    #[error("generate key pair: {0}")]
    Key(#[source] crypto::Error),
    #[error(transparent)]
    Call(CallError),
    #[error("load renewed certificate: {0}")]
    Tls(#[source] reqwest::Error),
}

/// The stored credentials, or a new enrollment when there are none (or the stored certificate
/// has expired and a join token was given).
pub(crate) async fn load_or_enroll(
    config: &AgentConfig,
    servers: &[String],
) -> Result<Credentials, Error> {
    let dir = &config.data_dir;
    files::ensure_private_dir(dir).map_err(io_error(dir))?;
    if let Some(stored) = load(dir)? {
        if let Some(configured) = &config.host
            && !configured.eq_ignore_ascii_case(&stored.host)
        {
            return Err(Error::HostMismatch {
                stored: stored.host.clone(),
                configured: configured.clone(),
            });
        }
        let expired = stored.not_after_passed(config.clock.as_ref());
        if !expired || config.join_token.is_none() {
            tracing::info!(host = %stored.host, "using stored host credentials");
            return Ok(stored);
        }
        tracing::warn!(host = %stored.host, "stored certificate expired; enrolling again");
    }
    let (Some(host), Some(join_token)) = (&config.host, &config.join_token) else {
        return Err(Error::NotEnrolled);
    };
    let generated = crypto::pki::generate_csr(host).map_err(Error::KeyGeneration)?;
    let key_pem = SecretPem(generated.key_pem.as_bytes().to_vec());
    let client = upstream::client(&config.server_ca_pem, None).map_err(Error::Tls)?;
    let request = EnrollRequest {
        host: host.clone(),
        join_token: join_token.expose().clone(),
        csr: generated.csr_pem.clone(),
    };
    let issued =
        upstream::enroll(&client, servers, &request).await.map_err(|error| match error {
            CallError::Refused { status, .. } => Error::EnrollmentRefused { status },
            other => Error::Enrollment(other.to_string()),
        })?;
    store(dir, host, &key_pem, &issued)?;
    tracing::info!(host = %host, not_after = issued.not_after, "host enrolled");
    Ok(Credentials {
        host: host.clone(),
        cert_pem: issued.certificate,
        key_pem,
        schedule: RenewalSchedule::for_certificate(issued.not_after, issued.lifetime_secs),
    })
}

/// Renews the certificate at half its lifetime, forever; failures are retried with back-off.
pub(crate) async fn renew_loop(
    shared: Arc<Shared>,
    ca_pem: Vec<u8>,
    data_dir: PathBuf,
    mut schedule: RenewalSchedule,
) {
    loop {
        wait_until(shared.clock.as_ref(), schedule.renew_at).await;
        let mut backoff = Backoff::new(RENEW_BACKOFF_MAX);
        schedule = loop {
            match renew_once(&shared, &ca_pem, &data_dir).await {
                Ok(next) => break next,
                Err(error) => {
                    let delay = backoff.next_delay();
                    if matches!(&error, RenewError::Call(call) if call.is_unauthorized()) {
                        shared.set_revoked(true);
                    }
                    tracing::warn!(
                        %error,
                        retry_in_secs = delay.as_secs(),
                        "certificate renewal failed"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        };
    }
}

impl Credentials {
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Certificate and key in one PEM, as `reqwest::Identity::from_pem` takes them.
    pub(crate) fn identity_pem(&self) -> SecretPem {
        identity_pem(&self.cert_pem, &self.key_pem)
    }

    pub(crate) fn schedule(&self) -> RenewalSchedule {
        self.schedule
    }

    fn not_after_passed(&self, clock: &dyn Clock) -> bool {
        self.schedule.not_after.is_some_and(|not_after| not_after <= clock.now())
    }
}

impl RenewalSchedule {
    /// Half-way through the certificate's lifetime.
    fn for_certificate(not_after_secs: i64, lifetime_secs: i64) -> Self {
        RenewalSchedule {
            renew_at: UnixTime::from_secs(not_after_secs - lifetime_secs.max(0) / 2),
            not_after: Some(UnixTime::from_secs(not_after_secs)),
        }
    }

    /// At once (the expiry is unknown).
    fn immediately() -> Self {
        RenewalSchedule { renew_at: UnixTime::from_secs(0), not_after: None }
    }
}

impl SecretPem {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretPem {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            *byte = 0;
        }
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

async fn renew_once(
    shared: &Shared,
    ca_pem: &[u8],
    data_dir: &Path,
) -> Result<RenewalSchedule, RenewError> {
    let generated = crypto::pki::generate_csr(&shared.host).map_err(RenewError::Key)?;
    let key_pem = SecretPem(generated.key_pem.as_bytes().to_vec());
    let issued = shared.api.renew(generated.csr_pem.clone()).await.map_err(RenewError::Call)?;
    let identity = identity_pem(&issued.certificate, &key_pem);
    let client = upstream::client(ca_pem, Some(identity.as_bytes())).map_err(RenewError::Tls)?;
    if let Err(error) = store(data_dir, &shared.host, &key_pem, &issued) {
        // The new certificate still works from memory; the old files stay valid until expiry.
        tracing::error!(%error, "could not save the renewed certificate");
    }
    shared.api.replace_client(client);
    shared.set_revoked(false);
    tracing::info!(host = %shared.host, not_after = issued.not_after, "certificate renewed");
    Ok(RenewalSchedule::for_certificate(issued.not_after, issued.lifetime_secs))
}

fn identity_pem(cert_pem: &str, key_pem: &SecretPem) -> SecretPem {
    let mut pem = Vec::with_capacity(cert_pem.len() + key_pem.0.len() + 1);
    pem.extend_from_slice(cert_pem.as_bytes());
    pem.push(b'\n');
    pem.extend_from_slice(&key_pem.0);
    SecretPem(pem)
}

/// The stored credentials, if all three files exist.
fn load(dir: &Path) -> Result<Option<Credentials>, Error> {
    let (key_path, cert_path, state_path) =
        (dir.join(KEY_FILE), dir.join(CERT_FILE), dir.join(STATE_FILE));
    if !(key_path.is_file() && cert_path.is_file() && state_path.is_file()) {
        return Ok(None);
    }
    let state_text = std::fs::read(&state_path).map_err(io_error(&state_path))?;
    let state: HostState = serde_json::from_slice(&state_text).map_err(|error| {
        Error::CorruptDataDir { path: state_path.clone(), reason: error.to_string() }
    })?;
    if files::readable_by_others(&key_path).map_err(io_error(&key_path))? {
        tracing::warn!(path = %key_path.display(), "private key file is readable by others");
    }
    let key_pem = SecretPem(std::fs::read(&key_path).map_err(io_error(&key_path))?);
    let cert_pem = std::fs::read_to_string(&cert_path).map_err(io_error(&cert_path))?;
    let schedule = match (state.certificate_not_after, state.certificate_lifetime_secs) {
        (Some(not_after), Some(lifetime)) => RenewalSchedule::for_certificate(not_after, lifetime),
        _ => RenewalSchedule::immediately(),
    };
    Ok(Some(Credentials { host: state.host, cert_pem, key_pem, schedule }))
}

fn store(
    dir: &Path,
    host: &str,
    key_pem: &SecretPem,
    issued: &IssuedHostCertificate,
) -> Result<(), Error> {
    let state = HostState {
        host: host.to_owned(),
        certificate_not_after: Some(issued.not_after),
        certificate_lifetime_secs: Some(issued.lifetime_secs),
    };
    let state_json = serde_json::to_vec_pretty(&state).map_err(|error| Error::CorruptDataDir {
        path: dir.join(STATE_FILE),
        reason: error.to_string(),
    })?;
    let writes: [(&str, &[u8], u32); 3] = [
        (KEY_FILE, key_pem.as_bytes(), files::SECRET_FILE_MODE),
        (CERT_FILE, issued.certificate.as_bytes(), files::PUBLIC_FILE_MODE),
        (STATE_FILE, &state_json, files::PUBLIC_FILE_MODE),
    ];
    for (name, contents, mode) in writes {
        let path = dir.join(name);
        files::write_atomically(&path, contents, mode).map_err(io_error(&path))?;
    }
    Ok(())
}

async fn wait_until(clock: &dyn Clock, at: UnixTime) {
    loop {
        let remaining_millis = at.millis() - clock.now().millis();
        let Ok(remaining_millis) = u64::try_from(remaining_millis) else { return };
        if remaining_millis == 0 {
            return;
        }
        let step = Duration::from_millis(remaining_millis).min(RENEW_CHECK_INTERVAL_MAX);
        tokio::time::sleep(step).await;
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::DataDir { path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_half_life() {
        let schedule = RenewalSchedule::for_certificate(1_000, 400);
        assert_eq!(schedule.renew_at, UnixTime::from_secs(800));
    }

    #[test]
    fn secret_pem_debug_is_redacted() {
        let pem = SecretPem(b"-----BEGIN PRIVATE KEY-----".to_vec());
        assert_eq!(format!("{pem:?}"), "[redacted]");
    }
}
