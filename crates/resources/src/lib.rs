//! Resource-manager semantics: which resource types exist ([`types`]), the typed model every
//! row is parsed into once ([`model::Resource`], [`model::IdentityBlock`]), what each create,
//! update and delete changes ([`plan`]: pure, rows in and a [`plan::Plan`] out, including the
//! lifecycle rules of managed identities of DESIGN §3, role assignments and custom roles), the
//! reads a plan needs ([`load`]), ARM's JSON for roles and assignments ([`render`]), the
//! activity log's events ([`activity`]), and a compute resource's Ambient settings (its
//! managed-identity flavour and workload selectors, [`workload`]).
//!
//! Typical use, in the server:
//!
//! ```text
//! let rows = resources::load::for_put(store, &id, &body).await?;
//! let plan = resources::plan::put(&context, &rows, PutRequest { id: &id, body: &body, patch })?;
//! // check `plan.attach` (linked authorization), then apply `plan.writes` in one transaction
//! let json = plan.resource.unwrap().render(vault_host);
//! ```
//!
//! Template deployments use [`template`], the ARM template language engine (pure, no store):
//! [`template::Template::parse`], then `prepare` with the parameters, then
//! [`template::Prepared::evaluate`] for each resource in dependency order, each request then
//! going through the same planning as a direct PUT.

pub mod activity;
pub mod identity;
pub mod load;
pub mod model;
pub mod plan;
pub mod render;
pub mod template;
pub mod types;
pub mod workload;

pub use crate::model::{IdentityBlock, Resource};
pub use crate::plan::{Plan, PutRequest};
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
    /// The resource changed while the request was being handled, or a name is taken.
    #[error("{0}")]
    Conflict(String),
    /// A conflict with ARM's own code (`RoleAssignmentUpdateNotPermitted`...).
    #[error("{message}")]
    ConflictWithCode { code: &'static str, message: String },
    /// A stored row this version cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
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

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::ConflictWithCode { code, message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
