//! [`EnvironmentCredential`]: a service principal described by environment variables, as
//! azure-identity's `EnvironmentCredential` reads them.
//!
//! - `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`: a
//!   [`ClientSecretCredential`] (checked first);
//! - else `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_CERTIFICATE_PATH`: a
//!   [`ClientCertificateCredential`] from a PEM file holding the certificate and its unencrypted
//!   private key, or from a PKCS#12 file (`.pfx`, `.p12`) decrypted with
//!   `AZURE_CLIENT_CERTIFICATE_PASSWORD` (empty when unset); `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`
//!   (`1` or `true`) sends `x5c`;
//! - `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` (`;`-separated) complete
//!   the [`ClientOptions`].
//!
//! The file's content decides its kind, not its name: PEM when it holds a `-----BEGIN ` line,
//! PKCS#12 otherwise. PKCS#12 is read by `pkcs12`, a small reader over aws-lc-rs, for files
//! in OpenSSL 3's default format (PBES2, AES-CBC, an HMAC-SHA-256 MAC); files with the legacy
//! 3DES or RC2 ciphers are refused with a command that re-exports them.

use std::fmt;

use async_trait::async_trait;

use crate::assertion::{ClientCertificate, PEM_BYTES_MAX};
use crate::clock::{SharedClock, SystemClock};
use crate::credential::{AccessToken, TokenCredential, TokenRequestOptions};
use crate::env::Env;
use crate::options::ClientOptions;
use crate::pkcs12;
use crate::secret::Secret;
use crate::{
    ClientCertificateCredential, ClientCertificateCredentialOptions, ClientSecretCredential, Error,
    Result,
};

/// A service principal configured by environment variables.
///
/// Built even when the variables are missing: it then answers every request with
/// [`Error::CredentialUnavailable`] naming what is missing, so a chain moves on. Cheap to clone;
/// clones share one token cache.
#[derive(Clone)]
pub struct EnvironmentCredential {
    configured: Configured,
}

#[derive(Clone, Debug)]
enum Configured {
    Secret(ClientSecretCredential),
    Certificate(ClientCertificateCredential),
    Unavailable(String),
}

impl EnvironmentCredential {
    /// A credential from the process environment. `options` supplies the settings the
    /// environment does not (extra root certificates, the HTTP timeout); `AZURE_AUTHORITY_HOST`,
    /// when set, replaces [`ClientOptions::authority_host`].
    ///
    /// Fails with [`Error::InvalidConfig`] when the variables are present but unusable: a
    /// malformed tenant, an unreadable certificate file, a PKCS#12 file with the wrong password
    /// or a legacy cipher, a non-https authority.
    pub fn new(options: ClientOptions) -> Result<EnvironmentCredential> {
        Self::from_env(&Env::from_process(), options)
    }

    /// As [`EnvironmentCredential::new`], reading `env`.
    pub fn from_env(env: &Env, options: ClientOptions) -> Result<EnvironmentCredential> {
        Self::with_clock(env, options, SystemClock::shared())
    }

    pub(crate) fn with_clock(
        env: &Env,
        options: ClientOptions,
        clock: SharedClock,
    ) -> Result<EnvironmentCredential> {
        let options = options_from_env(env, options);
        let configured = match (
            env.get("AZURE_TENANT_ID"),
            env.get("AZURE_CLIENT_ID"),
            env.get("AZURE_CLIENT_SECRET"),
            env.get("AZURE_CLIENT_CERTIFICATE_PATH"),
        ) {
            (Some(tenant_id), Some(client_id), Some(secret), _) => {
                Configured::Secret(ClientSecretCredential::with_clock(
                    tenant_id,
                    client_id,
                    Secret::new(secret),
                    &options,
                    clock,
                )?)
            }
            (Some(tenant_id), Some(client_id), None, Some(path)) => {
                let certificate =
                    read_certificate(path, env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"))?;
                let send_certificate_chain = env
                    .get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
                    .is_some_and(|value| value == "1" || value.eq_ignore_ascii_case("true"));
                let options = ClientCertificateCredentialOptions {
                    client_options: options,
                    send_certificate_chain,
                };
                Configured::Certificate(ClientCertificateCredential::from_certificate(
                    tenant_id,
                    client_id,
                    certificate,
                    &options,
                    clock,
                )?)
            }
            _ => Configured::Unavailable(unavailable_message(env)),
        };
        Ok(EnvironmentCredential { configured })
    }
}

#[async_trait]
impl TokenCredential for EnvironmentCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken> {
        match &self.configured {
            Configured::Secret(credential) => credential.get_token(scopes, options).await,
            Configured::Certificate(credential) => credential.get_token(scopes, options).await,
            Configured::Unavailable(message) => Err(Error::CredentialUnavailable(message.clone())),
        }
    }
}

