//! The control plane (Resource Manager's role): subscriptions, resource groups, every known
//! resource type through one generic handler, role definitions and assignments, the activity
//! log, `identities/default` and `/metadata/endpoints`.
//!
//! Every request carries a bearer token for a management audience and is authorized with RBAC
//! against the target scope; lists show only what the caller may read. Writes record `Started`
//! and `Succeeded`/`Failed` activity events; the success event commits with the change.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{Guid, ResourceId};
use rbac::ActionKind;
use resources::activity::{self, Operation};
use resources::types;
use serde_json::{Value, json};
use store::{EventFilter, Page, ResourceFilter, RoleAssignmentRecord, RoleDefinitionRecord, Write};

use crate::auth::{
    Caller, CallerGrants, authenticate, denied, management_audiences, role_definition,
};
use crate::convert::PermissionJson;
use crate::error::ApiError;
use crate::state::AppState;

const AUTHORIZATION: &str = "/providers/microsoft.authorization/";
const ACTIVITY_VALUES: &str = "/providers/microsoft.insights/eventtypes/management/values";
const IDENTITY_DEFAULT: &str = "/providers/microsoft.managedidentity/identities/default";
const ACTIVITY_PAGE: i64 = 200;

/// Everything about one ARM request that handlers share.
struct Context {
    state: AppState,
    grants: CallerGrants,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    correlation_id: String,
    client_ip: String,
    body: Bytes,
}

impl Context {
    fn caller(&self) -> &Caller {
        self.grants.caller()
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body).map_err(|error| {
            ApiError::bad_request(
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: {error}"),
            )
        })
    }

    /// The URL of the next page: this path with `$skiptoken`.
    fn next_link(&self, token: &str) -> String {
        let api_version = self.query("api-version").unwrap_or_default();
        format!(
            "{}{}?api-version={}&$skiptoken={}",
            self.state.base_url,
            self.path,
            client_encode(api_version),
            client_encode(token)
        )
    }
}

/// `GET /subscriptions`, `/subscriptions/...`, `/providers/...` and `/tenants`: the control plane.
pub async fn dispatch(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, domain::limits::REQUEST_BODY_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestContentTooLarge",
                "The request content is too large.",
            )
            .into_response();
        }
    };
    let path = parts.uri.path().trim_end_matches('/').to_owned();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
    let correlation_id = headers
        .get("x-ms-client-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 64)
        .map(str::to_owned)
        .unwrap_or_else(|| Guid::new_random().to_string());
    let result = async {
        let caller = authenticate(&state, &headers, &management_audiences(&state.dns_suffix))?;
        if !query.iter().any(|(key, _)| key.eq_ignore_ascii_case("api-version")) {
            return Err(ApiError::bad_request(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            ));
        }
        let grants = CallerGrants::load(&state, &caller).await?;
        let context = Context {
            state: state.clone(),
            grants,
            method: parts.method.clone(),
            path: if path.is_empty() { "/".to_owned() } else { path.clone() },
            query,
            correlation_id: correlation_id.clone(),
            client_ip: peer.ip().to_string(),
            body,
        };
        route(&context).await
    }
    .await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if let Ok(value) = axum::http::HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert("x-ms-correlation-request-id", value);
    }
    response
}

