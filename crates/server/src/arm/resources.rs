//! Subscriptions, resource groups and resources: reads, lists, and writes through the planner.

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ResourceId;
use rbac::ActionKind;
use resources::load;
use resources::plan::{self, PutRequest};
use resources::types::{self, Kind};
use serde_json::{Value, json};
use store::{Page, ResourceFilter};

use crate::arm::activity::{Outcome, commit};
use crate::arm::{Context, from_resources};
use crate::auth::denied;
use crate::error::ApiError;

const ASSIGN_ACTION: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";

fn subscription_json(row: &store::SubscriptionRecord) -> Value {
    json!({
        "id": format!("/subscriptions/{}", row.id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": row.id,
        "tenantId": row.tenant_id,
        "displayName": row.display_name,
        "state": row.state,
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
    })
}

fn subscription_scope(id: &str) -> Result<ResourceId, ApiError> {
    ResourceId::parse(&format!("/subscriptions/{id}"))
        .map_err(|error| ApiError::bad_request("InvalidSubscriptionId", error.to_string()))
}

pub async fn list_subscriptions(context: &Context) -> Result<Response, ApiError> {
    let mut value = Vec::new();
    for row in context.state.store.list_subscriptions().await? {
        if context.grants.has_any_within(&subscription_scope(&row.id)?) {
            value.push(subscription_json(&row));
        }
    }
    Ok(Json(json!({"value": value, "count": {"type": "Total", "value": value.len()}}))
        .into_response())
}

pub async fn get_subscription(context: &Context, id: &str) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{id}' could not be found."),
        )
    };
    let row = context
        .state
        .store
        .get_subscription(&id.to_ascii_lowercase())
        .await?
        .ok_or_else(not_found)?;
    let scope = subscription_scope(&row.id)?;
    if !context.grants.has_any_within(&scope) {
        return Err(denied(
            "AuthorizationFailed",
            context.caller(),
            "Microsoft.Resources/subscriptions/read",
            &scope,
        ));
    }
    Ok(Json(subscription_json(&row)).into_response())
}

pub async fn list_groups(context: &Context, subscription: &str) -> Result<Response, ApiError> {
    let filter = ResourceFilter {
        subscription_id: Some(subscription.to_ascii_lowercase()),
        type_key: Some(types::RESOURCE_GROUP_TYPE_KEY.to_owned()),
        ..ResourceFilter::default()
    };
    page_of(context, filter).await
}

/// The RBAC namespace of a resource type's actions (`{name}/read`, `/write`, `/delete`).
pub(crate) fn action_namespace(id: &ResourceId) -> Result<&'static str, ApiError> {
    match plan::known_type(id) {
        Some(known) if known.kind == Kind::ResourceGroup => Ok(types::RESOURCE_GROUP_ACTIONS),
        Some(known) => Ok(known.name),
        None => Err(ApiError::bad_request(
            "InvalidResourceType",
            format!(
                "The resource type '{}' is not supported by Ambient.",
                id.resource_type().unwrap_or_default()
            ),
        )),
    }
}

