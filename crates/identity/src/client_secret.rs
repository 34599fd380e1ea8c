//! [`ClientSecretCredential`]: an application signs in with its client id and a client secret
//! (OAuth 2.0 client credentials, `client_secret` in the form body).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::{CacheKey, TokenCache};
use crate::clock::{SharedClock, SystemClock};
use crate::credential::{AccessToken, TokenCredential, TokenRequestOptions};
use crate::entra::{ClientAuthentication, EntraClient};
use crate::options::ClientOptions;
use crate::scope::client_credentials_scope;
use crate::secret::Secret;
use crate::{Error, Result};

/// A service principal authenticating with a client secret.
///
/// Cheap to clone; clones share one HTTP client and one token cache.
#[derive(Clone)]
pub struct ClientSecretCredential {
    inner: Arc<Inner>,
}

struct Inner {
    entra: EntraClient,
    secret: Secret,
    cache: TokenCache,
}

impl ClientSecretCredential {
    /// A credential for application `client_id` in `tenant_id` (a GUID or domain name).
    ///
    /// Fails with [`Error::InvalidConfig`] for a malformed tenant, an empty client id or secret,
    /// a non-https authority or unreadable extra root certificates.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        secret: impl Into<Secret>,
        options: ClientOptions,
    ) -> Result<ClientSecretCredential> {
        Self::with_clock(tenant_id, client_id, secret.into(), &options, SystemClock::shared())
    }

    pub(crate) fn with_clock(
        tenant_id: &str,
        client_id: &str,
        secret: Secret,
        options: &ClientOptions,
        clock: SharedClock,
    ) -> Result<ClientSecretCredential> {
        if secret.expose().is_empty() {
            return Err(Error::InvalidConfig("client secret is empty".to_owned()));
        }
        let entra = EntraClient::new(tenant_id, client_id, options, clock.clone())?;
        let cache = TokenCache::new(clock);
        Ok(ClientSecretCredential { inner: Arc::new(Inner { entra, secret, cache }) })
    }
}

#[async_trait]
impl TokenCredential for ClientSecretCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken> {
        let scope = client_credentials_scope(scopes)?;
        let tenant = self.inner.entra.resolve_tenant(options)?;
        let key = CacheKey::new(&[&scope], Some(tenant.as_str()));
        let inner = &self.inner;
        inner
            .cache
            .get_token(key, || {
                inner.entra.request_token(
                    &tenant,
                    &scope,
                    ClientAuthentication::Secret(&inner.secret),
                )
            })
            .await
    }
}

impl fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecretCredential")
            .field("entra", &self.inner.entra)
            .field("secret", &self.inner.secret)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