impl fmt::Debug for EnvironmentCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvironmentCredential").field("configured", &self.configured).finish()
    }
}

/// `options` with `AZURE_AUTHORITY_HOST` and `AZURE_ADDITIONALLY_ALLOWED_TENANTS` applied.
pub(crate) fn options_from_env(env: &Env, mut options: ClientOptions) -> ClientOptions {
    if let Some(authority_host) = env.get("AZURE_AUTHORITY_HOST") {
        authority_host.clone_into(&mut options.authority_host);
    }
    if let Some(tenants) = env.get("AZURE_ADDITIONALLY_ALLOWED_TENANTS") {
        options
            .additionally_allowed_tenants
            .extend(tenants.split(';').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned));
    }
    options
}

fn unavailable_message(env: &Env) -> String {
    let mut missing = env.missing(&["AZURE_TENANT_ID", "AZURE_CLIENT_ID"]);
    if env.get("AZURE_CLIENT_SECRET").is_none()
        && env.get("AZURE_CLIENT_CERTIFICATE_PATH").is_none()
    {
        missing.push("AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH");
    }
    format!(
        "EnvironmentCredential authentication unavailable: environment variables are not fully configured: missing {}",
        missing.join(", ")
    )
}

/// Reads the PEM or PKCS#12 file at `path`; `password` decrypts PKCS#12.
fn read_certificate(path: &str, password: Option<&str>) -> Result<ClientCertificate> {
    let bytes = std::fs::read(path).map_err(|error| {
        Error::InvalidConfig(format!("read AZURE_CLIENT_CERTIFICATE_PATH {path:?}: {error}"))
    })?;
    if bytes.len() > PEM_BYTES_MAX {
        return Err(Error::InvalidConfig(format!(
            "AZURE_CLIENT_CERTIFICATE_PATH {path:?} is larger than {PEM_BYTES_MAX} bytes"
        )));
    }
    if contains(&bytes, b"-----BEGIN ") {
        if password.is_some() && contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(Error::InvalidConfig(format!(
                "AZURE_CLIENT_CERTIFICATE_PATH {path:?} holds an encrypted private key, which is not supported; decrypt it with `openssl pkey -in {path} -out key.pem`"
            )));
        }
        return ClientCertificate::from_pem(&bytes);
    }
    // Every PKCS#12 file is a DER SEQUENCE; anything else is neither kind.
    if bytes.first() != Some(&0x30) {
        return Err(Error::InvalidConfig(format!(
            "AZURE_CLIENT_CERTIFICATE_PATH {path:?} is not a PEM file or a PKCS#12 file"
        )));
    }
    let in_file = |error: Error| match error {
        Error::InvalidConfig(message) => {
            Error::InvalidConfig(format!("AZURE_CLIENT_CERTIFICATE_PATH {path:?}: {message}"))
        }
        other => other,
    };
    let contents = pkcs12::parse(&bytes, password.unwrap_or("")).map_err(in_file)?;
    ClientCertificate::from_der(
        &contents.private_key_pkcs8_der,
        contents.certificates_der,
        "PKCS#12 file",
    )
    .map_err(in_file)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests;
