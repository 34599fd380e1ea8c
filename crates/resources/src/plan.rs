//! Planning writes, with no IO: rows in ([`Rows`], loaded beforehand by `load`), a [`Plan`] out
//! (the writes for one transaction, the resource after them, and the user-assigned identities
//! newly attached). DESIGN §3's lifecycle rules live here:
//!
//! - enabling `SystemAssigned` creates a service principal named after the resource; removing it,
//!   or deleting the resource, deletes that principal with its role assignments; enabling it
//!   again creates a new principal;
//! - a user-assigned identity has its own principal for its whole life; deleting it detaches it
//!   from every resource that holds it;
//! - deleting a resource group deletes everything in it, with the same cascades.
//!
//! The rules of each kind are in a module of their own (`compute`, `user_identity`,
//! `federated`, `vault`), role assignments and definitions in `rbac`. New ids come from
//! [`Context::new_guid`], so tests get stable ones.

mod compute;
mod federated;
mod network;
mod rbac;
mod user_identity;
mod vault;

#[cfg(test)]
mod tests;

use domain::{Guid, ResourceId, UnixTime};
use serde_json::{Map, Value};
use store::{Expect, PrincipalRecord, SubscriptionRecord, Write};

use crate::model::{EXTRA_FIELDS, Resource};
pub use crate::plan::rbac::{
    AssignmentPlan, AssignmentRequest, AssignmentRows, DefinitionPlan, DefinitionRequest,
    assignment, assignment_id, definition, role_guid,
};
pub use crate::plan::vault::policy as vault_policy;
use crate::types::{self, Kind, ResourceType};
use crate::{Error, Result};

/// The host compute resources run on unless the request names one.
pub const DEFAULT_HOST: &str = "local";

/// What planning needs besides the rows: the time, the tenant, and a source of new GUIDs.
pub struct Context<'a> {
    pub now: UnixTime,
    pub tenant_id: &'a str,
    /// New object ids, app ids and VM ids come from here (random in the server, counted in
    /// tests).
    pub new_guid: &'a dyn Fn() -> Guid,
}

/// A create (PUT) or update (PATCH) of a resource or group.
#[derive(Debug, Clone, Copy)]
pub struct PutRequest<'a> {
    pub id: &'a ResourceId,
    pub body: &'a Value,
    /// PATCH: fields absent from the body keep their value.
    pub patch: bool,
}

/// The rows a put reads, loaded before planning (`load::for_put`).
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// The target's subscription.
    pub subscription: Option<SubscriptionRecord>,
    /// The target's resource group (for resources; `None` for a group itself).
    pub group: Option<Resource>,
    /// The target as it is now.
    pub existing: Option<Resource>,
    /// The user-assigned identities the body's identity block names, those that exist.
    pub user_identities: Vec<Resource>,
    /// A federated credential's identity.
    pub parent: Option<Resource>,
    /// How many federated credentials the parent identity has.
    pub federated_siblings: usize,
    /// Whether another vault already has the target's name (vault names are global).
    pub vault_name_taken: bool,
}

/// The rows a delete reads (`load::for_delete`).
#[derive(Debug, Clone)]
pub struct DeleteRows {
    /// Everything that goes: the target, a group's members, an identity's federated
    /// credentials.
    pub doomed: Vec<Resource>,
    /// Principals managed by doomed resources (system identities, user identities).
    pub principals: Vec<PrincipalRecord>,
    /// Resources that hold a doomed user-assigned identity and stay.
    pub holders: Vec<Resource>,
}

/// What an operation will do.
#[derive(Debug)]
pub struct Plan {
    /// The writes, to apply in one transaction.
    pub writes: Vec<Write>,
    /// The resource after the operation (`None` for deletes).
    pub resource: Option<Resource>,
    /// Whether the operation creates the resource.
    pub created: bool,
    /// User-assigned identities the operation newly attaches: the caller needs
    /// `Microsoft.ManagedIdentity/userAssignedIdentities/assign/action` on each.
    pub attach: Vec<ResourceId>,
}

