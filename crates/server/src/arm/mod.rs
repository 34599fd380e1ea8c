//! The control plane (Resource Manager's role): subscriptions, resource groups and resources
//! (`resources`), role definitions and assignments (`rbac`), the activity log and the one way
//! every write is committed with its events (`activity`), template deployments
//! (`deployments`), and the metadata clients discover the cloud from (`metadata`). `route`
//! classifies paths.
//!
//! Every request carries a bearer token for a management audience and an `api-version`, and is
//! authorized with RBAC against its target scope; lists show only what the caller may read.
//! This module adapts HTTP to `resources` (typed model, pure planner) and back.

mod activity;
mod catalog;
mod deployments;
#[cfg(test)]
mod hostile_bodies;
pub mod metadata;
mod rbac;
mod resources;
mod route;

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use crate::arm::catalog::alias_document_handler as catalog_aliases;
use crate::arm::route::ArmPath;
use crate::auth::{Caller, CallerGrants, authenticate, management_audiences};
use crate::error::ApiError;
use crate::layers::RequestIds;
use crate::state::AppState;

/// Everything about one ARM request that handlers share.
pub struct Context {
    pub state: AppState,
    pub grants: CallerGrants,
    pub method: Method,
    /// The path without a trailing slash (`/` for the root).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub ids: RequestIds,
    pub client_ip: String,
    pub body: Bytes,
    /// Whether a `Failed` activity event was recorded for this request already (by
    /// `activity::commit`); `dispatch` records one for any other failed write.
    pub failure_recorded: std::sync::atomic::AtomicBool,
}

impl Context {
    pub fn caller(&self) -> &Caller {
        self.grants.caller()
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON; an empty body is `{}`. ARM's JSON reader also takes the comments
    /// and unquoted top-level keys `az deployment` sends (see `deployments::lenient_json`).
    pub fn json_body(&self) -> Result<Value, ApiError> {
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
    pub fn next_link(&self, token: &str) -> String {
        let api_version = self.query("api-version").unwrap_or_default();
        format!(
            "{}{}?api-version={}&$skiptoken={}",
            self.state.base_url,
            self.path,
            encode(api_version),
            encode(token)
        )
    }

    /// 405 unless the request uses `method`.
    pub fn only(&self, method: Method) -> Result<(), ApiError> {
        if self.method == method || (method == Method::GET && self.method == Method::HEAD) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("The method '{}' is not allowed on '{}'.", self.method, self.path),
            ))
        }
    }

    /// The error for a path no operation matches.
    pub fn no_route(&self) -> ApiError {
        ApiError::bad_request(
            "InvalidResourceType",
            format!("No resource type matches the path '{}'.", self.path),
        )
    }

    /// A context for planning: now, the tenant, random GUIDs.
    pub fn with_plan_context<T>(
        &self,
        run: impl FnOnce(&::resources::plan::Context<'_>) -> T,
    ) -> T {
        let new_guid = domain::Guid::new_random;
        run(&::resources::plan::Context {
            now: self.state.clock.now(),
            tenant_id: &self.state.deployment.tenant_id,
            new_guid: &new_guid,
        })
    }
}

/// Whether a path belongs to the control plane (compared case-insensitively, as ARM does).
pub fn is_arm_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower == "/subscriptions"
        || lower.starts_with("/subscriptions/")
        || lower == "/tenants"
        || lower.starts_with("/providers/")
}

