//! [`WorkloadIdentityCredential`]: an application proves who it is with a token another issuer
//! gave it (a Kubernetes service-account token, written to a file by the platform), exchanged
//! at Entra as a client assertion (02-hosted-endpoints.md §7).
//!
//! The request is azure-identity's `ClientAssertionCredential`'s: `POST
//! {authority}/{tenant}/oauth2/v2.0/token` with `client_assertion` = the file's contents and
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, no discovery.
//! The file is read again for every token request, because the platform rotates it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::{CacheKey, TokenCache};
use crate::clock::{SharedClock, SystemClock};
use crate::credential::{AccessToken, TokenCredential, TokenRequestOptions};
use crate::entra::{ClientAuthentication, EntraClient};
use crate::env::Env;
use crate::environment::options_from_env;
use crate::options::ClientOptions;
use crate::scope::client_credentials_scope;
use crate::secret::Secret;
use crate::{Error, Result};

/// Largest federated token file read. Service-account tokens are about 1 KiB.
pub(crate) const TOKEN_FILE_BYTES_MAX: u64 = 64 * 1024;

/// An application (or user-assigned identity) authenticating with a federated token file.
///
/// Cheap to clone; clones share one HTTP client and one token cache.
#[derive(Clone)]
pub struct WorkloadIdentityCredential {
    inner: Arc<Inner>,
}

enum Inner {
    Configured { entra: EntraClient, token_file_path: PathBuf, cache: TokenCache },
    Unavailable(String),
}

impl WorkloadIdentityCredential {
    /// A credential for application `client_id` in `tenant_id`, presenting the contents of
    /// `token_file_path`.
    ///
    /// Fails with [`Error::InvalidConfig`] for a malformed tenant, an empty client id or path, a
    /// non-https authority or unreadable extra root certificates. The file itself is read at each
    /// token request.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        token_file_path: impl Into<PathBuf>,
        options: ClientOptions,
    ) -> Result<WorkloadIdentityCredential> {
        Self::with_clock(
            tenant_id,
            client_id,
            token_file_path.into(),
            &options,
            SystemClock::shared(),
        )
    }

    /// A credential from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
    /// `AZURE_AUTHORITY_HOST` (which, when set, replaces [`ClientOptions::authority_host`]) in
    /// `env`. When one of the first three is missing the credential is built anyway and answers
    /// [`Error::CredentialUnavailable`] naming it.
    pub fn from_env(env: &Env, options: ClientOptions) -> Result<WorkloadIdentityCredential> {
        Self::from_env_with_clock(env, options, SystemClock::shared())
    }

    pub(crate) fn from_env_with_clock(
        env: &Env,
        options: ClientOptions,
        clock: SharedClock,
    ) -> Result<WorkloadIdentityCredential> {
        let options = options_from_env(env, options);
        match (
            env.get("AZURE_TENANT_ID"),
            env.get("AZURE_CLIENT_ID"),
            env.get("AZURE_FEDERATED_TOKEN_FILE"),
        ) {
            (Some(tenant_id), Some(client_id), Some(path)) => {
                Self::with_clock(tenant_id, client_id, PathBuf::from(path), &options, clock)
            }
            _ => {
                let missing = env.missing(&[
                    "AZURE_TENANT_ID",
                    "AZURE_CLIENT_ID",
                    "AZURE_FEDERATED_TOKEN_FILE",
                ]);
                Ok(WorkloadIdentityCredential {
                    inner: Arc::new(Inner::Unavailable(format!(
                        "WorkloadIdentityCredential authentication unavailable: environment variables are not fully configured: missing {}",
                        missing.join(", ")
                    ))),
                })
            }
        }
    }

    pub(crate) fn with_clock(
        tenant_id: &str,
        client_id: &str,
        token_file_path: PathBuf,
        options: &ClientOptions,
        clock: SharedClock,
    ) -> Result<WorkloadIdentityCredential> {
        if token_file_path.as_os_str().is_empty() {
            return Err(Error::InvalidConfig("federated token file path is empty".to_owned()));
        }
        let entra = EntraClient::new(tenant_id, client_id, options, clock.clone())?;
        Ok(WorkloadIdentityCredential {
            inner: Arc::new(Inner::Configured {
                entra,
                token_file_path,
                cache: TokenCache::new(clock),
            }),
        })
    }
}

#[async_trait]
impl TokenCredential for WorkloadIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken> {
        let (entra, token_file_path, cache) = match &*self.inner {
            Inner::Configured { entra, token_file_path, cache } => (entra, token_file_path, cache),
            Inner::Unavailable(message) => {
                return Err(Error::CredentialUnavailable(message.clone()));
            }
        };
        let scope = client_credentials_scope(scopes)?;
        let tenant = entra.resolve_tenant(options)?;
        let key = CacheKey::new(&[&scope], Some(tenant.as_str()));
        cache
            .get_token(key, || async {
                let assertion = read_token_file(token_file_path).await?;
                entra
                    .request_token(&tenant, &scope, ClientAuthentication::Assertion(&assertion))
                    .await
            })
            .await
    }
}

impl fmt::Debug for WorkloadIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("WorkloadIdentityCredential");
        match &*self.inner {
            Inner::Configured { entra, token_file_path, .. } => {
                debug.field("entra", entra).field("token_file_path", token_file_path)
            }
            Inner::Unavailable(message) => debug.field("unavailable", message),
        };
        debug.finish_non_exhaustive()
    }
}

/// The federated token: the file's contents without surrounding whitespace (a trailing newline
/// is common).
async fn read_token_file(path: &Path) -> Result<Secret> {
    let unreadable = |error: &dyn fmt::Display| {
        Error::InvalidConfig(format!("read federated token file {}: {error}", path.display()))
    };
    let metadata = tokio::fs::metadata(path).await.map_err(|error| unreadable(&error))?;
    if metadata.len() > TOKEN_FILE_BYTES_MAX {
        return Err(unreadable(&format_args!("larger than {TOKEN_FILE_BYTES_MAX} bytes")));
    }
    let text = tokio::fs::read_to_string(path).await.map_err(|error| unreadable(&error))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(unreadable(&"the file is empty"));
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests;
