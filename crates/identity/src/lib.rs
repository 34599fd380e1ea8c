//! Credentials for applications: get OAuth 2.0 access tokens from Entra ID (or Ambient, which
//! speaks the same protocols) the way Azure's `azure-identity` libraries do.
//!
//! Every credential implements [`TokenCredential`]: ask it for a token for one scope and send
//! the token as `Authorization: Bearer ...`. Credentials cache tokens (per scope and tenant,
//! refreshed before expiry, one request in flight however many tasks ask), so calling
//! [`TokenCredential::get_token`] before every request is cheap. Clones share the cache.
//!
//! - [`ClientSecretCredential`]: a service principal with a client secret.
//! - [`ClientCertificateCredential`]: a service principal with a certificate; each request
//!   carries a fresh RS256 client assertion.
//! - [`ClientOptions`]: the authority host (`https` only), extra trusted root certificates (for
//!   a local CA such as Ambient's), the HTTP timeout and the tenants a request may switch to.
//! - [`Error`]: [`Error::CredentialUnavailable`] means "not configured here, try the next
//!   credential"; [`Error::Authentication`] carries Entra's `error` and `error_description`
//!   (with its `AADSTS` code).
//!
//! ```no_run
//! use identity::{ClientOptions, ClientSecretCredential, TokenCredential, TokenRequestOptions};
//!
//! # async fn example() -> identity::Result<()> {
//! let options = ClientOptions {
//!     authority_host: "https://ambient.example.com:8443".to_owned(),
//!     extra_root_certificates_pem: vec![std::fs::read("ca.pem").expect("read ca.pem")],
//!     ..ClientOptions::default()
//! };
//! let credential = ClientSecretCredential::new(
//!     "72f988bf-86f1-41af-91ab-2d7cd011db47",
//!     "3f9c2a1e-0000-4000-8000-000000000001",
//!     std::env::var("CLIENT_SECRET").expect("CLIENT_SECRET is set"),
//!     options,
//! )?;
//! let token = credential
//!     .get_token(&["https://vault.azure.net/.default"], &TokenRequestOptions::default())
//!     .await?;
//! let header = format!("Bearer {}", token.token.expose());
//! # let _ = header;
//! # Ok(())
//! # }
//! ```
//!
//! This crate depends on no other crate of the Ambient workspace: it speaks only public
//! protocols, so any Rust program can use it. For the same reason it is the one place outside
//! the `crypto` crate that signs (the client assertions of [`ClientCertificateCredential`], with
//! aws-lc-rs). Secrets (client secrets, tokens, private keys) never appear in `Debug` output.
//!
//! Internals: `entra` posts to `{authority}/{tenant}/oauth2/v2.0/token`; `response` parses
//! token and error bodies; `cache` holds the token cache every credential reuses; `clock` is
//! the single reader of the system time.

#![warn(missing_docs)]

mod assertion;
mod cache;
mod client_certificate;
mod client_secret;
mod clock;
mod credential;
mod entra;
mod options;
mod response;
mod scope;
mod secret;
#[cfg(test)]
mod testing;

pub use client_certificate::{ClientCertificateCredential, ClientCertificateCredentialOptions};
pub use client_secret::ClientSecretCredential;
pub use credential::{AccessToken, TokenCredential, TokenRequestOptions};
pub use options::{ClientOptions, DEFAULT_AUTHORITY_HOST, DEFAULT_HTTP_TIMEOUT};
pub use secret::Secret;

/// The result of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a credential could not produce a token.
///
/// Variants say what the caller can do: a credential chain moves on after
/// [`Error::CredentialUnavailable`] and stops on everything else. `Clone` so that every task
/// waiting on one shared token request receives the same outcome. Messages never contain
/// secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The credential's source is not configured or not present here (no environment variables,
    /// no metadata endpoint, no CLI). A credential chain tries the next credential.
    #[error("credential unavailable: {0}")]
    CredentialUnavailable(String),

    /// The token service refused the request. `error` and `description` are Entra's `error` and
    /// `error_description` fields as received (the description carries the `AADSTS` code).
    #[error("authentication failed: {error}: {description}")]
    Authentication {
        /// The HTTP status of the refusal, when it came over HTTP.
        status: Option<u16>,
        /// The OAuth error code, such as `invalid_client`.
        error: String,
        /// The human-readable description, such as `AADSTS7000215: Invalid client secret ...`.
        description: String,
    },

    /// The token service could not be reached or answered something that is not a token
    /// response: connection refused, TLS failure, timeout, malformed body.
    #[error("http: {0}")]
    Http(String),

    /// The credential was built with settings that can never work (an `http://` authority, a
    /// malformed tenant id, a PEM without a private key), or a request named a tenant the
    /// credential may not use.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The scopes passed to [`TokenCredential::get_token`] cannot be requested from this
    /// credential: none, several where one is required, or an empty one.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
}