async fn route(context: &Context) -> Result<Response, ApiError> {
    let path = context.path.as_str();
    let lower = path.to_ascii_lowercase();
    if lower == "/subscriptions" {
        return only(context, Method::GET).and(list_subscriptions(context).await);
    }
    if lower == "/tenants" {
        only(context, Method::GET)?;
        let tenant = &context.state.deployment.tenant_id;
        return Ok(Json(json!({"value": [{"id": format!("/tenants/{tenant}"), "tenantId": tenant, "tenantCategory": "Home", "displayName": "Default Directory"}]})).into_response());
    }
    if let Some(at) = lower.find(AUTHORIZATION) {
        let scope_text = if at == 0 { "/" } else { &path[..at] };
        let scope = parse_id(scope_text)?;
        let rest: Vec<&str> = path[at + AUTHORIZATION.len()..].split('/').collect();
        return match (rest[0].to_ascii_lowercase().as_str(), rest.get(1)) {
            ("roleassignments", None) => {
                only(context, Method::GET).and(list_assignments(context, &scope).await)
            }
            ("roleassignments", Some(name)) if rest.len() == 2 => {
                role_assignment(context, &scope, name).await
            }
            ("roledefinitions", None) => {
                only(context, Method::GET).and(list_role_definitions(context, &scope).await)
            }
            ("roledefinitions", Some(name)) if rest.len() == 2 => {
                role_definition_op(context, &scope, name).await
            }
            _ => Err(no_route(context)),
        };
    }
    if lower.ends_with(ACTIVITY_VALUES) {
        only(context, Method::GET)?;
        let scope = parse_id(&path[..path.len() - ACTIVITY_VALUES.len()])?;
        return activity_log(context, &scope).await;
    }
    if lower.ends_with(IDENTITY_DEFAULT) {
        only(context, Method::GET)?;
        let resource = parse_id(&path[..path.len() - IDENTITY_DEFAULT.len()])?;
        return system_identity(context, &resource).await;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let lowered: Vec<String> =
        segments.iter().map(|segment| segment.to_ascii_lowercase()).collect();
    match lowered.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["subscriptions", _] => {
            only(context, Method::GET).and(get_subscription(context, segments[1]).await)
        }
        ["subscriptions", _, "resourcegroups"] => {
            only(context, Method::GET).and(list_groups(context, segments[1]).await)
        }
        ["subscriptions", _, "resourcegroups", _] => group_op(context, &parse_id(path)?).await,
        ["subscriptions", _, "resources"] => {
            only(context, Method::GET)?;
            list_resources(
                context,
                ResourceFilter {
                    subscription_id: Some(segments[1].to_ascii_lowercase()),
                    ..ResourceFilter::default()
                },
            )
            .await
        }
        ["subscriptions", _, "resourcegroups", _, "resources"] => {
            only(context, Method::GET)?;
            list_resources(
                context,
                ResourceFilter {
                    subscription_id: Some(segments[1].to_ascii_lowercase()),
                    resource_group_key: Some(lowered[3].clone()),
                    ..ResourceFilter::default()
                },
            )
            .await
        }
        _ => resource_route(context, &segments, &lowered).await,
    }
}

/// `.../providers/{ns}/{type}[/{name}[/{child}[/{childName}]]]` under a subscription or group.
async fn resource_route(
    context: &Context,
    segments: &[&str],
    lowered: &[String],
) -> Result<Response, ApiError> {
    let Some(providers) = lowered.iter().position(|segment| segment == "providers") else {
        return Err(no_route(context));
    };
    if lowered.first().map(String::as_str) != Some("subscriptions") || providers < 2 {
        return Err(no_route(context));
    }
    let after = &segments[providers + 1..];
    if after.len() < 2 {
        return Err(no_route(context));
    }
    let subscription = lowered[1].clone();
    let group = (providers == 4 && lowered[2] == "resourcegroups").then(|| lowered[3].clone());
    if after.len().is_multiple_of(2) {
        // A collection: `{ns}/{type}` or `{ns}/{type}/{name}/{child}`.
        only(context, Method::GET)?;
        let type_key = if after.len() == 2 {
            format!("{}/{}", after[0], after[1]).to_ascii_lowercase()
        } else {
            let child_type: Vec<&str> = after.iter().skip(1).step_by(2).copied().collect();
            format!("{}/{}", after[0], child_type.join("/")).to_ascii_lowercase()
        };
        let key_prefix = (after.len() > 2).then(|| {
            format!(
                "{}/",
                context.path[..context.path.rfind('/').unwrap_or(0)].to_ascii_lowercase()
            )
        });
        return list_resources(
            context,
            ResourceFilter {
                subscription_id: Some(subscription),
                resource_group_key: group,
                type_key: Some(type_key),
                key_prefix,
                ..ResourceFilter::default()
            },
        )
        .await;
    }
    let id = parse_id(&context.path)?;
    resource_op(context, &id).await
}

fn only(context: &Context, method: Method) -> Result<(), ApiError> {
    if context.method == method {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The method '{}' is not allowed on '{}'.", context.method, context.path),
        ))
    }
}

fn no_route(context: &Context) -> ApiError {
    ApiError::bad_request(
        "InvalidResourceType",
        format!("No resource type matches the path '{}'.", context.path),
    )
}

fn parse_id(text: &str) -> Result<ResourceId, ApiError> {
    ResourceId::parse(if text.is_empty() { "/" } else { text })
        .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))
}

fn from_resources(error: resources::Error) -> ApiError {
    match error {
        resources::Error::BadRequest { code, message } => {
            ApiError::new(StatusCode::BAD_REQUEST, code, message)
        }
        resources::Error::NotFound { code, message } => {
            ApiError::new(StatusCode::NOT_FOUND, code, message)
        }
        resources::Error::Conflict(message) => {
            ApiError::new(StatusCode::CONFLICT, "Conflict", message)
        }
        resources::Error::Store(error) => ApiError::from(error),
    }
}

// --- Subscriptions --------------------------------------------------------------------------

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

