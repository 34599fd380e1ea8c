//! The Entra ID (v2.0) token endpoint client shared by the confidential-client credentials:
//! client secret, client certificate and, later, federated assertions (workload identity).
//!
//! Like azure-identity's `AadClient`, it posts straight to `{authority}/{tenant}/oauth2/v2.0/token`
//! with no instance or OIDC discovery (03-sts.md §1).

use crate::clock::SharedClock;
use crate::credential::{AccessToken, TokenRequestOptions};
use crate::options::{Authority, ClientOptions, TenantId, build_http_client};
use crate::response::{describe_http_error, parse_error_response, parse_token_response, read_body};
use crate::secret::Secret;
use crate::{Error, Result};

/// `client_assertion_type` of a JWT client assertion (RFC 7523).
pub(crate) const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An application's connection to its tenant's token endpoint.
pub(crate) struct EntraClient {
    http: reqwest::Client,
    authority: Authority,
    tenant_id: TenantId,
    client_id: String,
    /// As given in [`ClientOptions::additionally_allowed_tenants`]; `"*"` allows any.
    additionally_allowed_tenants: Vec<String>,
    clock: SharedClock,
}

/// How the application proves who it is.
pub(crate) enum ClientAuthentication<'a> {
    Secret(&'a Secret),
    /// A signed JWT: our own certificate assertion or a federated token.
    Assertion(&'a Secret),
}

impl EntraClient {
    pub(crate) fn new(
        tenant_id: &str,
        client_id: &str,
        options: &ClientOptions,
        clock: SharedClock,
    ) -> Result<EntraClient> {
        let tenant_id = TenantId::parse(tenant_id)?;
        if client_id.trim().is_empty() {
            return Err(Error::InvalidConfig("client id is empty".to_owned()));
        }
        for tenant in &options.additionally_allowed_tenants {
            if tenant != "*" {
                TenantId::parse(tenant)?;
            }
        }
        Ok(EntraClient {
            http: build_http_client(options)?,
            authority: Authority::parse(&options.authority_host)?,
            tenant_id,
            client_id: client_id.to_owned(),
            additionally_allowed_tenants: options.additionally_allowed_tenants.clone(),
            clock,
        })
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The tenant a request goes to: the credential's own unless `options` names another that
    /// is allowed, as azure-identity's `resolve_tenant` decides.
    pub(crate) fn resolve_tenant(&self, options: &TokenRequestOptions) -> Result<TenantId> {
        let Some(requested) = options.tenant_id.as_deref() else {
            return Ok(self.tenant_id.clone());
        };
        if self.tenant_id.eq_ignore_case(requested) {
            return Ok(self.tenant_id.clone());
        }
        let requested = TenantId::parse(requested)?;
        let allowed = self
            .additionally_allowed_tenants
            .iter()
            .any(|tenant| tenant == "*" || requested.eq_ignore_case(tenant));
        if !allowed {
            return Err(Error::InvalidConfig(format!(
                "the credential is not configured to get tokens for tenant {:?}; add it to additionally_allowed_tenants, or \"*\" for any",
                requested.as_str()
            )));
        }
        Ok(requested)
    }

    /// The token endpoint URL of `tenant`, which is also a client assertion's `aud`.
    pub(crate) fn token_endpoint(&self, tenant: &TenantId) -> String {
        self.authority.token_endpoint(tenant)
    }

    /// One client-credentials request for `scope` in `tenant`.
    pub(crate) async fn request_token(
        &self,
        tenant: &TenantId,
        scope: &str,
        authentication: ClientAuthentication<'_>,
    ) -> Result<AccessToken> {
        let url = self.token_endpoint(tenant);
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", &self.client_id),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ];
        match authentication {
            ClientAuthentication::Secret(secret) => form.push(("client_secret", secret.expose())),
            ClientAuthentication::Assertion(assertion) => {
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION_TYPE));
                form.push(("client_assertion", assertion.expose()));
            }
        }
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header("client-request-id", uuid::Uuid::new_v4().to_string())
            .header("return-client-request-id", "true")
            .form(&form)
            .send()
            .await
            .map_err(|error| {
                Error::Http(format!("POST {url}: {}", describe_http_error(&error.without_url())))
            })?;
        let status = response.status();
        let body = read_body(response).await?;
        if !status.is_success() {
            return Err(parse_error_response(status.as_u16(), &body));
        }
        parse_token_response(&body, self.clock.now_unix_secs())
    }
}

impl std::fmt::Debug for EntraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraClient")
            .field("authority", &self.authority)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("additionally_allowed_tenants", &self.additionally_allowed_tenants)
            .finish_non_exhaustive()
    }
}
