//! [`ClientCertificateCredential`]: an application signs in with a certificate, proving it holds
//! the private key by a signed client assertion (`private_key_jwt`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::assertion::ClientCertificate;
use crate::cache::{CacheKey, TokenCache};
use crate::clock::{SharedClock, SystemClock};
use crate::credential::{AccessToken, TokenCredential, TokenRequestOptions};
use crate::entra::{ClientAuthentication, EntraClient};
use crate::options::ClientOptions;
use crate::scope::client_credentials_scope;

/// Options of [`ClientCertificateCredential`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCertificateCredentialOptions {
    /// Settings shared by every credential.
    pub client_options: ClientOptions,
    /// Send the certificate chain in the assertion's `x5c` header, for subject-name/issuer
    /// authentication. Off by default, as in azure-identity.
    pub send_certificate_chain: bool,
}

/// A service principal authenticating with a certificate and its private key.
///
/// Cheap to clone; clones share one HTTP client, the parsed key and one token cache.
#[derive(Clone)]
pub struct ClientCertificateCredential {
    inner: Arc<Inner>,
}

struct Inner {
    entra: EntraClient,
    certificate: ClientCertificate,
    send_certificate_chain: bool,
    cache: TokenCache,
}

impl ClientCertificateCredential {
    /// A credential for application `client_id` in `tenant_id`, from a PEM holding the
    /// certificate (and optionally its chain) and the RSA private key, as PKCS#8
    /// (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`), unencrypted.
    ///
    /// The key is parsed here, once. Fails with [`Error::InvalidConfig`](crate::Error::InvalidConfig)
    /// when the PEM lacks either part, the key is not RSA, or no certificate matches the key.
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        certificate_pem: &[u8],
        options: ClientCertificateCredentialOptions,
    ) -> Result<ClientCertificateCredential> {
        Self::with_clock(tenant_id, client_id, certificate_pem, &options, SystemClock::shared())
    }

    pub(crate) fn with_clock(
        tenant_id: &str,
        client_id: &str,
        certificate_pem: &[u8],
        options: &ClientCertificateCredentialOptions,
        clock: SharedClock,
    ) -> Result<ClientCertificateCredential> {
        let certificate = ClientCertificate::from_pem(certificate_pem)?;
        Self::from_certificate(tenant_id, client_id, certificate, options, clock)
    }

    /// A credential from an already parsed certificate (such as one read from PKCS#12).
    pub(crate) fn from_certificate(
        tenant_id: &str,
        client_id: &str,
        certificate: ClientCertificate,
        options: &ClientCertificateCredentialOptions,
        clock: SharedClock,
    ) -> Result<ClientCertificateCredential> {
        let entra = EntraClient::new(tenant_id, client_id, &options.client_options, clock.clone())?;
        let cache = TokenCache::new(clock);
        Ok(ClientCertificateCredential {
            inner: Arc::new(Inner {
                entra,
                certificate,
                send_certificate_chain: options.send_certificate_chain,
                cache,
            }),
        })
    }
}

impl ClientCertificateCredential {
    /// A fresh client assertion for this credential's own token endpoint
    /// (`{authority}/{tenant}/oauth2/v2.0/token`), for a caller that sends the token request
    /// itself: Ambient's web console posts it to the server's bound address rather than to the
    /// authority's name. Each call signs a new assertion (its own `jti`, valid 10 minutes).
    pub fn client_assertion(&self) -> Result<crate::Secret> {
        let inner = &self.inner;
        let tenant = inner.entra.resolve_tenant(&TokenRequestOptions::default())?;
        inner.certificate.assertion(
            inner.entra.client_id(),
            &inner.entra.token_endpoint(&tenant),
            inner.entra.clock().now_unix_secs(),
            inner.send_certificate_chain,
        )
    }
}

#[async_trait]
impl TokenCredential for ClientCertificateCredential {
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
            .get_token(key, || async {
                // A fresh assertion per request: its lifetime is short and its jti unique.
                let assertion = inner.certificate.assertion(
                    inner.entra.client_id(),
                    &inner.entra.token_endpoint(&tenant),
                    inner.entra.clock().now_unix_secs(),
                    inner.send_certificate_chain,
                )?;
                inner
                    .entra
                    .request_token(&tenant, &scope, ClientAuthentication::Assertion(&assertion))
                    .await
            })
            .await
    }
}

impl fmt::Debug for ClientCertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificateCredential")
            .field("entra", &self.inner.entra)
            .field("certificate", &self.inner.certificate)
            .field("send_certificate_chain", &self.inner.send_certificate_chain)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