/// Plans a create or update of a resource group or a resource of a known type.
pub fn put(context: &Context<'_>, rows: &Rows, request: PutRequest<'_>) -> Result<Plan> {
    let id = request.id;
    let subscription = rows.subscription.as_ref().ok_or_else(|| {
        Error::not_found(
            "SubscriptionNotFound",
            format!(
                "The subscription '{}' could not be found.",
                id.subscription_id().unwrap_or_default()
            ),
        )
    })?;
    let group_name = id.resource_group().ok_or_else(|| {
        Error::bad_request("InvalidResourceId", format!("'{id}' does not name a resource group"))
    })?;
    let resource_type = if id.is_resource_group() {
        types::resource_group()
    } else {
        id.resource_type().and_then(types::lookup).ok_or_else(|| unsupported_type(id))?
    };
    let name = if id.is_resource_group() { group_name } else { id.name().unwrap_or_default() };
    types::check_name(name)?;
    let body = object(request.body)?;
    let existing = rows.existing.as_ref();
    if request.patch && existing.is_none() {
        return Err(if id.is_resource_group() {
            group_not_found(group_name)
        } else {
            resource_not_found(id, group_name)
        });
    }
    let group = if id.is_resource_group() {
        None
    } else {
        Some(rows.group.as_ref().ok_or_else(|| group_not_found(group_name))?)
    };
    let location = text_field(body, "location")?
        .or_else(|| existing.map(|resource| resource.location.clone()))
        .or_else(|| group.map(|group| group.location.clone()))
        .unwrap_or_else(|| "local".to_owned());
    let now = context.now.millis();
    let mut resource = Resource {
        // ARM keeps the spelling the resource was created with, keywords and types canonical.
        id: existing.map_or_else(|| types::canonical_id(id), |resource| resource.id.clone()),
        subscription_id: subscription.id.clone(),
        resource_type,
        name: existing.map_or_else(|| name.to_owned(), |resource| resource.name.clone()),
        location,
        tags: tags_field(body, existing, request.patch)?,
        extras: extras_field(body, existing, request.patch),
        properties: properties_field(body, existing, request.patch)?,
        identity: existing.and_then(|resource| resource.identity.clone()),
        host: existing.and_then(|resource| resource.host.clone()),
        version: existing.map_or(1, |resource| resource.version),
        created_at: existing.map_or(now, |resource| resource.created_at),
        updated_at: now,
    };
    let mut writes = Vec::new();
    let mut attach = Vec::new();
    match resource_type.kind {
        Kind::ResourceGroup => resource.properties = Map::new(),
        Kind::Compute => {
            compute::plan(context, rows, request, &mut resource, &mut writes, &mut attach)?
        }
        Kind::UserAssignedIdentity => {
            user_identity::plan(context, existing, &mut resource, &mut writes)
        }
        Kind::FederatedCredential => federated::plan(rows, request, &mut resource, &mut writes)?,
        Kind::Vault => vault::plan(context, rows, &mut resource)?,
        Kind::Generic => network::plan(&mut resource),
        Kind::Deployment => {
            return Err(Error::bad_request(
                "InvalidResourceType",
                "Deployments are created with a deployment request, not written as resources.",
            ));
        }
    }
    let expect = existing.map_or(Expect::Absent, |resource| Expect::Version(resource.version));
    writes.push(Write::PutResource { record: resource.to_record(), expect });
    Ok(Plan { writes, created: existing.is_none(), resource: Some(resource), attach })
}

/// Plans the delete of a resource or group with its cascades.
pub fn delete(context: &Context<'_>, rows: &DeleteRows) -> Plan {
    let mut writes = Vec::new();
    for principal in &rows.principals {
        writes.push(Write::DeletePrincipal { object_id: principal.object_id.clone() });
    }
    for resource in &rows.doomed {
        match resource.kind() {
            Kind::UserAssignedIdentity => {
                writes.push(Write::DeleteFederatedCredentialsOf {
                    identity_key: resource.key().to_owned(),
                });
            }
            Kind::Vault => writes.push(Write::PurgeVault { vault_key: resource.key().to_owned() }),
            Kind::FederatedCredential => {
                writes.push(Write::DeleteFederatedCredential { key: resource.key().to_owned() })
            }
            _ => {}
        }
        writes.push(Write::DeleteRoleAssignmentsUnder { scope_key: resource.key().to_owned() });
        writes.push(Write::DeleteResource { key: resource.key().to_owned() });
    }
    let gone: Vec<&str> = rows
        .doomed
        .iter()
        .filter(|resource| resource.kind() == Kind::UserAssignedIdentity)
        .map(Resource::key)
        .collect();
    for holder in &rows.holders {
        let mut holder = holder.clone();
        if let Some(block) = holder.identity.as_mut() {
            block.user.retain(|user| !gone.contains(&user.id.key()));
        }
        holder.updated_at = context.now.millis();
        let expect = Expect::Version(holder.version);
        writes.push(Write::PutResource { record: holder.to_record(), expect });
    }
    Plan { writes, resource: None, created: false, attach: Vec::new() }
}

