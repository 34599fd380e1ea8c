//! Graph's applications (`/v1.0/applications`), as `az ad sp create-for-rbac` and
//! `az ad app ...` use them. In Ambient an application and its service principal are one
//! principal: the application's object id is its app id, its credentials are the service
//! principal's (so `addPassword` on either works), and `POST /v1.0/servicePrincipals` with its
//! `appId` answers that principal.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{CredentialRecord, PrincipalRecord, Write};

use crate::directory::{
    ListQuery, caller, find_principal, json_body, key_json, new_principal, parse_filter,
    password_json,
};
use crate::error::ApiError;
use crate::state::AppState;
use crate::time_format::rfc3339;

fn application_json(
    state: &AppState,
    principal: &PrincipalRecord,
    credentials: &[CredentialRecord],
) -> Value {
    json!({
        "id": principal.app_id,
        "appId": principal.app_id,
        "displayName": principal.display_name,
        "signInAudience": "AzureADMyOrg",
        "publisherDomain": state.dns_suffix.as_ref(),
        "createdDateTime": rfc3339(domain::UnixTime::from_millis(principal.created_at)),
        "identifierUris": [],
        "passwordCredentials": credentials.iter().filter(|c| c.kind == "secret").map(password_json).collect::<Vec<_>>(),
        "keyCredentials": credentials.iter().filter(|c| c.kind == "certificate").map(key_json).collect::<Vec<_>>(),
    })
}

/// Applications are the service principals that are not managed identities.
async fn application(state: &AppState, id: &str) -> Result<PrincipalRecord, ApiError> {
    let principal = find_principal(state, id).await?;
    if principal.kind != "ServicePrincipal" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        ));
    }
    Ok(principal)
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/read").await?;
    let filter = parse_filter(query.filter.as_deref())?;
    let mut value = Vec::new();
    for principal in state.store.list_principals(Some("ServicePrincipal")).await? {
        let fields = [
            ("displayname", vec![principal.display_name.as_str()]),
            ("appid", vec![principal.app_id.as_str()]),
            ("id", vec![principal.app_id.as_str()]),
        ];
        if !filter.matches(&fields) {
            continue;
        }
        let credentials = state.store.list_credentials(&principal.object_id).await?;
        value.push(application_json(&state, &principal, &credentials));
    }
    Ok(Json(json!({"@odata.context": format!("{}/v1.0/$metadata#applications", state.base_url), "value": value})).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationBody {
    display_name: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/write").await?;
    let request: ApplicationBody = json_body(&body)?;
    let principal =
        new_principal(&state, request.display_name.as_deref().unwrap_or_default().trim()).await?;
    Ok((StatusCode::CREATED, Json(application_json(&state, &principal, &[]))).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/read").await?;
    let principal = application(&state, &id).await?;
    let credentials = state.store.list_credentials(&principal.object_id).await?;
    Ok(Json(application_json(&state, &principal, &credentials)).into_response())
}

/// `PATCH /v1.0/applications/{id}`: a new display name (the only field Ambient keeps).
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/write").await?;
    let mut principal = application(&state, &id).await?;
    let request: ApplicationBody = json_body(&body)?;
    if let Some(name) = request.display_name.map(|name| name.trim().to_owned()) {
        if name.is_empty() || name.len() > 256 {
            return Err(ApiError::bad_request(
                "Request_BadRequest",
                "displayName must be 1 to 256 characters",
            ));
        }
        principal.display_name = name;
        state.store.apply(vec![Write::PutPrincipal(principal)]).await?;
        state.changed();
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
