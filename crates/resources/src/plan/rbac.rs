//! Role assignments and custom role definitions: what a PUT means, checked against the rows it
//! depends on, with the same conflict rules as Azure.

use domain::{Guid, ResourceId};
use rbac::RoleDefinition;
use serde_json::Value;
use store::{PrincipalRecord, RoleAssignmentRecord, RoleDefinitionRecord, Write};

use crate::plan::Context;
use crate::{Error, Result};

/// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
#[derive(Debug, Clone, Copy)]
pub struct AssignmentRequest<'a> {
    pub scope: &'a ResourceId,
    /// The assignment's name, a GUID.
    pub name: &'a str,
    pub body: &'a Value,
    /// The caller's object id (`createdBy`).
    pub caller: &'a str,
}

/// The rows an assignment PUT reads.
#[derive(Debug, Clone, Default)]
pub struct AssignmentRows {
    /// The role `properties.roleDefinitionId` names (built in or custom).
    pub role: Option<RoleDefinition>,
    /// The principal `properties.principalId` names.
    pub principal: Option<PrincipalRecord>,
    /// Whether the scope exists (the tenant root always does).
    pub scope_exists: bool,
    /// An assignment with the same id.
    pub existing: Option<RoleAssignmentRecord>,
}

/// What an assignment PUT does.
#[derive(Debug)]
pub enum AssignmentPlan {
    /// A new assignment (201).
    Create { record: RoleAssignmentRecord, writes: Vec<Write> },
    /// The same assignment exists already (200, nothing written).
    Unchanged(RoleAssignmentRecord),
}

/// The id of the assignment `name` at `scope`.
pub fn assignment_id(scope: &ResourceId, name: &str) -> String {
    let prefix = if scope.is_root() { String::new() } else { scope.as_str().to_owned() };
    format!("{prefix}/providers/Microsoft.Authorization/roleAssignments/{name}")
}

/// The GUID a `roleDefinitionId` ends with (`/subscriptions/s/providers/.../{guid}` or the GUID).
pub fn role_guid(role_definition_id: &str) -> &str {
    role_definition_id.rsplit('/').next().unwrap_or_default()
}

