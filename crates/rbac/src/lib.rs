//! Roles, role assignments as seen by the decision function, and the pure decision
//! [`authorize`] that says whether a caller may perform an action on a resource.
//!
//! The crate follows Azure RBAC (`protocols/06-arm-rbac.md` §4-6): a [`RoleDefinition`] holds
//! [`Permission`] blocks of `actions`, `notActions`, `dataActions` and `notDataActions` patterns;
//! a role assignment gives a role to a principal at a scope and is inherited downward.
//!
//! Typical call sequence (in `server`, `vault` or `resources`):
//! 1. Work out the action: [`http_method_action`] or [`post_action`] on
//!    [`resource_type_for_scope`] for the control plane, or a fixed data action such as
//!    `Microsoft.KeyVault/vaults/secrets/getSecret/action` for a data plane.
//! 2. Load the calling principal's own assignments and their role definitions (built-in ones
//!    come from [`builtin_role_by_id`]), and view each as a [`Grant`].
//! 3. Call [`authorize`] and answer 403 on [`Decision::Denied`].
//!
//! Custom role definitions are checked with [`validate_custom_role`] before they are stored.
//! Nothing here does IO, is async or serializes: wire shapes live in `api-types`.

pub mod action;
pub mod builtin;
pub mod decision;
pub mod role;

#[cfg(test)]
mod reference;

pub use action::{action_matches, http_method_action, post_action, resource_type_for_scope};
pub use builtin::{builtin_role_by_id, builtin_role_by_name, builtin_roles};
pub use decision::{ActionKind, Decision, Grant, authorize};
pub use role::{Permission, RoleDefinition, RoleError, RoleType, validate_custom_role};
