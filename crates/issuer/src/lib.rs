//! Token rules: claims, audiences, lifetimes, signing keys and the sign-in log.
//!
//! [`Issuer`] plays Entra ID's signing role for one tenant. It keeps the tenant's RSA signing
//! keys parsed in memory, signs access tokens with the key that is active now ([`Issuer::issue`]),
//! publishes the keys a verifier needs ([`Issuer::jwks`]) and validates tokens
//! ([`Issuer::validate`]). Issuing and validating are synchronous and touch no database; only
//! loading, rotating and reloading keys go to the [`store::Store`].
//!
//! Keys rotate on a schedule ([`Issuer::rotate_if_due`], run every minute by one node) and on
//! demand ([`Issuer::rotate`]). A new key is published before it signs, and a retired key stays
//! published until every token it signed has expired. Private keys are stored sealed under the
//! master key ([`crypto::envelope::MasterKey`]), with associated data binding the key id.
//!
//! [`SignInLog`] records every token request, successful or not, in batches through a bounded
//! channel, and lists them back as Microsoft Graph `signIn` objects.
//!
//! Typical use, in the server:
//!
//! ```text
//! let issuer = Arc::new(Issuer::load(store.clone(), master_key, clock, IssuerConfig::new(authority, tenant)).await?);
//! let log = SignInLog::start(store.clone());
//! // Token endpoint, after the credential checked out:
//! let token = issuer.issue(&TokenRequest { .. })?;
//! log.record(SignInEvent::new(clock.now(), tenant, "ServicePrincipal", "clientSecret")).await;
//! // Resource servers (control plane, Key Vault):
//! let claims = issuer.validate(bearer, &ValidationOptions { audiences, issuers, leeway_secs, algorithms })?;
//! // Every few seconds, on every node; every minute, on the node that runs the jobs:
//! issuer.reload().await?;
//! issuer.rotate_if_due().await?;
//! ```

mod config;
mod keys;
mod sign_in;
mod token;
mod validate;

#[cfg(test)]
mod test_support;

pub use crate::config::IssuerConfig;
pub use crate::sign_in::{SignInEvent, SignInLog, bounded_text};
pub use crate::token::{
    CredentialKind, IssuedToken, Issuer, RotatedKey, TokenRequest, TokenVersion,
};
pub use crate::validate::{Claims, ValidationError, ValidationOptions};

/// The result type of this crate's fallible operations (validation has its own error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong issuing tokens, managing keys or logging sign-ins. Messages never contain
/// key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The [`IssuerConfig`] is unusable (lifetimes out of range, rotation shorter than a token).
    #[error("invalid issuer configuration: {0}")]
    InvalidConfig(String),
    /// A token request or rotation request carries an unusable value.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// No stored key signs at this moment. Loading creates one, so this means the keys were
    /// changed behind the issuer's back.
    #[error("no signing key is active")]
    NoActiveKey,
    /// A stored signing key cannot be used: it does not open under this master key, does not
    /// parse, or its certificate does not match it.
    #[error("stored signing key {kid} is unusable: {reason}")]
    UnusableKey {
        /// The key's id.
        kid: String,
        /// What is wrong with it.
        reason: &'static str,
        /// The underlying failure, if any.
        #[source]
        source: Option<crypto::Error>,
    },
    /// Generating a key or certificate, or signing, failed.
    #[error("signing operation failed")]
    Crypto(#[source] crypto::Error),
    /// The database failed; the source says how.
    #[error("database operation failed")]
    Store(#[source] store::Error),
    /// A stored sign-in event is not valid JSON.
    #[error("stored sign-in event {0} is corrupt")]
    CorruptEvent(String),
    /// A blocking background task (key generation) did not finish.
    #[error("background task failed")]
    Task(#[source] tokio::task::JoinError),
}

// The server shares one issuer and clones log handles across tasks.
const _: fn() = || {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Issuer>();
    shared::<SignInLog>();
};

impl From<store::Error> for Error {
    fn from(error: store::Error) -> Self {
        Error::Store(error)
    }
}