async fn list_subscriptions(context: &Context) -> Result<Response, ApiError> {
    let mut value = Vec::new();
    for row in context.state.store.list_subscriptions().await? {
        let scope = parse_id(&format!("/subscriptions/{}", row.id))?;
        if context.grants.has_any_within(&scope) {
            value.push(subscription_json(&row));
        }
    }
    Ok(Json(json!({"value": value, "count": {"type": "Total", "value": value.len()}}))
        .into_response())
}

async fn get_subscription(context: &Context, id: &str) -> Result<Response, ApiError> {
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
    let scope = parse_id(&format!("/subscriptions/{}", row.id))?;
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

// --- Resource groups and resources ----------------------------------------------------------

async fn list_groups(context: &Context, subscription: &str) -> Result<Response, ApiError> {
    list_resources(
        context,
        ResourceFilter {
            subscription_id: Some(subscription.to_ascii_lowercase()),
            type_key: Some("microsoft.resources/resourcegroups".to_owned()),
            ..ResourceFilter::default()
        },
    )
    .await
}

async fn group_op(context: &Context, id: &ResourceId) -> Result<Response, ApiError> {
    let resource_type = "Microsoft.Resources/subscriptions/resourceGroups";
    match context.method.as_str() {
        "GET" | "HEAD" => {
            context.grants.check(&format!("{resource_type}/read"), id)?;
            let row = context.state.store.get_resource(id.key()).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "ResourceGroupNotFound",
                    format!(
                        "Resource group '{}' could not be found.",
                        id.resource_group().unwrap_or_default()
                    ),
                )
            })?;
            if context.method == Method::HEAD {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            Ok(Json(resources::render(&row, &context.state.vault_host)).into_response())
        }
        "PUT" | "PATCH" => {
            let action = format!("{resource_type}/write");
            let body = context.json_body()?;
            let patch = context.method == Method::PATCH;
            write(context, id, &action, |planner| {
                let body = body.clone();
                async move { planner.put_group(id, &body, patch).await }
            })
            .await
        }
        "DELETE" => delete(context, id, &format!("{resource_type}/delete")).await,
        _ => Err(only(context, Method::GET).unwrap_err()),
    }
}

async fn resource_op(context: &Context, id: &ResourceId) -> Result<Response, ApiError> {
    let resource_type = id.resource_type().unwrap_or_default();
    let known = types::lookup(resource_type).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidResourceType",
            format!("The resource type '{resource_type}' is not supported by Ambient."),
        )
    })?;
    match context.method.as_str() {
        "GET" => {
            context.grants.check(&format!("{}/read", known.name), id)?;
            let row = context.state.store.get_resource(id.key()).await?.ok_or_else(|| {
                from_resources(resources::plan::resource_not_found(
                    id,
                    id.resource_group().unwrap_or_default(),
                ))
            })?;
            Ok(Json(resources::render(&row, &context.state.vault_host)).into_response())
        }
        "PUT" | "PATCH" => {
            let action = format!("{}/write", known.name);
            let body = context.json_body()?;
            let patch = context.method == Method::PATCH;
            write(context, id, &action, |planner| {
                let body = body.clone();
                async move { planner.put_resource(id, &body, patch).await }
            })
            .await
        }
        "DELETE" => delete(context, id, &format!("{}/delete", known.name)).await,
        _ => Err(only(context, Method::GET).unwrap_err()),
    }
}

/// Authorizes, plans, checks linked authorization, applies with the activity events.
async fn write<'a, F, Fut>(
    context: &'a Context,
    id: &'a ResourceId,
    action: &str,
    plan: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(resources::Planner<'a>) -> Fut,
    Fut: std::future::Future<Output = resources::Result<resources::Plan>>,
{
    context.grants.check(action, id)?;
    let state = &context.state;
    let subscription = id.subscription_id().unwrap_or_default().to_owned();
    let operation = Operation {
        tenant_id: &state.deployment.tenant_id,
        subscription_id: &subscription,
        resource_id: id,
        action,
        caller_object_id: &context.caller().object_id,
        caller_app_id: &context.caller().app_id,
        correlation_id: &context.correlation_id,
        method: context.method.as_str(),
        client_ip: &context.client_ip,
    };
    state
        .store
        .apply(vec![Write::AppendActivityEvent(activity::event(
            &operation,
            "Started",
            None,
            state.clock.now(),
        ))])
        .await?;
    let planner = resources::Planner {
        store: state.store.as_ref(),
        now: state.clock.now(),
        tenant_id: &state.deployment.tenant_id,
    };
    let outcome = async {
        let plan = plan(planner).await.map_err(from_resources)?;
        let assign = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
        for identity in &plan.attach {
            if !context.grants.allows(assign, ActionKind::Control, identity) {
                return Err(denied(
                    "LinkedAuthorizationFailed",
                    context.caller(),
                    assign,
                    identity,
                ));
            }
        }
        let status = if plan.created { StatusCode::CREATED } else { StatusCode::OK };
        let mut writes = plan.writes;
        writes.push(Write::AppendActivityEvent(activity::event(
            &operation,
            "Succeeded",
            Some(status.as_u16()),
            state.clock.now(),
        )));
        state.store.apply(writes).await.map_err(|error| match error {
            store::Error::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "Conflict",
                "The resource was changed by another request; retry.",
            ),
            other => ApiError::from(other),
        })?;
        state.changed();
        let body = plan
            .record
            .as_ref()
            .map(|record| resources::render(record, &state.vault_host))
            .unwrap_or(Value::Null);
        Ok((status, Json(body)).into_response())
    }
    .await;
    if let Err(error) = &outcome {
        let failed =
            activity::event(&operation, "Failed", Some(error.status.as_u16()), state.clock.now());
        if let Err(log_error) = state.store.apply(vec![Write::AppendActivityEvent(failed)]).await {
            tracing::warn!(%log_error, "could not record a failed operation");
        }
    }
    outcome
}

