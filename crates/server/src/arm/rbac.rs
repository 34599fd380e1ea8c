//! Role assignments and role definitions (`{scope}/providers/Microsoft.Authorization/...`), and
//! the caller's own permissions at a scope.

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ResourceId;
use rbac::RoleDefinition;
use resources::plan::{self, AssignmentPlan, AssignmentRequest, AssignmentRows, DefinitionRequest};
use resources::render::{assignment_json, role_definition_from_record, role_definition_json};
use serde_json::{Value, json};
use store::{RoleAssignmentRecord, Write};

use crate::arm::activity::{Outcome, commit, split_eq};
use crate::arm::{Context, from_resources};
use crate::auth::role_definition;
use crate::error::ApiError;

/// Every role: the built-in ones and the custom ones in the store, with their times.
async fn all_roles(context: &Context) -> Result<Vec<(RoleDefinition, i64, i64)>, ApiError> {
    let mut roles: Vec<(RoleDefinition, i64, i64)> =
        rbac::builtin_roles().iter().map(|role| (role.clone(), 0, 0)).collect();
    for record in context.state.store.list_role_definitions().await? {
        if let Some(role) = role_definition_from_record(&record) {
            roles.push((role, record.created_at, record.updated_at));
        }
    }
    Ok(roles)
}

/// The role name of each assignment's role, for `roleDefinitionName`.
async fn with_role_names(
    context: &Context,
    rows: &[RoleAssignmentRecord],
) -> Result<Vec<Value>, ApiError> {
    let mut value = Vec::with_capacity(rows.len());
    for row in rows {
        let role = role_definition(&context.state, &row.role_definition_id).await?;
        value.push(assignment_json(row, role.as_ref().map(|role| role.role_name.as_str())));
    }
    Ok(value)
}

pub async fn list_assignments(context: &Context, scope: &ResourceId) -> Result<Response, ApiError> {
    context.grants.check("Microsoft.Authorization/roleAssignments/read", scope)?;
    let store = &context.state.store;
    let filter = context.query("$filter").unwrap_or_default().trim().to_owned();
    let ancestors = scope.ancestors_and_self();
    let rows: Vec<RoleAssignmentRecord> = if filter.eq_ignore_ascii_case("atScope()") {
        store.list_role_assignments(Some(&ancestors)).await?
    } else if let Some(principal) = filter_principal(&filter) {
        store
            .list_role_assignments_for_principal(&principal.to_ascii_lowercase())
            .await?
            .into_iter()
            .filter(|row| related(scope, &row.scope))
            .collect()
    } else if filter.is_empty() {
        store
            .list_role_assignments(None)
            .await?
            .into_iter()
            .filter(|row| related(scope, &row.scope))
            .collect()
    } else {
        return Err(ApiError::bad_request(
            "InvalidFilter",
            format!("Unsupported $filter: {filter}"),
        ));
    };
    Ok(Json(json!({"value": with_role_names(context, &rows).await?})).into_response())
}

/// `principalId eq 'x'` or `assignedTo('x')`.
fn filter_principal(filter: &str) -> Option<String> {
    if let Some((field, value)) = split_eq(filter) {
        return (field == "principalid").then_some(value);
    }
    let inner = filter.strip_prefix("assignedTo(")?.strip_suffix(')')?;
    Some(inner.trim().trim_matches('\'').to_owned())
}

/// Assignments at the scope, above it (inherited) or below it.
fn related(scope: &ResourceId, assignment_scope: &str) -> bool {
    ResourceId::parse(assignment_scope)
        .is_ok_and(|other| scope.is_within(&other) || other.is_within(scope))
}

