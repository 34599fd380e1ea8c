//! The router: which path goes to which handler. Requests for `{vault}.vault.{suffix}` go to
//! the Key Vault router, control-plane paths (matched case-insensitively, as ARM does) to the
//! ARM dispatcher, everything else by path; then `layers::apply` wraps the whole in the layers
//! every surface shares.

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceExt as _;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{arm, directory, hosting, keyvault, layers, sts};

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
        .route(
            "/v1.0/applications",
            get(directory::applications::list).post(directory::applications::create),
        )
        .route(
            "/v1.0/applications/{id}",
            get(directory::applications::get).patch(directory::applications::update),
        )
        .route("/v1.0/applications/{id}/addPassword", post(directory::add_password))
        .route("/v1.0/applications/{id}/removePassword", post(directory::remove_credential))
        .route("/v1.0/directoryObjects/getByIds", post(directory::get_by_ids))
        .route("/v1.0/users", get(directory::list_users))
        .route("/v1.0/auditLogs/signIns", get(directory::list_sign_ins))
        .route("/v1.0/ambient/signingKeys", get(directory::list_signing_keys))
        .route("/v1.0/ambient/signingKeys/rotate", post(directory::rotate_signing_key))
        // Cloud metadata (the control plane's routes are matched in `fallback`).
        .route("/metadata/endpoints", get(arm::metadata::endpoints))
        .route("/metadata/vm-image-aliases.json", get(arm::catalog_aliases))
        // The agents' API.
        .route("/hosting/hosts", get(hosting::list_hosts))
        .route("/hosting/hosts/{name}", get(hosting::get_host).put(hosting::create_host))
        .route("/hosting/hosts/{name}/revoke", post(hosting::revoke_host))
        .route(
            "/hosting/hosts/{name}/faults",
            get(hosting::get_host_faults)
                .put(hosting::put_host_faults)
                .delete(hosting::delete_host_faults),
        )
        .route(
            "/hosting/faults",
            get(hosting::get_resource_faults)
                .put(hosting::put_resource_faults)
                .delete(hosting::delete_resource_faults),
        )
        .route("/hosting/endpoints", get(hosting::resource_endpoints))
        .route("/hosting/enroll", post(hosting::enroll))
        .route("/hosting/renew", post(hosting::renew))
        .route("/hosting/assignments", get(hosting::assignments))
        .route("/hosting/status", post(hosting::status))
        .route("/hosting/token", post(hosting::token));
    if let Some(console) = console {
        routes = routes.nest_service("/console", console);
    }
    let vaults = keyvault::router().with_state(state.clone());
    let app = routes.fallback(fallback).with_state(state.clone());
    // The host-name split sits inside the shared layers, so Key Vault gets them too.
    let split = Router::new().fallback_service(tower::service_fn(move |request: Request| {
        let (vaults, app, state) = (vaults.clone(), app.clone(), state.clone());
        async move {
            let host = request
                .headers()
                .get(axum::http::header::HOST)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
                .or_else(|| request.uri().authority().map(|authority| authority.to_string()));
            match host.and_then(|host| keyvault::vault_name_of(&host, &state.dns_suffix)) {
                Some(vault) => {
                    let mut request = request;
                    request.extensions_mut().insert(keyvault::VaultName(vault));
                    vaults.oneshot(request).await
                }
                None => app.oneshot(request).await,
            }
        }
    }));
    layers::apply(split)
}

/// Control-plane paths in any case; anything else is a 404.
async fn fallback(state: State<AppState>, request: Request) -> Response {
    if arm::is_arm_path(request.uri().path()) {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .copied()
            .unwrap_or(axum::extract::ConnectInfo(std::net::SocketAddr::from(([0, 0, 0, 0], 0))));
        return arm::dispatch(state, peer, request).await;
    }
    not_found(request).await.into_response()
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