/// Every control-plane request: authenticate, check the api-version, load the caller's grants,
/// then route.
pub async fn dispatch(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    let result = async {
        let caller = authenticate(&state, &parts.headers, management_audiences(&state))?;
        let api_version = query.iter().find(|(key, _)| key.eq_ignore_ascii_case("api-version"));
        match api_version {
            None => {
                return Err(ApiError::bad_request(
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                ));
            }
            Some((_, version)) if !is_api_version(version) => {
                return Err(ApiError::bad_request(
                    "InvalidApiVersionParameter",
                    format!(
                        "The api-version '{version}' is invalid. The supported versions are dates like '2024-11-01' or '2025-05-31-preview'."
                    ),
                ));
            }
            Some(_) => {}
        }
        let grants = CallerGrants::load(&state, &caller).await?;
        let context = Context {
            state: state.clone(),
            grants,
            method: parts.method.clone(),
            path: if path.is_empty() { "/".to_owned() } else { path.clone() },
            query,
            ids: RequestIds::current(),
            client_ip: peer.ip().to_string(),
            body,
            failure_recorded: Default::default(),
        };
        let result = route(&context).await;
        // Every refused or failed write leaves a `Failed` event (issue 17), also those refused
        // before they reach `activity::commit` (a malformed body, a refused deployment).
        if let Err(error) = &result
            && is_write(&context.method)
            && !context.failure_recorded.load(std::sync::atomic::Ordering::Relaxed)
        {
            let (target, action) = write_target(&context);
            activity::record_failure(&context, &target, &action, error).await;
        }
        result
    }
    .await;
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn route(context: &Context) -> Result<Response, ApiError> {
    if context.method == Method::POST
        && let Some(answer) = catalog::post_action(context).await
    {
        return answer;
    }
    let path = route::classify(&context.path)
        .map_err(|error| ApiError::bad_request("InvalidResourceId", error))?;
    match path {
        ArmPath::Subscriptions => {
            context.only(Method::GET)?;
            resources::list_subscriptions(context).await
        }
        ArmPath::Tenants => {
            context.only(Method::GET)?;
            let tenant = &context.state.deployment.tenant_id;
            Ok(Json(json!({"value": [{"id": format!("/tenants/{tenant}"), "tenantId": tenant, "tenantCategory": "Home", "displayName": "Default Directory"}]})).into_response())
        }
        ArmPath::Subscription(id) => {
            context.only(Method::GET)?;
            resources::get_subscription(context, &id).await
        }
        ArmPath::Groups { subscription } => {
            context.only(Method::GET)?;
            resources::list_groups(context, &subscription).await
        }
        ArmPath::Group(id) | ArmPath::Resource(id) => resources::operate(context, &id).await,
        ArmPath::Resources { subscription, group } => {
            context.only(Method::GET)?;
            resources::list_resources(context, &subscription, group.as_deref(), None, None).await
        }
        ArmPath::Collection { subscription, group, type_name, parent } => {
            context.only(Method::GET)?;
            resources::list_resources(
                context,
                &subscription,
                group.as_deref(),
                Some(&type_name),
                parent.as_ref(),
            )
            .await
        }
        ArmPath::RoleAssignments(scope) => {
            context.only(Method::GET)?;
            rbac::list_assignments(context, &scope).await
        }
        ArmPath::RoleAssignment(scope, name) => rbac::assignment(context, &scope, &name).await,
        ArmPath::RoleDefinitions(scope) => {
            context.only(Method::GET)?;
            rbac::list_definitions(context, &scope).await
        }
        ArmPath::RoleDefinition(scope, name) => rbac::definition(context, &scope, &name).await,
        ArmPath::Permissions(scope) => {
            context.only(Method::GET)?;
            rbac::permissions(context, &scope).await
        }
        ArmPath::ActivityLog(scope) => {
            context.only(Method::GET)?;
            activity::list(context, &scope).await
        }
        ArmPath::SystemIdentity(resource) => {
            context.only(Method::GET)?;
            resources::system_identity(context, &resource).await
        }
        ArmPath::Deployments { scope, name, action } => {
            deployments::operate(context, &scope, name.as_deref(), action.as_deref()).await
        }
        ArmPath::ImageCatalog { subscription, location, segments } => {
            context.only(Method::GET)?;
            catalog::images(context, &subscription, &location, &segments)
        }
        ArmPath::Provider { subscription, namespace, rest } => {
            catalog::provider(context, subscription.as_deref(), &namespace, &rest)
        }
        ArmPath::Unknown => Err(context.no_route()),
    }
}

/// Whether `method` asks for a change (and so is recorded in the activity log).
fn is_write(method: &Method) -> bool {
    matches!(*method, Method::PUT | Method::PATCH | Method::POST | Method::DELETE)
}

/// The scope and action a failed write is recorded under: the resource and its type's action
/// where the path names one, else the subscription (or the root) and a generic action.
fn write_target(context: &Context) -> (domain::ResourceId, String) {
    let verb = match context.method {
        Method::DELETE => "delete",
        Method::POST => "action",
        _ => "write",
    };
    let generic = || {
        let subscription = context
            .path
            .split('/')
            .nth(2)
            .filter(|_| context.path.to_ascii_lowercase().starts_with("/subscriptions/"))
            .and_then(|id| domain::ResourceId::subscription(id).ok())
            .unwrap_or_else(domain::ResourceId::root);
        (subscription, format!("Microsoft.Resources/{verb}"))
    };
    match route::classify(&context.path) {
        Ok(ArmPath::Group(id) | ArmPath::Resource(id)) => match resources::action_namespace(&id) {
            Ok(namespace) => (id, format!("{namespace}/{verb}")),
            Err(_) => (id, format!("Microsoft.Resources/{verb}")),
        },
        Ok(ArmPath::Deployments { scope, name, action }) => {
            let target = name
                .and_then(|name| {
                    domain::ResourceId::parse(&format!(
                        "{scope}/providers/Microsoft.Resources/deployments/{name}"
                    ))
                    .ok()
                })
                .unwrap_or(scope);
            let action = match action {
                Some(action) => format!(
                    "Microsoft.Resources/deployments/{}/action",
                    issuer::bounded_text(&action)
                ),
                None => format!("Microsoft.Resources/deployments/{verb}"),
            };
            (target, action)
        }
        Ok(ArmPath::RoleAssignment(scope, _)) => {
            (scope, format!("Microsoft.Authorization/roleAssignments/{verb}"))
        }
        Ok(ArmPath::RoleDefinition(scope, _)) => {
            (scope, format!("Microsoft.Authorization/roleDefinitions/{verb}"))
        }
        _ => generic(),
    }
}

/// ARM api-versions: a date, optionally with a suffix (`2025-05-31-preview`, `2015-08-31-PREVIEW`),
/// or Key Vault's `7.4` style that some ARM clients also send.
pub fn is_api_version(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 10 || bytes.len() > 40 {
        return false;
    }
    let date = bytes[..10].iter().enumerate().all(|(at, byte)| match at {
        4 | 7 => *byte == b'-',
        _ => byte.is_ascii_digit(),
    });
    let suffix_ok = bytes.len() == 10
        || (bytes[10] == b'-'
            && bytes.len() > 11
            && text[11..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    date && suffix_ok
}

/// Converts a `resources` error to ARM's error shape.
pub fn from_resources(error: ::resources::Error) -> ApiError {
    match error {
        ::resources::Error::BadRequest { code, message } => {
            ApiError::new(StatusCode::BAD_REQUEST, code, message)
        }
        ::resources::Error::NotFound { code, message } => {
            ApiError::new(StatusCode::NOT_FOUND, code, message)
        }
        ::resources::Error::Conflict(message) => {
            ApiError::new(StatusCode::CONFLICT, "Conflict", message)
        }
        ::resources::Error::ConflictWithCode { code, message } => {
            ApiError::new(StatusCode::CONFLICT, code, message)
        }
        ::resources::Error::Corrupt(message) => ApiError::internal(message),
        ::resources::Error::Store(error) => ApiError::from(error),
    }
}

pub fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_dates_with_optional_suffixes() {
        for good in ["2024-11-01", "2025-05-31-preview", "2015-08-31-PREVIEW", "2022-12-01"] {
            assert!(is_api_version(good), "{good}");
        }
        for bad in ["garbage", "", "2024-1-01", "2024-11-01x", "2024-11-01-", "2024-11-01-a b"] {
            assert!(!is_api_version(bad), "{bad}");
        }
    }
}