async fn delete(context: &Context, id: &ResourceId, action: &str) -> Result<Response, ApiError> {
    context.grants.check(action, id)?;
    let state = &context.state;
    let planner = resources::Planner {
        store: state.store.as_ref(),
        now: state.clock.now(),
        tenant_id: &state.deployment.tenant_id,
    };
    let Some(plan) = planner.delete(id).await.map_err(from_resources)? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let subscription = id.subscription_id().unwrap_or_default().to_owned();
    let operation = Operation {
        tenant_id: &state.deployment.tenant_id,
        subscription_id: &subscription,
        resource_id: id,
        action,
        caller_object_id: &context.caller().object_id,
        caller_app_id: &context.caller().app_id,
        correlation_id: &context.correlation_id,
        method: "DELETE",
        client_ip: &context.client_ip,
    };
    let mut writes = vec![Write::AppendActivityEvent(activity::event(
        &operation,
        "Started",
        None,
        state.clock.now(),
    ))];
    writes.extend(plan.writes);
    writes.push(Write::AppendActivityEvent(activity::event(
        &operation,
        "Succeeded",
        Some(200),
        state.clock.now(),
    )));
    state.store.apply(writes).await.map_err(|error| match error {
        store::Error::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "A resource changed during the delete; retry.",
        ),
        other => ApiError::from(other),
    })?;
    state.changed();
    Ok(StatusCode::OK.into_response())
}

async fn list_resources(context: &Context, filter: ResourceFilter) -> Result<Response, ApiError> {
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
        let Ok(id) = ResourceId::parse(&row.id) else { continue };
        let read_type = if id.is_resource_group() {
            "Microsoft.Resources/subscriptions/resourceGroups".to_owned()
        } else {
            types::lookup(id.resource_type().unwrap_or_default()).map_or_else(
                || id.resource_type().unwrap_or_default().to_owned(),
                |known| known.name.to_owned(),
            )
        };
        if context.grants.allows(&format!("{read_type}/read"), ActionKind::Control, &id) {
            value.push(resources::render(&row, &context.state.vault_host));
        }
    }
    let mut body = json!({"value": value});
    if full && let Some(next) = next {
        body["nextLink"] = json!(context.next_link(&next));
    }
    Ok(Json(body).into_response())
}

async fn system_identity(context: &Context, resource: &ResourceId) -> Result<Response, ApiError> {
    let id =
        parse_id(&format!("{resource}/providers/Microsoft.ManagedIdentity/identities/default"))?;
    context.grants.check("Microsoft.ManagedIdentity/identities/read", &id)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The resource '{resource}' has no system-assigned identity."),
        )
    };
    let row = context.state.store.get_resource(resource.key()).await?.ok_or_else(not_found)?;
    let block: Value = row
        .identity
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let principal_id = block["principalId"].as_str().ok_or_else(not_found)?;
    let principal = context.state.store.get_principal(principal_id).await?.ok_or_else(not_found)?;
    Ok(Json(json!({
        "id": id.as_str(),
        "name": "default",
        "type": "Microsoft.ManagedIdentity/Identities",
        "location": row.location,
        "tags": serde_json::from_str::<Value>(&row.tags).unwrap_or_default(),
        "properties": {"tenantId": principal.tenant_id, "principalId": principal.object_id, "clientId": principal.app_id},
    }))
    .into_response())
}

// --- Role definitions -----------------------------------------------------------------------