pub async fn assignment(
    context: &Context,
    scope: &ResourceId,
    name: &str,
) -> Result<Response, ApiError> {
    let id = plan::assignment_id(scope, name);
    let key = id.to_ascii_lowercase();
    let store = &context.state.store;
    match context.method {
        Method::GET => {
            context.grants.check("Microsoft.Authorization/roleAssignments/read", scope)?;
            let mut row = store.get_role_assignment(&key).await?;
            if row.is_none() && scope.is_root() {
                // `GET /providers/Microsoft.Authorization/roleAssignments/{name}`: by name anywhere.
                row = store
                    .list_role_assignments(None)
                    .await?
                    .into_iter()
                    .find(|row| row.name.eq_ignore_ascii_case(name));
            }
            let row = row.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "RoleAssignmentNotFound",
                    format!("The role assignment '{name}' is not found."),
                )
            })?;
            let value = with_role_names(context, std::slice::from_ref(&row)).await?;
            Ok(Json(value.into_iter().next().unwrap_or(Value::Null)).into_response())
        }
        Method::PUT => {
            let body = context.json_body()?;
            let target = ResourceId::parse(&id)
                .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
            commit(context, &target, "Microsoft.Authorization/roleAssignments/write", async || {
                let properties = &body["properties"];
                let role_guid =
                    plan::role_guid(properties["roleDefinitionId"].as_str().unwrap_or_default());
                let principal_id =
                    properties["principalId"].as_str().unwrap_or_default().to_ascii_lowercase();
                let scope_exists = if scope.is_root() {
                    true
                } else if scope.is_subscription() {
                    store
                        .get_subscription(
                            &scope.subscription_id().unwrap_or_default().to_ascii_lowercase(),
                        )
                        .await?
                        .is_some()
                } else {
                    store.get_resource(scope.key()).await?.is_some()
                };
                let rows = AssignmentRows {
                    role: role_definition(&context.state, role_guid).await?,
                    principal: store.get_principal(&principal_id).await?,
                    scope_exists,
                    existing: store.get_role_assignment(&key).await?,
                };
                let caller = context.caller().object_id.clone();
                let planned = context
                    .with_plan_context(|plan_context| {
                        plan::assignment(
                            plan_context,
                            &rows,
                            AssignmentRequest { scope, name, body: &body, caller: &caller },
                        )
                    })
                    .map_err(from_resources)?;
                let role_name = rows.role.as_ref().map(|role| role.role_name.clone());
                Ok(match planned {
                    AssignmentPlan::Create { record, writes } => Outcome {
                        writes,
                        status: StatusCode::CREATED,
                        body: Some(assignment_json(&record, role_name.as_deref())),
                    },
                    AssignmentPlan::Unchanged(record) => Outcome {
                        writes: Vec::new(),
                        status: StatusCode::OK,
                        body: Some(assignment_json(&record, role_name.as_deref())),
                    },
                })
            })
            .await
            .map_err(|error| match error.code {
                // A second assignment of the same role to the same principal at the same scope.
                "Conflict" => ApiError::new(
                    StatusCode::CONFLICT,
                    "RoleAssignmentExists",
                    "The role assignment already exists.",
                ),
                _ => error,
            })
        }
        Method::DELETE => {
            let target = ResourceId::parse(&id)
                .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
            commit(context, &target, "Microsoft.Authorization/roleAssignments/delete", async || {
                let Some(row) = store.get_role_assignment(&key).await? else {
                    return Ok(Outcome {
                        writes: Vec::new(),
                        status: StatusCode::NO_CONTENT,
                        body: None,
                    });
                };
                let value = with_role_names(context, std::slice::from_ref(&row)).await?;
                Ok(Outcome {
                    writes: vec![Write::DeleteRoleAssignment { key: key.clone() }],
                    status: StatusCode::OK,
                    body: value.into_iter().next(),
                })
            })
            .await
        }
        _ => Err(context.only(Method::GET).unwrap_err()),
    }
}

pub async fn list_definitions(context: &Context, scope: &ResourceId) -> Result<Response, ApiError> {
    context.grants.check("Microsoft.Authorization/roleDefinitions/read", scope)?;
    let filter = context.query("$filter").map(str::to_owned);
    let wanted = match &filter {
        Some(filter) => {
            let (field, wanted) = split_eq(filter)
                .filter(|(field, _)| field == "rolename" || field == "type")
                .ok_or_else(|| {
                    ApiError::bad_request("InvalidFilter", format!("Unsupported $filter: {filter}"))
                })?;
            Some((field, wanted))
        }
        None => None,
    };
    let mut value = Vec::new();
    for (role, created, updated) in all_roles(context).await? {
        if let Some((field, wanted)) = &wanted {
            let actual = match field.as_str() {
                "rolename" => role.role_name.as_str(),
                _ if role.role_type == rbac::RoleType::BuiltIn => "BuiltInRole",
                _ => "CustomRole",
            };
            if !actual.eq_ignore_ascii_case(wanted) {
                continue;
            }
        }
        value.push(role_definition_json(scope, &role, created, updated));
    }
    Ok(Json(json!({"value": value})).into_response())
}