/// Plans an assignment PUT.
pub fn assignment(
    context: &Context<'_>,
    rows: &AssignmentRows,
    request: AssignmentRequest<'_>,
) -> Result<AssignmentPlan> {
    if request.name.parse::<Guid>().is_err() {
        return Err(Error::bad_request(
            "InvalidRoleAssignmentId",
            format!(
                "The role assignment ID '{}' is not valid. The role assignment ID must be a GUID.",
                request.name
            ),
        ));
    }
    let properties = &request.body["properties"];
    let role_text = properties["roleDefinitionId"].as_str().unwrap_or_default();
    let role = rows.role.as_ref().ok_or_else(|| {
        Error::bad_request(
            "RoleDefinitionDoesNotExist",
            format!(
                "The specified role definition with ID '{}' does not exist.",
                role_guid(role_text)
            ),
        )
    })?;
    if !role.is_assignable_at(request.scope) {
        return Err(Error::bad_request(
            "InvalidRoleAssignmentScope",
            format!(
                "The role '{}' cannot be assigned at scope '{}'.",
                role.role_name, request.scope
            ),
        ));
    }
    let principal_id = properties["principalId"].as_str().unwrap_or_default();
    let principal = rows.principal.as_ref().ok_or_else(|| {
        Error::bad_request(
            "PrincipalNotFound",
            format!(
                "Principal {principal_id} does not exist in the directory {}.",
                context.tenant_id
            ),
        )
    })?;
    if !rows.scope_exists {
        return Err(Error::not_found(
            "ResourceNotFound",
            format!("The scope '{}' does not exist.", request.scope),
        ));
    }
    if let Some(existing) = &rows.existing {
        if existing.principal_id == principal.object_id
            && existing.role_definition_id == role.id.to_string()
        {
            return Ok(AssignmentPlan::Unchanged(existing.clone()));
        }
        return Err(Error::conflict(
            "RoleAssignmentUpdateNotPermitted",
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
        ));
    }
    let now = context.now.millis();
    let principal_type = match properties["principalType"].as_str() {
        Some(given) => given.to_owned(),
        None if principal.kind == "User" => "User".to_owned(),
        None => "ServicePrincipal".to_owned(),
    };
    let id = assignment_id(request.scope, request.name);
    let record = RoleAssignmentRecord {
        key: id.to_ascii_lowercase(),
        id,
        name: request.name.to_ascii_lowercase(),
        scope: request.scope.as_str().to_owned(),
        scope_key: request.scope.key().to_owned(),
        role_definition_id: role.id.to_string(),
        principal_id: principal.object_id.clone(),
        principal_type,
        description: properties["description"].as_str().map(str::to_owned),
        created_by: Some(request.caller.to_owned()),
        created_at: now,
        updated_at: now,
    };
    let writes = vec![Write::InsertRoleAssignment(record.clone())];
    Ok(AssignmentPlan::Create { record, writes })
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleDefinitions/{name}`.
#[derive(Debug, Clone, Copy)]
pub struct DefinitionRequest<'a> {
    pub scope: &'a ResourceId,
    pub name: &'a str,
    pub body: &'a Value,
}

/// What a role definition PUT does.
#[derive(Debug)]
pub struct DefinitionPlan {
    pub role: RoleDefinition,
    pub record: RoleDefinitionRecord,
    pub created: bool,
    pub writes: Vec<Write>,
}

/// Plans a custom role definition PUT. `roles` are every role that exists (built in and custom),
/// for the unique-name rule; `existing` is the stored row with this id.
pub fn definition(
    context: &Context<'_>,
    roles: &[RoleDefinition],
    existing: Option<&RoleDefinitionRecord>,
    request: DefinitionRequest<'_>,
) -> Result<DefinitionPlan> {
    let id: Guid = request.name.parse().map_err(|_| {
        Error::bad_request(
            "InvalidRoleDefinitionId",
            format!("The role definition ID '{}' is not a valid GUID.", request.name),
        )
    })?;
    if rbac::builtin_role_by_id(&id).is_some() {
        return Err(Error::bad_request(
            "RoleDefinitionNotEditable",
            format!("The role definition '{id}' is built in and cannot be changed."),
        ));
    }
    let properties = &request.body["properties"];
    let permissions: Vec<rbac::Permission> =
        crate::render::permissions_from_json(&properties["permissions"]).map_err(|error| {
            Error::bad_request(
                "InvalidRoleDefinition",
                format!("'properties.permissions' is invalid: {error}"),
            )
        })?;
    let assignable_scopes: Vec<String> = match properties["assignableScopes"].as_array() {
        Some(scopes) => scopes.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        None => vec![request.scope.as_str().to_owned()],
    };
    let role = RoleDefinition {
        id,
        role_name: properties["roleName"].as_str().unwrap_or_default().to_owned(),
        role_type: rbac::RoleType::Custom,
        description: properties["description"].as_str().unwrap_or_default().to_owned(),
        assignable_scopes,
        permissions,
    };
    rbac::validate_custom_role(&role)
        .map_err(|error| Error::bad_request("InvalidRoleDefinition", error.to_string()))?;
    if roles
        .iter()
        .any(|other| other.role_name.eq_ignore_ascii_case(&role.role_name) && other.id != role.id)
    {
        return Err(Error::conflict(
            "RoleDefinitionWithSameNameExists",
            format!("A role definition named '{}' already exists.", role.role_name),
        ));
    }
    let now = context.now.millis();
    let record = crate::render::role_definition_record(
        &role,
        existing.map_or(now, |row| row.created_at),
        now,
    );
    let writes = vec![Write::PutRoleDefinition(record.clone())];
    Ok(DefinitionPlan { role, record, created: existing.is_none(), writes })
}
