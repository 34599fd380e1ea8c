//! ARM's JSON for role definitions and assignments, and the conversions between role
//! definitions and their stored rows. Written by hand: domain types do not derive `Serialize`.
//! (Resources render themselves: `Resource::render`.)

use domain::{ResourceId, UnixTime};
use rbac::{Permission, RoleDefinition, RoleType};
use serde_json::{Value, json};
use store::{RoleAssignmentRecord, RoleDefinitionRecord};

use crate::activity::format_time;

/// Permission blocks from their JSON (`[{actions, notActions, dataActions, notDataActions}]`).
pub fn permissions_from_json(value: &Value) -> Result<Vec<Permission>, String> {
    let blocks = value.as_array().ok_or("'permissions' must be an array")?;
    blocks
        .iter()
        .map(|block| {
            let list = |field: &str| -> Result<Vec<String>, String> {
                match block.get(field) {
                    None | Some(Value::Null) => Ok(Vec::new()),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|item| {
                            item.as_str()
                                .map(str::to_owned)
                                .ok_or(format!("'{field}' must hold strings"))
                        })
                        .collect(),
                    Some(_) => Err(format!("'{field}' must be an array")),
                }
            };
            Ok(Permission {
                actions: list("actions")?,
                not_actions: list("notActions")?,
                data_actions: list("dataActions")?,
                not_data_actions: list("notDataActions")?,
            })
        })
        .collect()
}

/// Permission blocks as ARM prints them.
pub fn permissions_to_json(permissions: &[Permission]) -> Value {
    Value::Array(
        permissions
            .iter()
            .map(|permission| {
                json!({
                    "actions": permission.actions,
                    "notActions": permission.not_actions,
                    "dataActions": permission.data_actions,
                    "notDataActions": permission.not_data_actions,
                })
            })
            .collect(),
    )
}

/// The row of a custom role definition.
pub fn role_definition_record(
    role: &RoleDefinition,
    created_at: i64,
    updated_at: i64,
) -> RoleDefinitionRecord {
    RoleDefinitionRecord {
        id: role.id.to_string(),
        role_name: role.role_name.clone(),
        role_type: "CustomRole".to_owned(),
        description: role.description.clone(),
        assignable_scopes: json!(role.assignable_scopes).to_string(),
        permissions: permissions_to_json(&role.permissions).to_string(),
        created_at,
        updated_at,
    }
}

/// A stored custom role as a domain role; `None` (and a warning) for a corrupt row.
pub fn role_definition_from_record(record: &RoleDefinitionRecord) -> Option<RoleDefinition> {
    let id = record.id.parse().ok()?;
    let permissions = serde_json::from_str::<Value>(&record.permissions)
        .map_err(|error| error.to_string())
        .and_then(|value| permissions_from_json(&value));
    let permissions = match permissions {
        Ok(permissions) => permissions,
        Err(error) => {
            tracing::warn!(role = %record.id, %error, "stored role definition has unreadable permissions");
            return None;
        }
    };
    let assignable_scopes: Vec<String> =
        serde_json::from_str(&record.assignable_scopes).unwrap_or_default();
    Some(RoleDefinition {
        id,
        role_name: record.role_name.clone(),
        role_type: if record.role_type == "BuiltInRole" {
            RoleType::BuiltIn
        } else {
            RoleType::Custom
        },
        description: record.description.clone(),
        assignable_scopes,
        permissions,
    })
}

/// The id prefix ARM lists role definitions under for `scope`: its subscription, or nothing at
/// the tenant root. An assignment's `roleDefinitionId` uses the same, so clients that look
/// names up by id (`az role assignment list`) find them.
fn definition_prefix(scope: &ResourceId) -> String {
    scope
        .subscription_id()
        .map(|subscription| format!("/subscriptions/{subscription}"))
        .unwrap_or_default()
}

/// The full id of role `guid` as listed at `scope`.
pub fn role_definition_id(scope: &ResourceId, guid: &str) -> String {
    format!("{}/providers/Microsoft.Authorization/roleDefinitions/{guid}", definition_prefix(scope))
}

/// A role definition as ARM returns it at `scope`.
pub fn role_definition_json(
    scope: &ResourceId,
    role: &RoleDefinition,
    created: i64,
    updated: i64,
) -> Value {
    json!({
        "id": role_definition_id(scope, &role.id.to_string()),
        "name": role.id.to_string(),
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.role_name,
            "type": if role.role_type == RoleType::BuiltIn { "BuiltInRole" } else { "CustomRole" },
            "description": role.description,
            "assignableScopes": role.assignable_scopes,
            "permissions": permissions_to_json(&role.permissions),
            "createdOn": format_time(UnixTime::from_millis(created)),
            "updatedOn": format_time(UnixTime::from_millis(updated)),
        },
    })
}

/// A role assignment as ARM returns it; `role_name` fills `roleDefinitionName` when known.
pub fn assignment_json(row: &RoleAssignmentRecord, role_name: Option<&str>) -> Value {
    let scope = ResourceId::parse(&row.scope).unwrap_or_else(|_| ResourceId::root());
    let mut properties = json!({
        "roleDefinitionId": role_definition_id(&scope, &row.role_definition_id),
        "principalId": row.principal_id,
        "principalType": row.principal_type,
        "scope": row.scope,
        "condition": null,
        "conditionVersion": null,
        "createdOn": format_time(UnixTime::from_millis(row.created_at)),
        "updatedOn": format_time(UnixTime::from_millis(row.updated_at)),
        "createdBy": row.created_by,
        "updatedBy": row.created_by,
        "delegatedManagedIdentityResourceId": null,
        "description": row.description,
    });
    if let Some(name) = role_name {
        properties["roleDefinitionName"] = json!(name);
    }
    json!({
        "id": row.id,
        "name": row.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": properties,
    })
}
