//! Resource-manager semantics: which resource types exist, what an `identity` block means, and
//! what each create, update and delete changes, including the lifecycle rules of managed
//! identities (DESIGN §3) and the activity log.
//!
//! Each operation is planned against the store's current rows and returns a [`Plan`]: the
//! batch of `store::Write`s that realises it in one transaction, the resulting row, and the
//! user-assigned identities it newly attaches (the caller must hold
//! `Microsoft.ManagedIdentity/userAssignedIdentities/assign/action` on each before applying).
//! Rendering rows back to ARM JSON is [`render`].
//!
//! Template deployments use [`template`], the ARM template language engine (pure, no store):
//! [`template::Template::parse`], then `prepare` with the parameters, then
//! [`template::Prepared::evaluate`] for each resource in dependency order, each request then
//! going through the same planning as a direct PUT.

pub mod activity;
pub mod identity;
pub mod plan;
pub mod template;
pub mod types;

pub use crate::plan::{Plan, Planner};
pub use crate::types::{Kind, ResourceType};

/// Why an operation cannot be done, in ARM's terms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong: `code` is ARM's (`InvalidRequestContent`, `InvalidResourceName`...).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Something the request names does not exist (`ResourceGroupNotFound`, `ResourceNotFound`...).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The resource changed while the request was being handled.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest { code, message: message.into() }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Error::NotFound { code, message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use crate::plan::render;
