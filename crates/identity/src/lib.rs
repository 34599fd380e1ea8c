//! Credentials for applications: get OAuth 2.0 access tokens from Entra ID (or Ambient, which
//! speaks the same protocols) the way Azure's `azure-identity` libraries do.
//!
//! Every credential implements [`TokenCredential`]: ask it for a token for one scope and send
//! the token as `Authorization: Bearer ...`. Credentials cache tokens (per scope and tenant,
//! refreshed at half-life for tokens of two hours or more and five minutes before expiry
//! otherwise, one request in flight however many tasks ask, the cached token served while a
//! refresh fails), so calling [`TokenCredential::get_token`] before every request is cheap.
//! Clones share the cache.
//!
//! - [`DefaultAzureCredential`]: the chain for code that runs unchanged on a laptop and in
//!   production: [`EnvironmentCredential`] → [`WorkloadIdentityCredential`] →
//!   [`ManagedIdentityCredential`] → [`CliCredential`], narrowed by `AZURE_TOKEN_CREDENTIALS`
//!   (`dev`, `prod` or one credential's name). [`ChainedTokenCredential`] builds other chains.
//! - [`ClientSecretCredential`]: a service principal with a client secret.
//! - [`ClientCertificateCredential`]: a service principal with a certificate; each request
//!   carries a fresh RS256 client assertion.
//! - [`EnvironmentCredential`]: either of those two, from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`
//!   and `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH` (PEM, or PKCS#12 with
//!   `AZURE_CLIENT_CERTIFICATE_PASSWORD`).
//! - [`WorkloadIdentityCredential`]: a federated token file (`AZURE_FEDERATED_TOKEN_FILE`,
//!   read again for every token request) exchanged as a client assertion.
//! - [`ManagedIdentityCredential`]: the identity of the machine, from Service Fabric (HTTPS
//!   with a pinned certificate), App Service (`IDENTITY_ENDPOINT`), Azure Arc (a challenge
//!   answered with a local key file), the legacy MSI endpoint (Azure ML), Cloud Shell, a
//!   federated token file (workload identity, as azure-identity's credential does) or IMDS,
//!   detected in the SDKs' order ([`ManagedIdentitySource`]); [`ManagedIdentityId`] selects a
//!   user-assigned identity.
//! - [`CliCredential`]: `ambient account get-access-token` (or `az ...` when that is what is
//!   installed).
//! - [`ClientOptions`]: the authority host (`https` only), extra trusted root certificates (for
//!   a local CA such as Ambient's), the HTTP timeout and the tenants a request may switch to.
//! - [`Env`]: the environment variables credentials read, as a snapshot: the process's
//!   ([`Env::from_process`]) or any other, so tests never change the process environment.
//! - [`Error`]: [`Error::CredentialUnavailable`] means "not configured here, try the next
//!   credential"; [`Error::Authentication`] carries Entra's `error` and `error_description`
//!   (with its `AADSTS` code).
//!
//! ```no_run
//! use identity::{DefaultAzureCredential, TokenCredential, TokenRequestOptions};
//!
//! # async fn example() -> identity::Result<()> {
//! let credential = DefaultAzureCredential::new(Default::default())?;
//! let token = credential
//!     .get_token(&["https://vault.azure.net/.default"], &TokenRequestOptions::default())
//!     .await?;
//! let header = format!("Bearer {}", token.token.expose());
//! # let _ = header;
//! # Ok(())
//! # }
//! ```
//!
//! A service principal against an Ambient server, trusting its CA:
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
//! # let _ = token;
//! # Ok(())
//! # }
//! ```
//!
//! # A complete example: reading a Key Vault secret
//!
//! `examples/read_secret.rs` reads a secret with [`DefaultAzureCredential`] (or, with
//! `--credential managed-identity`, [`ManagedIdentityCredential`]) and the process's own
//! environment, doing Key Vault's challenge itself: a first request without a token, the
//! `resource` of the `WWW-Authenticate` answer, a token for `{resource}/.default`, then
//! `GET {vault}/secrets/{name}?api-version=7.5` with it. It trusts the CA named by
//! `REQUESTS_CA_BUNDLE` or `SSL_CERT_FILE` when set. Run it as the workload of a VM, so the
//! managed identity of the VM is the only credential it can find:
//!
//! ```text
//! cargo build -p identity --examples
//! ambient run --as VM -g RG --isolate -- \
//!     target/debug/examples/read_secret https://VAULT.vault.localhost:PORT/ NAME
//! ```
//!
//! With `--isolate` (Linux, root) the program has no identity variables at all and finds IMDS at
//! `169.254.169.254`, as on a VM; without it, `ambient run` sets `IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER` and the program uses the App Service protocol. The VM's identity needs a
//! role with `secrets/getSecret/action` on the vault, such as Key Vault Secrets User.
//!
//! This crate depends on no other crate of the Ambient workspace: it speaks only public
//! protocols, so any Rust program can use it. For the same reason it is the one place outside
//! the `crypto` crate that signs (the client assertions of [`ClientCertificateCredential`], with
//! aws-lc-rs). Secrets (client secrets, tokens, private keys, identity headers) never appear in
//! `Debug` output.
//!
//! Internals: `entra` posts to `{authority}/{tenant}/oauth2/v2.0/token`; `response` parses
//! token and error bodies; `cache` holds the token cache every credential reuses; `clock` is
//! the single reader of the system time; `datetime` parses the two date formats token sources
//! use instead of epoch seconds; `chain` holds the chains; `pkcs12` reads `.pfx` files with
//! aws-lc-rs primitives and a small DER reader.

#![warn(missing_docs)]

mod assertion;
mod cache;
mod chain;
mod cli;
mod client_certificate;
mod client_secret;
mod clock;
mod credential;
mod datetime;
mod entra;
mod env;
mod environment;
mod managed_identity;
mod options;
mod pkcs12;
mod response;
mod scope;
mod secret;
#[cfg(test)]
mod testing;
mod workload_identity;

pub use chain::{ChainedTokenCredential, DefaultAzureCredential, DefaultAzureCredentialOptions};
pub use cli::{CliCredential, CliCredentialOptions, DEFAULT_CLI_TIMEOUT};
pub use client_certificate::{ClientCertificateCredential, ClientCertificateCredentialOptions};
pub use client_secret::ClientSecretCredential;
pub use credential::{AccessToken, TokenCredential, TokenRequestOptions};
pub use env::Env;
pub use environment::EnvironmentCredential;
pub use managed_identity::{
    DEFAULT_ARC_KEY_DIRECTORY, DEFAULT_IMDS_ENDPOINT, ImdsRetryOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, ManagedIdentityId, ManagedIdentitySource,
};
pub use options::{ClientOptions, DEFAULT_AUTHORITY_HOST, DEFAULT_HTTP_TIMEOUT};
pub use secret::Secret;
pub use workload_identity::WorkloadIdentityCredential;

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