fn role_definition_json(
    scope: &ResourceId,
    role: &rbac::RoleDefinition,
    created: i64,
    updated: i64,
) -> Value {
    let prefix = if scope.is_root() { String::new() } else { scope.as_str().to_owned() };
    json!({
        "id": format!("{prefix}/providers/Microsoft.Authorization/roleDefinitions/{}", role.id),
        "name": role.id.to_string(),
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.role_name,
            "type": if role.role_type == rbac::RoleType::BuiltIn { "BuiltInRole" } else { "CustomRole" },
            "description": role.description,
            "assignableScopes": role.assignable_scopes,
            "permissions": role.permissions.iter().map(PermissionJson::from).collect::<Vec<_>>(),
            "createdOn": resources::activity::format_time(domain::UnixTime::from_millis(created)),
            "updatedOn": resources::activity::format_time(domain::UnixTime::from_millis(updated)),
        },
    })
}

async fn all_roles(context: &Context) -> Result<Vec<(rbac::RoleDefinition, i64, i64)>, ApiError> {
    let mut roles: Vec<(rbac::RoleDefinition, i64, i64)> =
        rbac::builtin_roles().iter().map(|role| (role.clone(), 0, 0)).collect();
    for record in context.state.store.list_role_definitions().await? {
        if let Some(role) = crate::convert::role_definition_from_record(&record) {
            roles.push((role, record.created_at, record.updated_at));
        }
    }
    Ok(roles)
}

async fn list_role_definitions(
    context: &Context,
    scope: &ResourceId,
) -> Result<Response, ApiError> {
    context.grants.check("Microsoft.Authorization/roleDefinitions/read", scope)?;
    let filter = context.query("$filter").map(str::to_owned);
    let mut value = Vec::new();
    for (role, created, updated) in all_roles(context).await? {
        if let Some(filter) = &filter {
            let (field, wanted) = split_eq(filter).ok_or_else(|| {
                ApiError::bad_request("InvalidFilter", format!("Unsupported $filter: {filter}"))
            })?;
            let actual = match field.as_str() {
                "rolename" => role.role_name.clone(),
                "type" => {
                    if role.role_type == rbac::RoleType::BuiltIn {
                        "BuiltInRole".to_owned()
                    } else {
                        "CustomRole".to_owned()
                    }
                }
                _ => {
                    return Err(ApiError::bad_request(
                        "InvalidFilter",
                        format!("Unsupported $filter: {filter}"),
                    ));
                }
            };
            if !actual.eq_ignore_ascii_case(&wanted) {
                continue;
            }
        }
        value.push(role_definition_json(scope, &role, created, updated));
    }
    Ok(Json(json!({"value": value})).into_response())
}

async fn role_definition_op(
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
    match context.method.as_str() {
        "GET" => {
            context.grants.check("Microsoft.Authorization/roleDefinitions/read", scope)?;
            let role = role_definition(&context.state, name).await?.ok_or_else(not_found)?;
            let record = context.state.store.get_role_definition(&role.id.to_string()).await?;
            let (created, updated) = record.map_or((0, 0), |row| (row.created_at, row.updated_at));
            Ok(Json(role_definition_json(scope, &role, created, updated)).into_response())
        }
        "PUT" => {
            context.grants.check("Microsoft.Authorization/roleDefinitions/write", scope)?;
            let id: Guid = name.parse().map_err(|_| {
                ApiError::bad_request(
                    "InvalidRoleDefinitionId",
                    format!("The role definition ID '{name}' is not a valid GUID."),
                )
            })?;
            let body = context.json_body()?;
            let properties = &body["properties"];
            let permissions: Vec<PermissionJson> =
                serde_json::from_value(properties["permissions"].clone()).map_err(|error| {
                    ApiError::bad_request(
                        "InvalidRoleDefinition",
                        format!("'properties.permissions' is invalid: {error}"),
                    )
                })?;
            let assignable_scopes: Vec<String> =
                serde_json::from_value(properties["assignableScopes"].clone())
                    .unwrap_or_else(|_| vec![scope.as_str().to_owned()]);
            let role = rbac::RoleDefinition {
                id,
                role_name: properties["roleName"].as_str().unwrap_or_default().to_owned(),
                role_type: rbac::RoleType::Custom,
                description: properties["description"].as_str().unwrap_or_default().to_owned(),
                assignable_scopes,
                permissions: permissions.into_iter().map(rbac::Permission::from).collect(),
            };
            rbac::validate_custom_role(&role).map_err(|error| {
                ApiError::bad_request("InvalidRoleDefinition", error.to_string())
            })?;
            for (existing, _, _) in all_roles(context).await? {
                if existing.role_name.eq_ignore_ascii_case(&role.role_name)
                    && existing.id != role.id
                {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "RoleDefinitionWithSameNameExists",
                        format!("A role definition named '{}' already exists.", role.role_name),
                    ));
                }
            }
            let now = context.state.clock.now().millis();
            let existing = context.state.store.get_role_definition(&id.to_string()).await?;
            let record = RoleDefinitionRecord {
                id: id.to_string(),
                role_name: role.role_name.clone(),
                role_type: "CustomRole".to_owned(),
                description: role.description.clone(),
                assignable_scopes: json!(role.assignable_scopes).to_string(),
                permissions: json!(
                    role.permissions.iter().map(PermissionJson::from).collect::<Vec<_>>()
                )
                .to_string(),
                created_at: existing.as_ref().map_or(now, |row| row.created_at),
                updated_at: now,
            };
            context.state.store.apply(vec![Write::PutRoleDefinition(record.clone())]).await?;
            context.state.changed();
            let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
            Ok((
                status,
                Json(role_definition_json(scope, &role, record.created_at, record.updated_at)),
            )
                .into_response())
        }
        "DELETE" => {
            context.grants.check("Microsoft.Authorization/roleDefinitions/delete", scope)?;
            let Some(record) =
                context.state.store.get_role_definition(&name.to_ascii_lowercase()).await?
            else {
                return Ok(StatusCode::NO_CONTENT.into_response());
            };
            let in_use = context
                .state
                .store
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
            context
                .state
                .store
                .apply(vec![Write::DeleteRoleDefinition { id: record.id.clone() }])
                .await?;
            context.state.changed();
            let role =
                crate::convert::role_definition_from_record(&record).ok_or_else(not_found)?;
            Ok(Json(role_definition_json(scope, &role, record.created_at, record.updated_at))
                .into_response())
        }
        _ => Err(only(context, Method::GET).unwrap_err()),
    }
}

