//! The decision function: may the caller perform this action on this resource?
//!
//! Implements Azure's evaluation (`protocols/06-arm-rbac.md` §6): an assignment counts when its
//! scope is the target or an ancestor of it (inheritance is downward only); a permission block
//! allows an action that matches one of its granting patterns and none of its subtracting
//! patterns; what a caller may do is the union over blocks, roles and assignments. Control
//! actions and data actions are separate namespaces. Deny assignments are not implemented.

use domain::{Guid, ResourceId};

use crate::role::RoleDefinition;

/// Which namespace an action belongs to: `actions`/`notActions` or
/// `dataActions`/`notDataActions`. `actions: ["*"]` grants no data action, and data action
/// patterns grant no control action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// A control-plane (Azure Resource Manager) action, such as
    /// `Microsoft.Compute/virtualMachines/write`.
    Control,
    /// A data-plane action, such as `Microsoft.KeyVault/vaults/secrets/getSecret/action`.
    Data,
}

/// One role assignment of the calling principal, as the decision function sees it: a role held
/// at a scope. The caller loads only the principal's own assignments (and its groups'), so the
/// cost of [`authorize`] depends on those alone.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    /// The assignment's scope.
    pub scope: &'a ResourceId,
    /// The assigned role's definition.
    pub role: &'a RoleDefinition,
}

/// The outcome of [`authorize`]. Its `Debug` form is stable and used in snapshot tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the first grant, in the order given, whose role allows the action.
    Allowed {
        /// The id of the role that allowed the action.
        role: Guid,
        /// The scope of the assignment that allowed it, spelled as created.
        scope: String,
    },
    /// No grant at the target or above it allows the action.
    Denied,
}

/// Decides whether the holder of `grants` may perform `action` (of namespace `kind`) on
/// `target`.
///
/// Only grants whose scope is `target` or one of its ancestors count. The result names the
/// first grant, in slice order, that allows the action, so pass grants in a stable order (for
/// example by assignment id) to get the same answer every time. Cost: linear in the number of
/// grants and their patterns, each pattern match being `O(pattern * action)`.
pub fn authorize(
    grants: &[Grant<'_>],
    action: &str,
    kind: ActionKind,
    target: &ResourceId,
) -> Decision {
    grants
        .iter()
        .find(|grant| target.is_within(grant.scope) && grant.role.allows(action, kind))
        .map_or(Decision::Denied, |grant| Decision::Allowed {
            role: grant.role.id,
            scope: grant.scope.as_str().to_owned(),
        })
}

impl Decision {
    /// True for [`Decision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

#[cfg(test)]
mod tests;