pub async fn definition(
    context: &Context,
    scope: &ResourceId,
    name: &str,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{name}' does not exist."),
        )
    };
    let store = &context.state.store;
    let target_id = format!(
        "{}/providers/Microsoft.Authorization/roleDefinitions/{name}",
        if scope.is_root() { "" } else { scope.as_str() }
    );
    let target = ResourceId::parse(&target_id)
        .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
    match context.method {
        Method::GET => {
            context.grants.check("Microsoft.Authorization/roleDefinitions/read", scope)?;
            let role = role_definition(&context.state, name).await?.ok_or_else(not_found)?;
            let record = store.get_role_definition(&role.id.to_string()).await?;
            let (created, updated) = record.map_or((0, 0), |row| (row.created_at, row.updated_at));
            Ok(Json(role_definition_json(scope, &role, created, updated)).into_response())
        }
        Method::PUT => {
            let body = context.json_body()?;
            commit(context, &target, "Microsoft.Authorization/roleDefinitions/write", async || {
                let roles: Vec<RoleDefinition> =
                    all_roles(context).await?.into_iter().map(|(role, _, _)| role).collect();
                let existing = store.get_role_definition(&name.to_ascii_lowercase()).await?;
                let planned = context
                    .with_plan_context(|plan_context| {
                        plan::definition(
                            plan_context,
                            &roles,
                            existing.as_ref(),
                            DefinitionRequest { scope, name, body: &body },
                        )
                    })
                    .map_err(from_resources)?;
                Ok(Outcome {
                    status: if planned.created { StatusCode::CREATED } else { StatusCode::OK },
                    body: Some(role_definition_json(
                        scope,
                        &planned.role,
                        planned.record.created_at,
                        planned.record.updated_at,
                    )),
                    writes: planned.writes,
                })
            })
            .await
        }
        Method::DELETE => {
            commit(context, &target, "Microsoft.Authorization/roleDefinitions/delete", async || {
                let Some(record) = store.get_role_definition(&name.to_ascii_lowercase()).await?
                else {
                    return Ok(Outcome {
                        writes: Vec::new(),
                        status: StatusCode::NO_CONTENT,
                        body: None,
                    });
                };
                let in_use = store
                    .list_role_assignments(None)
                    .await?
                    .iter()
                    .any(|assignment| assignment.role_definition_id == record.id);
                if in_use {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "RoleDefinitionHasAssignments",
                        "There are existing role assignments referencing this role definition.",
                    ));
                }
                let role = role_definition_from_record(&record).ok_or_else(not_found)?;
                Ok(Outcome {
                    writes: vec![Write::DeleteRoleDefinition { id: record.id.clone() }],
                    status: StatusCode::OK,
                    body: Some(role_definition_json(
                        scope,
                        &role,
                        record.created_at,
                        record.updated_at,
                    )),
                })
            })
            .await
        }
        _ => Err(context.only(Method::GET).unwrap_err()),
    }
}

/// `{scope}/providers/Microsoft.Authorization/permissions`: the permission blocks of the
/// caller's roles that apply at `scope` (assigned there or above).
pub async fn permissions(context: &Context, scope: &ResourceId) -> Result<Response, ApiError> {
    let value: Vec<Value> = context
        .grants
        .roles_at(scope)
        .iter()
        .flat_map(|role| role.permissions.iter())
        .map(|permission| {
            json!({
                "actions": permission.actions,
                "notActions": permission.not_actions,
                "dataActions": permission.data_actions,
                "notDataActions": permission.not_data_actions,
            })
        })
        .collect();
    Ok(Json(json!({"value": value})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(filter_principal("principalId eq 'abc'"), Some("abc".to_owned()));
        assert_eq!(filter_principal("assignedTo('abc')"), Some("abc".to_owned()));
        assert_eq!(filter_principal("roleName eq 'x'"), None);
        assert_eq!(
            split_eq("roleName eq 'O''Brien'"),
            Some(("rolename".to_owned(), "O'Brien".to_owned()))
        );
    }

    #[test]
    fn related_scopes_are_above_or_below() {
        let group = ResourceId::parse("/subscriptions/s/resourceGroups/rg").unwrap();
        assert!(related(&group, "/subscriptions/s"));
        assert!(related(
            &group,
            "/subscriptions/s/resourcegroups/RG/providers/Microsoft.Compute/virtualMachines/vm"
        ));
        assert!(!related(&group, "/subscriptions/s/resourceGroups/other"));
    }
}