/// GET, HEAD, PUT, PATCH or DELETE on one group or resource.
pub async fn operate(context: &Context, id: &ResourceId) -> Result<Response, ApiError> {
    let namespace = action_namespace(id)?;
    match context.method {
        Method::GET | Method::HEAD => {
            context.grants.check(&format!("{namespace}/read"), id)?;
            let Some(resource) =
                load::resource(context.state.store.as_ref(), id).await.map_err(from_resources)?
            else {
                return Err(missing(context, id).await);
            };
            if context.method == Method::HEAD {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            let mut body = resource.render(&context.state.vault_host);
            let expand = context.query("$expand").unwrap_or_default().to_ascii_lowercase();
            if resource.resource_type.name == "Microsoft.Compute/virtualMachines"
                && expand.contains("instanceview")
            {
                // Ambient runs no machines: a VM is as its host's agent serves it, running.
                body["properties"]["instanceView"] = json!({
                    "computerName": resource.name,
                    "statuses": [
                        {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                        {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
                    ],
                });
            }
            Ok(Json(body).into_response())
        }
        Method::PUT | Method::PATCH => put(context, id, &format!("{namespace}/write")).await,
        Method::DELETE => delete(context, id, &format!("{namespace}/delete")).await,
        _ => Err(context.only(Method::GET).unwrap_err()),
    }
}

/// The error for a resource that is not there: `ResourceGroupNotFound` when its group is
/// missing too, as ARM answers (`az vm show -g nope` says so), else `ResourceNotFound`.
async fn missing(context: &Context, id: &ResourceId) -> ApiError {
    if !id.is_resource_group()
        && let (Some(subscription), Some(group)) = (id.subscription_id(), id.resource_group())
        && let Ok(group_id) = ResourceId::resource_group_id(subscription, group)
        && let Ok(None) = context.state.store.get_resource(group_id.key()).await
    {
        return not_found(&group_id);
    }
    not_found(id)
}

fn not_found(id: &ResourceId) -> ApiError {
    let group = id.resource_group().unwrap_or_default();
    from_resources(if id.is_resource_group() {
        plan::group_not_found(group)
    } else {
        plan::resource_not_found(id, group)
    })
}

/// Creates or updates: plans against the current rows, checks linked authorization of newly
/// attached identities, commits with the activity events.
pub async fn put(context: &Context, id: &ResourceId, action: &str) -> Result<Response, ApiError> {
    let body = context.json_body()?;
    let patch = context.method == Method::PATCH;
    commit(context, id, action, async || {
        let rows =
            load::for_put(context.state.store.as_ref(), id, &body).await.map_err(from_resources)?;
        let plan = context
            .with_plan_context(|plan_context| {
                plan::put(plan_context, &rows, PutRequest { id, body: &body, patch })
            })
            .map_err(from_resources)?;
        for identity in &plan.attach {
            if !context.grants.allows(ASSIGN_ACTION, ActionKind::Control, identity) {
                return Err(denied(
                    "LinkedAuthorizationFailed",
                    context.caller(),
                    ASSIGN_ACTION,
                    identity,
                ));
            }
        }
        // App Service answers a create with 200 (its clients refuse 201).
        let app_service = id
            .resource_type()
            .is_some_and(|kind| kind.to_ascii_lowercase().starts_with("microsoft.web/"));
        let status =
            if plan.created && !app_service { StatusCode::CREATED } else { StatusCode::OK };
        let body = plan
            .resource
            .as_ref()
            .map(|resource| resource.render(&context.state.vault_host))
            .unwrap_or(Value::Null);
        Ok(Outcome { writes: plan.writes, status, body: Some(body) })
    })
    .await
}

/// Deletes with the cascades; 204 when it does not exist (a missing group is 404, as az
/// expects).
pub async fn delete(
    context: &Context,
    id: &ResourceId,
    action: &str,
) -> Result<Response, ApiError> {
    commit(context, id, action, async || {
        let store = context.state.store.as_ref();
        let Some(rows) = load::for_delete(store, id).await.map_err(from_resources)? else {
            if id.is_resource_group() {
                return Err(not_found(id));
            }
            return Ok(Outcome { writes: Vec::new(), status: StatusCode::NO_CONTENT, body: None });
        };
        let plan = context.with_plan_context(|plan_context| plan::delete(plan_context, &rows));
        Ok(Outcome { writes: plan.writes, status: StatusCode::OK, body: None })
    })
    .await
}

/// `GET .../resources`, a collection of one type, or the groups of a subscription: one page,
/// filtered to what the caller may read.
pub async fn list_resources(
    context: &Context,
    subscription: &str,
    group: Option<&str>,
    type_name: Option<&str>,
    parent: Option<&ResourceId>,
) -> Result<Response, ApiError> {
    if let Some(group) = group {
        let group_id = ResourceId::resource_group_id(subscription, group)
            .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
        let store = context.state.store.as_ref();
        if store.get_resource(group_id.key()).await?.is_none() {
            return Err(not_found(&group_id));
        }
        // Listing a group's contents needs read access at (or above) the group, as on Azure.
        if !context.grants.has_any_within(&group_id) {
            return Err(denied(
                "AuthorizationFailed",
                context.caller(),
                "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
                &group_id,
            ));
        }
    }
    let filter = ResourceFilter {
        subscription_id: Some(subscription.to_ascii_lowercase()),
        resource_group_key: group.map(str::to_ascii_lowercase),
        type_key: type_name.map(str::to_ascii_lowercase),
        key_prefix: parent.map(|parent| format!("{}/", parent.key())),
        ..ResourceFilter::default()
    };
    page_of(context, filter).await
}

async fn page_of(context: &Context, filter: ResourceFilter) -> Result<Response, ApiError> {
    let limit = context
        .query("$top")
        .and_then(|top| top.parse::<i64>().ok())
        .unwrap_or(domain::limits::PAGE_SIZE_DEFAULT as i64)
        .clamp(1, domain::limits::PAGE_SIZE_MAX as i64);
    let page = Page { after_key: context.query("$skiptoken").map(str::to_owned), limit };
    let rows = context.state.store.list_resources(&filter, &page).await?;
    let full = rows.len() as i64 == limit;
    let next = rows.last().map(|row| row.key.clone());
    let mut value = Vec::new();
    for row in rows {
        let resource = resources::Resource::from_record(&row).map_err(from_resources)?;
        // Deployment records are listed by the deployments API, not as resources.
        if resource.kind() == Kind::Deployment {
            continue;
        }
        let namespace = action_namespace(&resource.id)?;
        if context.grants.allows(&format!("{namespace}/read"), ActionKind::Control, &resource.id) {
            value.push(resource.render(&context.state.vault_host));
        }
    }
    let mut body = json!({"value": value});
    if full && let Some(next) = next {
        body["nextLink"] = json!(context.next_link(&next));
    }
    Ok(Json(body).into_response())
}

/// `{resource}/providers/Microsoft.ManagedIdentity/identities/default`.
pub async fn system_identity(
    context: &Context,
    resource_id: &ResourceId,
) -> Result<Response, ApiError> {
    let id = ResourceId::parse(&format!(
        "{resource_id}/providers/Microsoft.ManagedIdentity/identities/default"
    ))
    .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
    context.grants.check("Microsoft.ManagedIdentity/identities/read", &id)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The resource '{resource_id}' has no system-assigned identity."),
        )
    };
    let resource = load::resource(context.state.store.as_ref(), resource_id)
        .await
        .map_err(from_resources)?
        .ok_or_else(not_found)?;
    let system =
        resource.identity.as_ref().and_then(|block| block.system.as_ref()).ok_or_else(not_found)?;
    let principal =
        context.state.store.get_principal(&system.principal_id).await?.ok_or_else(not_found)?;
    Ok(Json(json!({
        "id": id.as_str(),
        "name": "default",
        "type": "Microsoft.ManagedIdentity/Identities",
        "location": resource.location,
        "tags": resource.tags,
        "properties": {"tenantId": principal.tenant_id, "principalId": principal.object_id, "clientId": principal.app_id},
    }))
    .into_response())
}
