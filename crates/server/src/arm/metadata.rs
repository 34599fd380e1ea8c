//! `GET /metadata/endpoints`: this cloud's endpoints, as clients discover them. Three forms:
//!
//! - one cloud object for `az cloud register --endpoint-resource-manager URL` (api-version
//!   `2022-09-01` and other recent versions; the form Azure Stack Hub serves);
//! - a list of clouds for `ARM_CLOUD_METADATA_URL` (api-version `2019-05-01`);
//! - the old `2015-01-01` shape (no api-version, or an older one).
//!
//! Every URL derives from the public URL. Graph is served by this origin too, so
//! `microsoftGraphResourceId` is the origin: az uses it as both Graph's base URL and its token
//! audience. Keys without a value are left out rather than sent empty (an empty
//! `vmImageAliasDoc` breaks `az vm create`).

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::AppState;

/// The cloud's name in `az cloud register` output (not one of az's built-in names, which
/// would bring their hard-coded endpoints).
const CLOUD_NAME: &str = "Ambient";

/// The management audiences the metadata advertises, the first being the one az asks for.
pub fn advertised_management_audiences(state: &AppState) -> Vec<String> {
    vec![
        "https://management.core.windows.net/".to_owned(),
        format!("https://management.{}/", state.dns_suffix),
        "https://management.azure.com/".to_owned(),
    ]
}

/// The Graph resource id (and base URL) the metadata advertises: this origin.
pub fn graph_resource_id(state: &AppState) -> String {
    format!("{}/", state.base_url)
}

fn cloud(state: &AppState) -> Value {
    let base = state.base_url.to_string();
    let suffix = state.dns_suffix.to_string();
    json!({
        "name": CLOUD_NAME,
        "portal": format!("{base}/console/"),
        "resourceManager": format!("{base}/"),
        "authentication": {
            "loginEndpoint": base,
            "audiences": advertised_management_audiences(state),
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "graphAudience": graph_resource_id(state),
        "microsoftGraphResourceId": graph_resource_id(state),
        "vmImageAliasDoc": format!("{base}/metadata/vm-image-aliases.json"),
        "suffixes": {
            "keyVaultDns": state.vault_host.to_string(),
            "storage": format!("core.{suffix}"),
            "acrLoginServer": format!("azurecr.{suffix}"),
        },
    })
}

pub async fn endpoints(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let api_version = query
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("api-version"))
        .map(|(_, value)| value.as_str())
        .unwrap_or("2015-01-01");
    if api_version == "2019-05-01" {
        return Json(json!([cloud(&state)])).into_response();
    }
    if api_version > "2019-05-01" {
        return Json(cloud(&state)).into_response();
    }
    let base = state.base_url.to_string();
    Json(json!({
        "galleryEndpoint": format!("{base}/"),
        "graphEndpoint": format!("{base}/"),
        "portalEndpoint": format!("{base}/console/"),
        "authentication": {"loginEndpoint": base, "audiences": advertised_management_audiences(&state)},
    }))
    .into_response()
}
