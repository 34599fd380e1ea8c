//! The router: which path goes to which handler, and the layers every request passes
//! (request id, body limit, panic catcher).

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{arm, directory, hosting, keyvault, sts};

/// The API's routes, with `console` (when given) nested at `/console` inside the same layers.
pub fn router(state: AppState, console: Option<Router>) -> Router {
    let mut routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        // Token service (Entra ID's role).
        .route("/{tenant}/oauth2/v2.0/token", post(sts::token_v2))
        .route("/{tenant}/oauth2/token", post(sts::token_v1))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(sts::openid_configuration_v2))
        .route("/{tenant}/.well-known/openid-configuration", get(sts::openid_configuration_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(sts::keys_v2))
        .route("/{tenant}/discovery/keys", get(sts::keys_v1))
        .route("/common/discovery/instance", get(sts::instance_discovery))
        // Directory (Microsoft Graph's role).
        .route(
            "/v1.0/servicePrincipals",
            get(directory::list_service_principals).post(directory::create_service_principal),
        )
        .route(
            "/v1.0/servicePrincipals/{id}",
            get(directory::get_service_principal).delete(directory::delete_service_principal),
        )
        .route("/v1.0/servicePrincipals/{id}/addPassword", post(directory::add_password))
        .route("/v1.0/servicePrincipals/{id}/removePassword", post(directory::remove_credential))
        .route("/v1.0/servicePrincipals/{id}/addKey", post(directory::add_key))
        .route("/v1.0/servicePrincipals/{id}/removeKey", post(directory::remove_credential))
        .route(
            "/v1.0/servicePrincipals/{id}/ambient.createCertificate",
            post(directory::create_certificate),
        )
        .route("/v1.0/auditLogs/signIns", get(directory::list_sign_ins))
        .route("/v1.0/ambient/signingKeys", get(directory::list_signing_keys))
        .route("/v1.0/ambient/signingKeys/rotate", post(directory::rotate_signing_key))
        // Control plane (Resource Manager's role).
        .route("/subscriptions", any(arm::dispatch))
        .route("/subscriptions/{*rest}", any(arm::dispatch))
        .route("/providers/{*rest}", any(arm::dispatch))
        .route("/tenants", any(arm::dispatch))
        .route("/metadata/endpoints", get(arm::metadata_endpoints))
        // The agents' API.
        .route("/hosting/hosts", get(hosting::list_hosts))
        .route("/hosting/hosts/{name}", get(hosting::get_host).put(hosting::create_host))
        .route("/hosting/hosts/{name}/revoke", post(hosting::revoke_host))
        .route("/hosting/endpoints", get(hosting::resource_endpoints))
        .route("/hosting/enroll", post(hosting::enroll))
        .route("/hosting/renew", post(hosting::renew))
        .route("/hosting/assignments", get(hosting::assignments))
        .route("/hosting/status", post(hosting::status))
        .route("/hosting/token", post(hosting::token));
    if let Some(console) = console {
        routes = routes.nest_service("/console", console);
    }
    routes
        .fallback(not_found)
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(domain::limits::REQUEST_BODY_BYTES_MAX))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(state, vault_hosts))
        .layer(middleware::from_fn(request_id))
}

/// Requests for `{vault}.vault.{suffix}` go to the Key Vault data plane; the rest to the router.
async fn vault_hosts(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|authority| authority.to_string()));
    match host.and_then(|host| keyvault::vault_name_of(&host, &state.dns_suffix)) {
        Some(vault) => {
            let peer = request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0);
            keyvault::handle(state, vault, peer, request).await
        }
        None => next.run(request).await,
    }
}

/// Liveness: the process answers.
async fn healthz() -> Json<api_types::health::HealthStatus> {
    Json(api_types::health::HealthStatus { status: "ok".to_owned(), detail: None, leader: None })
}

/// Readiness: the database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    let backend = state.store.backend();
    match state.store.ping().await {
        Ok(()) => Json(api_types::health::HealthStatus {
            status: "ok".to_owned(),
            detail: Some(format!("database: {backend}")),
            leader: Some(state.leadership.is_leader()),
        })
        .into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(api_types::health::HealthStatus {
                    status: "unavailable".to_owned(),
                    detail: Some(format!("database: {backend} unreachable")),
                    leader: Some(false),
                }),
            )
                .into_response()
        }
    }
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route for {} {}", request.method(), request.uri().path()))
}

/// Gives every response an `x-ms-request-id`, echoing the caller's `x-ms-client-request-id`
/// as `x-ms-correlation-request-id` when present, as ARM does.
async fn request_id(request: Request, next: Next) -> Response {
    let client_request_id = request.headers().get("x-ms-client-request-id").cloned();
    let mut response = next.run(request).await;
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-ms-request-id", value);
    }
    let correlation = client_request_id.or_else(|| HeaderValue::from_str(&id).ok());
    if let Some(value) = correlation {
        response.headers_mut().insert("x-ms-correlation-request-id", value);
    }
    response
}