// --- Role assignments -----------------------------------------------------------------------

fn assignment_json(row: &RoleAssignmentRecord) -> Value {
    let scope = ResourceId::parse(&row.scope).ok();
    let prefix = match &scope {
        Some(scope) if scope.subscription_id().is_some() => {
            format!("/subscriptions/{}", scope.subscription_id().unwrap_or_default())
        }
        _ => String::new(),
    };
    json!({
        "id": row.id,
        "name": row.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": format!("{prefix}/providers/Microsoft.Authorization/roleDefinitions/{}", row.role_definition_id),
            "principalId": row.principal_id,
            "principalType": row.principal_type,
            "scope": row.scope,
            "condition": null,
            "conditionVersion": null,
            "createdOn": resources::activity::format_time(domain::UnixTime::from_millis(row.created_at)),
            "updatedOn": resources::activity::format_time(domain::UnixTime::from_millis(row.updated_at)),
            "createdBy": row.created_by,
            "updatedBy": row.created_by,
            "delegatedManagedIdentityResourceId": null,
            "description": row.description,
        },
    })
}

async fn role_assignment(
    context: &Context,
    scope: &ResourceId,
    name: &str,
) -> Result<Response, ApiError> {
    let prefix = if scope.is_root() { String::new() } else { scope.as_str().to_owned() };
    let id = format!("{prefix}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let key = id.to_ascii_lowercase();
    match context.method.as_str() {
        "GET" => {
            context.grants.check("Microsoft.Authorization/roleAssignments/read", scope)?;
            let mut row = context.state.store.get_role_assignment(&key).await?;
            if row.is_none() && scope.is_root() {
                // `GET /providers/Microsoft.Authorization/roleAssignments/{name}`: by name anywhere.
                row = context
                    .state
                    .store
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
            Ok(Json(assignment_json(&row)).into_response())
        }
        "PUT" => create_assignment(context, scope, name, &id).await,
        "DELETE" => {
            context.grants.check("Microsoft.Authorization/roleAssignments/delete", scope)?;
            let Some(row) = context.state.store.get_role_assignment(&key).await? else {
                return Ok(StatusCode::NO_CONTENT.into_response());
            };
            let subscription = scope.subscription_id().unwrap_or_default().to_owned();
            let resource = parse_id(&row.id)?;
            let operation = Operation {
                tenant_id: &context.state.deployment.tenant_id,
                subscription_id: &subscription,
                resource_id: &resource,
                action: "Microsoft.Authorization/roleAssignments/delete",
                caller_object_id: &context.caller().object_id,
                caller_app_id: &context.caller().app_id,
                correlation_id: &context.correlation_id,
                method: "DELETE",
                client_ip: &context.client_ip,
            };
            let now = context.state.clock.now();
            context
                .state
                .store
                .apply(vec![
                    Write::AppendActivityEvent(activity::event(&operation, "Started", None, now)),
                    Write::DeleteRoleAssignment { key },
                    Write::AppendActivityEvent(activity::event(
                        &operation,
                        "Succeeded",
                        Some(200),
                        now,
                    )),
                ])
                .await?;
            context.state.changed();
            Ok(Json(assignment_json(&row)).into_response())
        }
        _ => Err(only(context, Method::GET).unwrap_err()),
    }
}

async fn create_assignment(
    context: &Context,
    scope: &ResourceId,
    name: &str,
    id: &str,
) -> Result<Response, ApiError> {
    let action = "Microsoft.Authorization/roleAssignments/write";
    context.grants.check(action, scope)?;
    let state = &context.state;
    if name.parse::<Guid>().is_err() {
        return Err(ApiError::bad_request(
            "InvalidRoleAssignmentId",
            format!(
                "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
            ),
        ));
    }
    let body = context.json_body()?;
    let properties = &body["properties"];
    let role_text = properties["roleDefinitionId"].as_str().unwrap_or_default();
    let role_guid = role_text.rsplit('/').next().unwrap_or_default();
    let role = role_definition(state, role_guid).await?.ok_or_else(|| {
        ApiError::bad_request(
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{role_guid}' does not exist."),
        )
    })?;
    if !role.is_assignable_at(scope) {
        return Err(ApiError::bad_request(
            "InvalidRoleAssignmentScope",
            format!("The role '{}' cannot be assigned at scope '{scope}'.", role.role_name),
        ));
    }
    let principal_id = properties["principalId"].as_str().unwrap_or_default().to_ascii_lowercase();
    let principal = state.store.get_principal(&principal_id).await?.ok_or_else(|| {
        ApiError::bad_request(
            "PrincipalNotFound",
            format!(
                "Principal {principal_id} does not exist in the directory {}.",
                state.deployment.tenant_id
            ),
        )
    })?;
    if !scope.is_root() {
        let exists = if scope.is_subscription() {
            state
                .store
                .get_subscription(&scope.subscription_id().unwrap_or_default().to_ascii_lowercase())
                .await?
                .is_some()
        } else {
            state.store.get_resource(scope.key()).await?.is_some()
        };
        if !exists {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The scope '{scope}' does not exist."),
            ));
        }
    }
    let key = id.to_ascii_lowercase();
    if let Some(existing) = state.store.get_role_assignment(&key).await? {
        if existing.principal_id == principal.object_id
            && existing.role_definition_id == role.id.to_string()
        {
            return Ok(Json(assignment_json(&existing)).into_response());
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "RoleAssignmentUpdateNotPermitted",
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
        ));
    }
    let now = state.clock.now().millis();
    let principal_type =
        properties["principalType"].as_str().map(str::to_owned).unwrap_or_else(|| {
            if principal.kind == "User" { "User".to_owned() } else { "ServicePrincipal".to_owned() }
        });
    let row = RoleAssignmentRecord {
        key,
        id: id.to_owned(),
        name: name.to_ascii_lowercase(),
        scope: scope.as_str().to_owned(),
        scope_key: scope.key().to_owned(),
        role_definition_id: role.id.to_string(),
        principal_id: principal.object_id.clone(),
        principal_type,
        description: properties["description"].as_str().map(str::to_owned),
        created_by: Some(context.caller().object_id.clone()),
        created_at: now,
        updated_at: now,
    };
    let subscription = scope.subscription_id().unwrap_or_default().to_owned();
    let resource = parse_id(id)?;
    let operation = Operation {
        tenant_id: &state.deployment.tenant_id,
        subscription_id: &subscription,
        resource_id: &resource,
        action,
        caller_object_id: &context.caller().object_id,
        caller_app_id: &context.caller().app_id,
        correlation_id: &context.correlation_id,
        method: "PUT",
        client_ip: &context.client_ip,
    };
    let time = state.clock.now();
    let result = state
        .store
        .apply(vec![
            Write::AppendActivityEvent(activity::event(&operation, "Started", None, time)),
            Write::InsertRoleAssignment(row.clone()),
            Write::AppendActivityEvent(activity::event(&operation, "Succeeded", Some(201), time)),
        ])
        .await;
    match result {
        Ok(()) => {
            state.changed();
            Ok((StatusCode::CREATED, Json(assignment_json(&row))).into_response())
        }
        Err(store::Error::Conflict(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "RoleAssignmentExists",
            "The role assignment already exists.",
        )),
        Err(other) => Err(other.into()),
    }
}

