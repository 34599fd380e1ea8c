//! Check access: what a principal may do at a scope, worked out from the role assignments and
//! role definitions the API returns, with the `rbac` crate's decision function, the one the
//! server itself uses. So the answer here is the server's answer, with where it comes from.

use domain::{Guid, ResourceId};
use rbac::{ActionKind, Decision, Grant, Permission, RoleDefinition, RoleType};
use serde_json::Value;

/// A role definition as the API returned it.
#[derive(Debug, Clone)]
pub struct Role {
    /// The ARM id of the definition.
    pub id: String,
    pub definition: RoleDefinition,
}

/// A role assignment as the API returned it.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The ARM id of the assignment.
    pub id: String,
    pub scope: ResourceId,
    /// The role definition's GUID.
    pub role: Guid,
    pub principal_id: String,
}

/// An assignment that counts for a principal at a target scope, with its role.
#[derive(Debug, Clone)]
pub struct Contribution<'a> {
    pub assignment: &'a Assignment,
    pub role: &'a Role,
    /// True when the assignment is at a scope above the target.
    pub inherited: bool,
}

/// Roles from a `roleDefinitions` list; entries that do not parse are skipped.
pub fn roles_from_json(values: &[Value]) -> Vec<Role> {
    let mut roles: Vec<Role> = values.iter().filter_map(role_from_json).collect();
    roles.sort_by(|a, b| {
        (a.definition.role_type == RoleType::Custom, a.definition.role_name.to_ascii_lowercase())
            .cmp(&(
                b.definition.role_type == RoleType::Custom,
                b.definition.role_name.to_ascii_lowercase(),
            ))
    });
    roles
}

fn role_from_json(value: &Value) -> Option<Role> {
    let properties = &value["properties"];
    let strings = |value: &Value| -> Vec<String> {
        value.as_array().map_or_else(Vec::new, |items| {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        })
    };
    let permissions = properties["permissions"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .map(|block| Permission {
                    actions: strings(&block["actions"]),
                    not_actions: strings(&block["notActions"]),
                    data_actions: strings(&block["dataActions"]),
                    not_data_actions: strings(&block["notDataActions"]),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Role {
        id: value["id"].as_str()?.to_owned(),
        definition: RoleDefinition {
            id: value["name"].as_str()?.parse().ok()?,
            role_name: properties["roleName"].as_str()?.to_owned(),
            role_type: if properties["type"] == "CustomRole" {
                RoleType::Custom
            } else {
                RoleType::BuiltIn
            },
            description: properties["description"].as_str().unwrap_or_default().to_owned(),
            assignable_scopes: strings(&properties["assignableScopes"]),
            permissions,
        },
    })
}

/// Assignments from a `roleAssignments` list; entries that do not parse are skipped.
pub fn assignments_from_json(values: &[Value]) -> Vec<Assignment> {
    values
        .iter()
        .filter_map(|value| {
            let properties = &value["properties"];
            let role = properties["roleDefinitionId"].as_str()?.rsplit('/').next()?.parse().ok()?;
            Some(Assignment {
                id: value["id"].as_str()?.to_owned(),
                scope: ResourceId::parse(properties["scope"].as_str()?).ok()?,
                role,
                principal_id: properties["principalId"].as_str()?.to_ascii_lowercase(),
            })
        })
        .collect()
}

/// The role with this GUID.
pub fn find_role<'a>(roles: &'a [Role], id: &Guid) -> Option<&'a Role> {
    roles.iter().find(|role| role.definition.id == *id)
}

/// The assignments of `principal` that apply at `target` (at it or above it), highest scope
/// first, then by role name.
pub fn contributions<'a>(
    principal: &str,
    target: &ResourceId,
    assignments: &'a [Assignment],
    roles: &'a [Role],
) -> Vec<Contribution<'a>> {
    let mut out: Vec<Contribution<'a>> = assignments
        .iter()
        .filter(|assignment| assignment.principal_id.eq_ignore_ascii_case(principal))
        .filter(|assignment| target.is_within(&assignment.scope))
        .filter_map(|assignment| {
            let role = find_role(roles, &assignment.role)?;
            Some(Contribution { assignment, role, inherited: assignment.scope != *target })
        })
        .collect();
    out.sort_by(|a, b| {
        (a.assignment.scope.key().len(), a.role.definition.role_name.to_ascii_lowercase()).cmp(&(
            b.assignment.scope.key().len(),
            b.role.definition.role_name.to_ascii_lowercase(),
        ))
    });
    out
}

/// The server's decision for `action` on `target` given these contributions.
pub fn decide(
    contributions: &[Contribution<'_>],
    action: &str,
    kind: ActionKind,
    target: &ResourceId,
) -> Decision {
    let grants: Vec<Grant<'_>> = contributions
        .iter()
        .map(|contribution| Grant {
            scope: &contribution.assignment.scope,
            role: &contribution.role.definition,
        })
        .collect();
    rbac::authorize(&grants, action, kind, target)
}

/// Actions worth asking about at `target`: its own read, write and delete, granting access,
/// and the Key Vault secret data actions where vaults can be (a vault or a scope above one).
pub fn typical_actions(target: &ResourceId) -> Vec<(String, ActionKind)> {
    let resource_type = rbac::resource_type_for_scope(target);
    let mut actions: Vec<(String, ActionKind)> = ["GET", "PUT", "DELETE"]
        .iter()
        .filter_map(|method| rbac::http_method_action(&resource_type, method))
        .map(|action| (action, ActionKind::Control))
        .collect();
    actions.push(("Microsoft.Authorization/roleAssignments/write".to_owned(), ActionKind::Control));
    let lower = resource_type.to_ascii_lowercase();
    if lower == "microsoft.managedidentity/userassignedidentities" {
        actions.push((
            "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action".to_owned(),
            ActionKind::Control,
        ));
    }
    let may_hold_vaults =
        target.resource_type().is_none() || lower.starts_with("microsoft.keyvault/vaults");
    if may_hold_vaults {
        for verb in ["readMetadata/action", "getSecret/action", "setSecret/action", "delete"] {
            actions.push((format!("Microsoft.KeyVault/vaults/secrets/{verb}"), ActionKind::Data));
        }
    }
    actions
}

#[cfg(test)]
mod tests;
