//! The credential abstraction: [`TokenCredential`], what it returns ([`AccessToken`]) and what a
//! caller may ask for ([`TokenRequestOptions`]).
//!
//! Every credential of this crate implements [`TokenCredential`]; code that needs tokens takes
//! an `Arc<dyn TokenCredential>` and does not care where they come from.

use std::fmt;

use async_trait::async_trait;

use crate::Result;
use crate::secret::Secret;

/// A source of OAuth 2.0 access tokens.
///
/// Object-safe: hold it as `Arc<dyn TokenCredential>`. Implementations cache tokens, so callers
/// may ask before every request.
#[async_trait]
pub trait TokenCredential: Send + Sync + fmt::Debug {
    /// An access token for `scopes` (for Azure resources, one scope such as
    /// `https://vault.azure.net/.default`).
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken>;
}

/// A bearer token and when it stops being usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    /// The token to send as `Authorization: Bearer ...`.
    pub token: Secret,
    /// When the token expires, in seconds since the Unix epoch.
    pub expires_on: i64,
    /// When the credential will fetch a new token instead of returning this one, in seconds since
    /// the Unix epoch. `None` means five minutes before [`AccessToken::expires_on`].
    pub refresh_on: Option<i64>,
}

/// Per-request options of [`TokenCredential::get_token`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenRequestOptions {
    /// Ask for a token from this tenant instead of the credential's own. Credentials that
    /// support it accept only their own tenant and those listed in
    /// [`ClientOptions::additionally_allowed_tenants`](crate::ClientOptions::additionally_allowed_tenants).
    pub tenant_id: Option<String>,
}
