//! Settings shared by every credential ([`ClientOptions`]) and the validated forms credentials
//! keep after construction: [`Authority`], [`TenantId`] and the HTTP client.
//!
//! Options are plain data; credentials check them once in their constructors and keep only the
//! parsed values, so a credential that exists is configured correctly.

use std::fmt;
use std::time::Duration;

use crate::{Error, Result};

/// The public-cloud authority host, used when [`ClientOptions::authority_host`] is left default.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// How long one HTTP request may take in total by default.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings every credential takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The token service, such as `https://login.microsoftonline.com` or an Ambient server's
    /// address. A bare host gets `https://` prepended; any other scheme than `https` is refused
    /// with [`Error::InvalidConfig`], as the Azure SDKs do. Credentials built from the environment
    /// read `AZURE_AUTHORITY_HOST`.
    pub authority_host: String,
    /// Root certificates to trust in addition to the platform's, as PEM documents (each may hold
    /// several `CERTIFICATE` blocks). Use it for a local certificate authority such as Ambient's
    /// `ca.pem`.
    pub extra_root_certificates_pem: Vec<Vec<u8>>,
    /// The longest one HTTP request (connect, send, read the answer) may take.
    pub http_timeout: Duration,
    /// Tenants besides the credential's own that
    /// [`TokenRequestOptions::tenant_id`](crate::TokenRequestOptions::tenant_id) may name; `"*"`
    /// allows any. Empty by default: a request for another tenant is refused.
    pub additionally_allowed_tenants: Vec<String>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            authority_host: DEFAULT_AUTHORITY_HOST.to_owned(),
            extra_root_certificates_pem: Vec::new(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            additionally_allowed_tenants: Vec::new(),
        }
    }
}

/// A validated authority: an `https` URL without query or fragment.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    /// `https://host[:port][/path]` with no trailing slash, so paths join with one `/`.
    base: String,
}

impl Authority {
    /// Parses `host` as Python azure-identity's `normalize_authority` does: a missing scheme
    /// means `https`, any other scheme is refused.
    pub(crate) fn parse(host: &str) -> Result<Authority> {
        let host = host.trim();
        if host.is_empty() {
            return Err(Error::InvalidConfig("authority host is empty".to_owned()));
        }
        let with_scheme =
            if host.contains("://") { host.to_owned() } else { format!("https://{host}") };
        let url = reqwest::Url::parse(&with_scheme).map_err(|error| {
            Error::InvalidConfig(format!("authority host {host:?} is not a URL: {error}"))
        })?;
        if url.scheme() != "https" {
            return Err(Error::InvalidConfig(format!(
                "authority host {host:?} must be a TLS protected (https) URL"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::InvalidConfig(format!("authority host {host:?} has no host")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::InvalidConfig(format!(
                "authority host {host:?} must not have a query or fragment"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidConfig(format!(
                "authority host {host:?} must not carry user information"
            )));
        }
        Ok(Authority { base: url.as_str().trim_end_matches('/').to_owned() })
    }

    /// The v2.0 token endpoint of `tenant`: `{authority}/{tenant}/oauth2/v2.0/token`.
    pub(crate) fn token_endpoint(&self, tenant: &TenantId) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base, tenant.as_str())
    }

    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.base
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.base, f)
    }
}

/// A tenant id or name as Entra accepts it in a URL path: `[A-Za-z0-9.-]`, such as a GUID,
/// `contoso.onmicrosoft.com` or `organizations`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct TenantId(String);

impl TenantId {
    /// Longest tenant accepted: a domain name is at most 253 characters.
    const LEN_MAX: usize = 253;

    pub(crate) fn parse(tenant: &str) -> Result<TenantId> {
        let valid = !tenant.is_empty()
            && tenant.len() <= Self::LEN_MAX
            && tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !valid {
            return Err(Error::InvalidConfig(format!(
                "tenant id {tenant:?} is invalid: use 1 to {} characters from A-Z, a-z, 0-9, '.' and '-'",
                Self::LEN_MAX
            )));
        }
        Ok(TenantId(tenant.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Tenant ids are compared case-insensitively: GUIDs and domain names both are.
    pub(crate) fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// One HTTP client per credential, trusting the platform's roots plus
/// [`ClientOptions::extra_root_certificates_pem`].
///
/// Redirects are not followed: a token request carries a secret or an assertion meant for one
/// endpoint only.
pub(crate) fn build_http_client(options: &ClientOptions) -> Result<reqwest::Client> {
    let mut roots = Vec::new();
    for (index, pem) in options.extra_root_certificates_pem.iter().enumerate() {
        let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|error| {
            Error::InvalidConfig(format!("extra root certificate #{index} is not PEM: {error}"))
        })?;
        if certificates.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "extra root certificate #{index} holds no CERTIFICATE block"
            )));
        }
        roots.extend(certificates);
    }
    if options.http_timeout.is_zero() {
        return Err(Error::InvalidConfig("http timeout must be more than zero".to_owned()));
    }
    reqwest::Client::builder()
        .tls_certs_merge(roots)
        .timeout(options.http_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| Error::InvalidConfig(format!("build http client: {error}")))
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::options::{Authority, TenantId};

    #[track_caller]
    fn check_authority(host: &str, expected: Result<&str, &str>) {
        let actual = Authority::parse(host);
        match (actual, expected) {
            (Ok(authority), Ok(base)) => assert_eq!(authority.as_str(), base),
            (Err(Error::InvalidConfig(message)), Err(fragment)) => {
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}")
            }
            (actual, expected) => panic!("{host:?}: got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn https_authority_is_kept_without_trailing_slash() {
        check_authority(
            "https://login.microsoftonline.com/",
            Ok("https://login.microsoftonline.com"),
        );
        check_authority("https://127.0.0.1:8443", Ok("https://127.0.0.1:8443"));
    }

    #[test]
    fn bare_host_gets_https() {
        check_authority("login.example.com", Ok("https://login.example.com"));
    }

    #[test]
    fn http_authority_is_refused() {
        check_authority("http://127.0.0.1:8080", Err("must be a TLS protected (https) URL"));
        check_authority("ftp://example.com", Err("must be a TLS protected (https) URL"));
    }

    #[test]
    fn authority_with_query_or_userinfo_is_refused() {
        check_authority("https://example.com/?x=1", Err("query or fragment"));
        check_authority("https://user:pw@example.com", Err("user information"));
        check_authority("  ", Err("empty"));
    }

    #[test]
    fn tenant_id_allows_guids_domains_and_names_only() {
        for good in ["72f988bf-86f1-41af-91ab-2d7cd011db47", "contoso.onmicrosoft.com", "common"] {
            assert_eq!(TenantId::parse(good).map(|t| t.as_str().to_owned()), Ok(good.to_owned()));
        }
        for bad in ["", "a/b", "tenant?x", "with space", &"a".repeat(254)] {
            assert!(
                matches!(TenantId::parse(bad), Err(Error::InvalidConfig(_))),
                "{bad:?} accepted"
            );
        }
    }
}