/// A managed identity's service principal, named after `name` and owned by `managed_by_key`.
fn managed_principal(
    context: &Context<'_>,
    name: &str,
    managed_by_key: &str,
    kind: &str,
) -> PrincipalRecord {
    PrincipalRecord {
        object_id: (context.new_guid)().to_string(),
        tenant_id: context.tenant_id.to_owned(),
        kind: "ManagedIdentity".to_owned(),
        app_id: (context.new_guid)().to_string(),
        display_name: name.to_owned(),
        managed_by_key: Some(managed_by_key.to_owned()),
        identity_kind: Some(kind.to_owned()),
        enabled: true,
        created_at: context.now.millis(),
    }
}

fn unsupported_type(id: &ResourceId) -> Error {
    Error::bad_request(
        "InvalidResourceType",
        format!(
            "The resource type '{}' is not supported by Ambient.",
            id.resource_type().unwrap_or_default()
        ),
    )
}

fn object(body: &Value) -> Result<&Map<String, Value>> {
    body.as_object().ok_or_else(|| {
        Error::bad_request("InvalidRequestContent", "The request content must be a JSON object.")
    })
}

fn text_field(body: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
        Some(_) => Err(Error::bad_request(
            "InvalidRequestContent",
            format!("'{field}' must be a non-empty string"),
        )),
    }
}

/// The tags a write leaves: the body's (strings only, in the order sent), the current ones on a
/// PATCH without tags, none on a PUT without tags.
fn tags_field(
    body: &Map<String, Value>,
    existing: Option<&Resource>,
    patch: bool,
) -> Result<Map<String, Value>> {
    match body.get("tags") {
        Some(Value::Object(tags)) => {
            if tags.len() > domain::limits::TAGS_PER_RESOURCE_MAX
                || tags.iter().any(|(key, value)| {
                    key.is_empty()
                        || key.len() > domain::limits::TAG_NAME_CHARS_MAX
                        || !value.is_string()
                })
            {
                return Err(Error::bad_request(
                    "InvalidTag",
                    "tags must be at most 50 string values with names of 1 to 512 characters",
                ));
            }
            Ok(tags.clone())
        }
        None | Some(Value::Null) if patch => {
            Ok(existing.map(|resource| resource.tags.clone()).unwrap_or_default())
        }
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(Error::bad_request("InvalidTag", "'tags' must be an object")),
    }
}

/// `kind`, `sku`, `zones`...: the body's on a PUT, merged on a PATCH.
fn extras_field(
    body: &Map<String, Value>,
    existing: Option<&Resource>,
    patch: bool,
) -> Map<String, Value> {
    let mut extras = if patch {
        existing.map(|resource| resource.extras.clone()).unwrap_or_default()
    } else {
        Map::new()
    };
    for field in EXTRA_FIELDS {
        match body.get(*field) {
            Some(Value::Null) => {
                extras.shift_remove(*field);
            }
            Some(value) => {
                extras.insert((*field).to_owned(), value.clone());
            }
            None => {}
        }
    }
    extras
}

/// The body's `properties` on a PUT; on a PATCH, the current ones with the body's merged in.
fn properties_field(
    body: &Map<String, Value>,
    existing: Option<&Resource>,
    patch: bool,
) -> Result<Map<String, Value>> {
    let current = existing.map(|resource| resource.properties.clone()).unwrap_or_default();
    let mut properties = match (patch, body.get("properties")) {
        (_, Some(Value::Null)) | (false, None) => Map::new(),
        (true, None) => current,
        (true, Some(Value::Object(update))) => {
            let mut merged = current;
            for (key, value) in update {
                merged.insert(key.clone(), value.clone());
            }
            merged
        }
        (false, Some(Value::Object(given))) => given.clone(),
        (_, Some(_)) => {
            return Err(Error::bad_request(
                "InvalidRequestContent",
                "'properties' must be an object",
            ));
        }
    };
    properties.shift_remove("provisioningState");
    Ok(properties)
}

fn required_text(properties: &Map<String, Value>, field: &str) -> Result<String> {
    match properties.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        _ => Err(Error::bad_request(
            "InvalidRequestContent",
            format!("'properties.{field}' is required"),
        )),
    }
}

/// The ARM error for a missing resource group.
pub fn group_not_found(name: &str) -> Error {
    Error::not_found(
        "ResourceGroupNotFound",
        format!("Resource group '{name}' could not be found."),
    )
}

/// The ARM error for a missing resource.
pub fn resource_not_found(id: &ResourceId, group: &str) -> Error {
    Error::not_found(
        "ResourceNotFound",
        format!(
            "The Resource '{}/{}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            id.resource_type().unwrap_or_default(),
            id.name().unwrap_or_default()
        ),
    )
}

/// The type a resource id names, canonically spelled, if Ambient knows it.
pub fn known_type(id: &ResourceId) -> Option<ResourceType> {
    if id.is_resource_group() {
        Some(types::resource_group())
    } else {
        id.resource_type().and_then(types::lookup)
    }
}