async fn list_assignments(context: &Context, scope: &ResourceId) -> Result<Response, ApiError> {
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
    let value: Vec<Value> = rows.iter().map(assignment_json).collect();
    Ok(Json(json!({"value": value})).into_response())
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

/// `field eq 'value'` → (lower-case field, value).
fn split_eq(filter: &str) -> Option<(String, String)> {
    let (field, value) = filter.split_once(" eq ")?;
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some((field.trim().to_ascii_lowercase(), value.replace("''", "'")))
}

// --- Activity log ---------------------------------------------------------------------------

async fn activity_log(context: &Context, scope: &ResourceId) -> Result<Response, ApiError> {
    let subscription =
        scope.subscription_id().filter(|_| scope.is_subscription()).ok_or_else(|| {
            ApiError::bad_request("InvalidResourceId", "The activity log is read per subscription.")
        })?;
    context.grants.check("Microsoft.Insights/eventtypes/values/read", scope)?;
    let mut filter = EventFilter {
        partition: subscription.to_ascii_lowercase(),
        limit: ACTIVITY_PAGE,
        after_seq: context.query("$skiptoken").and_then(|token| token.parse().ok()).unwrap_or(0),
        ..EventFilter::default()
    };
    if let Some(text) = context.query("$filter") {
        for clause in text.split(" and ") {
            let clause = clause.trim();
            let bad = || {
                ApiError::bad_request(
                    "InvalidFilter",
                    format!("Unsupported $filter clause: {clause}"),
                )
            };
            if let Some(time) = clause.strip_prefix("eventTimestamp ge ") {
                filter.since = Some(activity::parse_time(time).ok_or_else(bad)?.millis());
            } else if let Some(time) = clause.strip_prefix("eventTimestamp le ") {
                filter.until = Some(activity::parse_time(time).ok_or_else(bad)?.millis());
            } else {
                let (field, value) = split_eq(clause).ok_or_else(bad)?;
                match field.as_str() {
                    "resourcegroupname" => {
                        filter.resource_group_key = Some(value.to_ascii_lowercase())
                    }
                    "correlationid" => filter.correlation_id = Some(value),
                    _ => return Err(bad()),
                }
            }
        }
    }
    let rows = context.state.store.list_activity_events(&filter).await?;
    let next = (rows.len() as i64 == ACTIVITY_PAGE)
        .then(|| rows.last().map(|row| row.seq.to_string()))
        .flatten();
    let value: Vec<Value> =
        rows.iter().filter_map(|row| serde_json::from_str(&row.body).ok()).collect();
    let mut body = json!({"value": value});
    if let Some(token) = next {
        // Keep the filter on the next page.
        let mut link = context.next_link(&token);
        if let Some(text) = context.query("$filter") {
            link.push_str(&format!("&$filter={}", client_encode(text)));
        }
        body["nextLink"] = json!(link);
    }
    Ok(Json(body).into_response())
}

// --- Cloud metadata -------------------------------------------------------------------------

/// `GET /metadata/endpoints`: this cloud's endpoints, for `az cloud register` (2015-01-01
/// shape) and `ARM_CLOUD_METADATA_URL` (2019-05-01 and later: a list of clouds).
pub async fn metadata_endpoints(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let base = state.base_url.to_string();
    let suffix = state.dns_suffix.to_string();
    let api_version = query
        .iter()
        .find(|(key, _)| key == "api-version")
        .map(|(_, value)| value.as_str())
        .unwrap_or("2015-01-01");
    let audiences = json!([
        format!("https://management.{suffix}/"),
        "https://management.core.windows.net/",
        "https://management.azure.com/"
    ]);
    if api_version >= "2019-05-01" {
        return Json(json!([{
            "name": "Ambient",
            "portal": format!("{base}/console/"),
            "resourceManager": format!("{base}/"),
            "authentication": {"loginEndpoint": format!("{base}/"), "audiences": audiences, "tenant": "common", "identityProvider": "AAD"},
            "media": "", "graphAudience": format!("https://graph.{suffix}"), "graph": format!("{base}/"),
            "name_": "Ambient",
            "suffixes": {"keyVaultDns": format!("vault.{suffix}"), "storage": format!("core.{suffix}"), "acrLoginServer": format!("azurecr.{suffix}")},
            "batch": "", "sqlManagement": "", "vmImageAliasDoc": "", "activeDirectoryDataLake": "", "microsoftGraphResourceId": format!("https://graph.{suffix}/"),
            "appInsightsResourceId": "", "appInsightsTelemetryChannelResourceId": "", "attestationResourceId": "", "synapseAnalyticsResourceId": "", "logAnalyticsResourceId": "", "ossrDbmsResourceId": "",
        }]))
        .into_response();
    }
    Json(json!({
        "galleryEndpoint": format!("{base}/"),
        "graphEndpoint": format!("{base}/"),
        "portalEndpoint": format!("{base}/console/"),
        "authentication": {"loginEndpoint": base, "audiences": audiences},
    }))
    .into_response()
}

fn client_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
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
