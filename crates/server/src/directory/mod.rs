//! The directory: service principals and their credentials, shaped like Microsoft Graph
//! (`/v1.0/servicePrincipals`, `addPassword`, `addKey`), the sign-in log (`/v1.0/auditLogs/
//! signIns`), and signing-key rotation. The token endpoint's view of clients (`clients`: parsed
//! once, cached briefly) lives beside it.
//!
//! Directory operations are authorized at the tenant root scope `/` with the actions
//! `Microsoft.Directory/servicePrincipals/{read,write,delete}`,
//! `Microsoft.Directory/signInLogs/read` and `Microsoft.Directory/signingKeys/rotate/action`.
//! Managed identities appear in the listing but their lifecycle belongs to their resources.

pub mod applications;
mod clients;
mod filter;

pub use crate::directory::clients::{ClientEntry, Directory, PrincipalKind};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use domain::ResourceId;
use rbac::ActionKind;
use serde::Deserialize;
use serde_json::{Value, json};
use store::{CredentialRecord, PrincipalRecord, Write};

use crate::auth::{Caller, authenticate, authorize, graph_audiences};

/// The longest a certificate generated for a service principal is valid.
const CERTIFICATE_VALIDITY_DAYS_MAX: u32 = 3650;
use crate::error::ApiError;
use crate::state::AppState;
use crate::time_format::{parse_rfc3339, rfc3339};

// --- Graph-shaped API -----------------------------------------------------------------------

pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    action: &str,
) -> Result<Caller, ApiError> {
    let caller = authenticate(state, headers, graph_audiences(state))?;
    authorize(state, &caller, action, ActionKind::Control, &ResourceId::root()).await?;
    Ok(caller)
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "$filter")]
    pub(crate) filter: Option<String>,
}

pub async fn list_service_principals(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/read").await?;
    let filter = parse_filter(query.filter.as_deref())?;
    let mut value = Vec::new();
    for principal in state.store.list_principals(None).await? {
        if principal.kind == "User" || !filter.matches(&principal_fields(&principal)) {
            continue;
        }
        let credentials = state.store.list_credentials(&principal.object_id).await?;
        value.push(service_principal_json(&state, &principal, &credentials));
    }
    Ok(Json(json!({"@odata.context": format!("{}/v1.0/$metadata#servicePrincipals", state.base_url), "value": value})).into_response())
}

/// The fields a `$filter` may name on a service principal.
fn principal_fields(principal: &PrincipalRecord) -> Vec<(&'static str, Vec<&str>)> {
    let kind = if principal.kind == "ManagedIdentity" { "ManagedIdentity" } else { "Application" };
    let mut names = vec![principal.app_id.as_str()];
    names.extend(principal.managed_by_key.as_deref());
    vec![
        ("displayname", vec![principal.display_name.as_str()]),
        ("appid", vec![principal.app_id.as_str()]),
        ("id", vec![principal.object_id.as_str()]),
        ("serviceprincipaltype", vec![kind]),
        ("serviceprincipalnames", names),
    ]
}

/// A `$filter`, or Graph's error for one it does not understand.
pub(crate) fn parse_filter(text: Option<&str>) -> Result<filter::Filter, ApiError> {
    match text {
        None => Ok(filter::Filter::default()),
        Some(text) => filter::Filter::parse(text)
            .map_err(|message| ApiError::bad_request("Request_UnsupportedQuery", message)),
    }
}

/// `field eq 'value'`, the one OData filter shape the sign-in log supports.
fn parse_eq_filter(filter: &str) -> Result<(String, String), ApiError> {
    let unsupported = || {
        ApiError::bad_request("Request_UnsupportedQuery", format!("unsupported $filter: {filter}"))
    };
    let (field, rest) = filter.trim().split_once(" eq ").ok_or_else(unsupported)?;
    let value = rest
        .trim()
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .ok_or_else(unsupported)?;
    Ok((field.trim().to_ascii_lowercase(), value.replace("''", "'")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServicePrincipal {
    display_name: Option<String>,
    /// Graph's form: the service principal of an application created before
    /// (`POST /v1.0/applications`). In Ambient an application and its service principal are one
    /// principal, so this answers that principal.
    app_id: Option<String>,
}

pub async fn create_service_principal(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/write").await?;
    let request: CreateServicePrincipal = json_body(&body)?;
    if let Some(app_id) = &request.app_id {
        let principal = state.store.get_principal_by_app_id(&app_id.to_ascii_lowercase()).await?.ok_or_else(|| {
            ApiError::bad_request(
                "Request_BadRequest",
                format!("The appId '{app_id}' of the service principal does not reference a valid application object."),
            )
        })?;
        let credentials = state.store.list_credentials(&principal.object_id).await?;
        return Ok((
            StatusCode::CREATED,
            Json(service_principal_json(&state, &principal, &credentials)),
        )
            .into_response());
    }
    let display_name = request.display_name.as_deref().unwrap_or_default().trim();
    let principal = new_principal(&state, display_name).await?;
    Ok((StatusCode::CREATED, Json(service_principal_json(&state, &principal, &[]))).into_response())
}

/// Creates a service principal (with its application) named `display_name`.
pub(crate) async fn new_principal(
    state: &AppState,
    display_name: &str,
) -> Result<PrincipalRecord, ApiError> {
    if display_name.is_empty() || display_name.len() > 256 {
        return Err(ApiError::bad_request(
            "Request_BadRequest",
            "displayName must be 1 to 256 characters",
        ));
    }
    let principal = PrincipalRecord {
        object_id: domain::Guid::new_random().to_string(),
        tenant_id: state.deployment.tenant_id.clone(),
        kind: "ServicePrincipal".to_owned(),
        app_id: domain::Guid::new_random().to_string(),
        display_name: display_name.to_owned(),
        managed_by_key: None,
        identity_kind: None,
        enabled: true,
        created_at: state.clock.now().millis(),
    };
    state.store.apply(vec![Write::PutPrincipal(principal.clone())]).await?;
    state.changed();
    tracing::info!(app_id = %principal.app_id, "created service principal");
    Ok(principal)
}

/// `POST /v1.0/directoryObjects/getByIds`: the service principals among `ids`, typed as Graph
/// types them (`@odata.type`), for clients that resolve object ids to names and kinds.
pub async fn get_by_ids(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/read").await?;
    let request: Value = json_body(&body)?;
    let ids = request["ids"].as_array().cloned().unwrap_or_default();
    if ids.len() > 1000 {
        return Err(ApiError::bad_request("Request_BadRequest", "at most 1000 ids"));
    }
    let mut value = Vec::new();
    for id in ids.iter().filter_map(Value::as_str) {
        if let Some(principal) = state.store.get_principal(&id.to_ascii_lowercase()).await? {
            let credentials = state.store.list_credentials(&principal.object_id).await?;
            let mut object = service_principal_json(&state, &principal, &credentials);
            object["@odata.type"] = json!("#microsoft.graph.servicePrincipal");
            value.push(object);
        }
    }
    Ok(Json(json!({"@odata.context": format!("{}/v1.0/$metadata#directoryObjects", state.base_url), "value": value})).into_response())
}

/// `GET /v1.0/users`: Ambient has no users, only service principals.
pub async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/read").await?;
    Ok(Json(
        json!({"@odata.context": format!("{}/v1.0/$metadata#users", state.base_url), "value": []}),
    )
    .into_response())
}

pub async fn get_service_principal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/read").await?;
    let principal = find_principal(&state, &id).await?;
    let credentials = state.store.list_credentials(&principal.object_id).await?;
    Ok(Json(service_principal_json(&state, &principal, &credentials)).into_response())
}

pub async fn delete_service_principal(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/delete").await?;
    let principal = find_principal(&state, &id).await?;
    refuse_managed(&principal)?;
    if principal.object_id == state.deployment.admin_object_id {
        return Err(ApiError::bad_request(
            "Request_BadRequest",
            "the bootstrap administrator cannot be deleted",
        ));
    }
    state
        .store
        .apply(vec![Write::DeletePrincipal { object_id: principal.object_id.clone() }])
        .await?;
    state.changed();
    tracing::info!(app_id = %principal.app_id, "deleted service principal");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AddPassword {
    #[serde(default)]
    password_credential: PasswordCredentialInput,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PasswordCredentialInput {
    display_name: Option<String>,
    end_date_time: Option<String>,
}

pub async fn add_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let principal = credential_target(&state, &headers, &id).await?;
    let request: AddPassword = json_body_or_default(&body)?;
    let now = state.clock.now();
    let expires = match request.password_credential.end_date_time.as_deref() {
        Some(text) => parse_rfc3339(text).filter(|end| end > &now).ok_or_else(|| {
            ApiError::bad_request(
                "Request_BadRequest",
                "endDateTime must be an RFC 3339 time in the future",
            )
        })?,
        None => now.plus_secs(domain::limits::CLIENT_SECRET_LIFETIME_SECS_DEFAULT),
    };
    let secret = crypto::random::random_token(domain::limits::CLIENT_SECRET_BYTES);
    let credential = CredentialRecord {
        id: domain::Guid::new_random().to_string(),
        principal_id: principal.object_id.clone(),
        kind: "secret".to_owned(),
        display_name: request.password_credential.display_name.unwrap_or_else(|| "rbac".to_owned()),
        secret_hash: Some(state.hasher.hash(secret.as_bytes()).to_vec()),
        hint: Some(secret.chars().take(3).collect()),
        thumbprint_sha1: None,
        thumbprint_sha256: None,
        certificate_der: None,
        expires_at: expires.millis(),
        created_at: now.millis(),
    };
    state.store.apply(vec![Write::PutCredential(credential.clone())]).await?;
    state.changed();
    let mut body = password_json(&credential);
    body["secretText"] = Value::String(secret);
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveCredential {
    key_id: String,
}

pub async fn remove_credential(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let principal = credential_target(&state, &headers, &id).await?;
    let request: RemoveCredential = json_body(&body)?;
    let credentials = state.store.list_credentials(&principal.object_id).await?;
    if !credentials.iter().any(|credential| credential.id.eq_ignore_ascii_case(&request.key_id)) {
        return Err(ApiError::not_found(format!("no credential with keyId {}", request.key_id)));
    }
    state
        .store
        .apply(vec![Write::DeleteCredential { id: request.key_id.to_ascii_lowercase() }])
        .await?;
    state.changed();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddKey {
    key_credential: KeyCredentialInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyCredentialInput {
    /// Base64 DER (or PEM text) of the public certificate.
    key: String,
    display_name: Option<String>,
}

pub async fn add_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let principal = credential_target(&state, &headers, &id).await?;
    let request: AddKey = json_body(&body)?;
    let bytes = if request.key_credential.key.contains("-----BEGIN") {
        request.key_credential.key.into_bytes()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(request.key_credential.key.trim())
            .map_err(|_| {
                ApiError::bad_request(
                    "Request_BadRequest",
                    "keyCredential.key must be a base64 DER or PEM certificate",
                )
            })?
    };
    let credential =
        certificate_credential(&state, &principal, &bytes, request.key_credential.display_name)?;
    state.store.apply(vec![Write::PutCredential(credential.clone())]).await?;
    state.changed();
    Ok(Json(key_json(&credential)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateCertificate {
    display_name: Option<String>,
    validity_days: Option<u32>,
}

/// Generates an RSA key and a self-signed certificate, registers the certificate, and returns
/// the private key once (Ambient keeps only the certificate).
pub async fn create_certificate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let principal = credential_target(&state, &headers, &id).await?;
    let request: CreateCertificate = json_body_or_default(&body)?;
    let validity_days =
        request.validity_days.unwrap_or(365).clamp(1, CERTIFICATE_VALIDITY_DAYS_MAX);
    let generated = crypto::pki::generate_self_signed_client_certificate(
        &principal.display_name,
        state.clock.now(),
        validity_days,
    )
    .map_err(ApiError::internal)?;
    let credential = certificate_credential(
        &state,
        &principal,
        generated.cert_pem.as_bytes(),
        request.display_name,
    )?;
    state.store.apply(vec![Write::PutCredential(credential.clone())]).await?;
    state.changed();
    let mut body = key_json(&credential);
    body["certificatePem"] = Value::String(generated.cert_pem.clone());
    body["privateKeyPem"] = Value::String(generated.key_pem.to_string());
    Ok(Json(body).into_response())
}

fn certificate_credential(
    state: &AppState,
    principal: &PrincipalRecord,
    pem_or_der: &[u8],
    display_name: Option<String>,
) -> Result<CredentialRecord, ApiError> {
    let bad = |detail: String| {
        ApiError::bad_request(
            "Request_BadRequest",
            format!("the certificate is not usable: {detail}"),
        )
    };
    let der = crypto::pki::certificate_der(pem_or_der).map_err(|error| bad(error.to_string()))?;
    crypto::jws::RsaPublicKey::from_certificate_der(&der)
        .map_err(|error| bad(error.to_string()))?;
    let info = crypto::pki::certificate_info(&der).map_err(|error| bad(error.to_string()))?;
    let now = state.clock.now();
    if info.not_after <= now {
        return Err(bad("it has expired".to_owned()));
    }
    Ok(CredentialRecord {
        id: domain::Guid::new_random().to_string(),
        principal_id: principal.object_id.clone(),
        kind: "certificate".to_owned(),
        display_name: display_name.or(info.subject_cn).unwrap_or_else(|| "certificate".to_owned()),
        secret_hash: None,
        hint: None,
        thumbprint_sha1: Some(info.sha1_thumbprint_b64url),
        thumbprint_sha256: Some(info.sha256_thumbprint_b64url),
        certificate_der: Some(der),
        expires_at: info.not_after.millis(),
        created_at: now.millis(),
    })
}

// --- Sign-in log and signing keys -----------------------------------------------------------

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(rename = "$filter")]
    filter: Option<String>,
    #[serde(rename = "$top")]
    top: Option<i64>,
}

/// `GET /v1.0/auditLogs/signIns?$filter=...&$top=N`. Filters: `appId eq '...'`,
/// `servicePrincipalId eq '...'`, `createdDateTime ge 2024-01-01T00:00:00Z`, joined by `and`.
pub async fn list_sign_ins(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/signInLogs/read").await?;
    let mut principal = None;
    let mut since = None;
    if let Some(filter) = &query.filter {
        for clause in filter.split(" and ") {
            let clause = clause.trim();
            if let Some(text) = clause.strip_prefix("createdDateTime ge ") {
                since = Some(parse_rfc3339(text.trim().trim_matches('\'')).ok_or_else(|| {
                    ApiError::bad_request(
                        "Request_UnsupportedQuery",
                        format!("bad time in $filter: {text}"),
                    )
                })?);
            } else {
                let (field, value) = parse_eq_filter(clause)?;
                match field.as_str() {
                    "appid" | "serviceprincipalid" => principal = Some(value),
                    _ => {
                        return Err(ApiError::bad_request(
                            "Request_UnsupportedQuery",
                            format!("unsupported filter field '{field}'"),
                        ));
                    }
                }
            }
        }
    }
    let limit = query.top.unwrap_or(1000).clamp(1, domain::limits::PAGE_SIZE_MAX as i64);
    let value = issuer::SignInLog::list(
        state.store.as_ref(),
        &state.deployment.tenant_id,
        principal.as_deref(),
        since,
        limit,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(json!({"value": value})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RotateRequest {
    activate_in_seconds: Option<i64>,
}

/// `POST /v1.0/ambient/signingKeys/rotate`: publishes a new signing key now that signs from
/// `activateInSeconds` on (default 0).
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/signingKeys/rotate/action").await?;
    let request: RotateRequest = json_body_or_default(&body)?;
    let activate_in = request.activate_in_seconds.unwrap_or(0);
    if !(0..=30 * 86_400).contains(&activate_in) {
        return Err(ApiError::bad_request(
            "Request_BadRequest",
            "activateInSeconds must be between 0 and 2592000",
        ));
    }
    let rotated = state.issuer.rotate(activate_in).await.map_err(ApiError::internal)?;
    Ok(Json(json!({
        "kid": rotated.kid,
        "signsFrom": rfc3339(rotated.signs_from),
    }))
    .into_response())
}

pub async fn list_signing_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller(&state, &headers, "Microsoft.Directory/servicePrincipals/read").await?;
    Ok(Json(state.issuer.jwks(false)).into_response())
}

// --- Helpers ---------------------------------------------------------------------------------

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(
            "Request_BadRequest",
            format!("the request body is not valid: {error}"),
        )
    })
}

/// A JSON body, or the defaults when the body is empty (Graph allows an empty body here).
fn json_body_or_default<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.is_empty() { Ok(T::default()) } else { json_body(body) }
}

/// The service principal whose credentials a caller with directory write access changes:
/// authorized, found by object id or app id, and not a managed identity.
async fn credential_target(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<PrincipalRecord, ApiError> {
    caller(state, headers, "Microsoft.Directory/servicePrincipals/write").await?;
    let principal = find_principal(state, id).await?;
    refuse_managed(&principal)?;
    Ok(principal)
}

/// By object id or app id.
pub(crate) async fn find_principal(
    state: &AppState,
    id: &str,
) -> Result<PrincipalRecord, ApiError> {
    if let Some(principal) = state.store.get_principal(&id.to_ascii_lowercase()).await? {
        return Ok(principal);
    }
    if let Some(principal) = state.store.get_principal_by_app_id(&id.to_ascii_lowercase()).await? {
        return Ok(principal);
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    ))
}

fn refuse_managed(principal: &PrincipalRecord) -> Result<(), ApiError> {
    if principal.kind == "ManagedIdentity" {
        return Err(ApiError::bad_request(
            "Request_BadRequest",
            "this is a managed identity: its lifecycle and credentials are managed by its resource",
        ));
    }
    Ok(())
}

fn service_principal_json(
    state: &AppState,
    principal: &PrincipalRecord,
    credentials: &[CredentialRecord],
) -> Value {
    let managed = principal.kind == "ManagedIdentity";
    json!({
        "id": principal.object_id,
        "appId": principal.app_id,
        "displayName": principal.display_name,
        "servicePrincipalType": if managed { "ManagedIdentity" } else { "Application" },
        "accountEnabled": principal.enabled,
        "appOwnerOrganizationId": state.deployment.tenant_id,
        "servicePrincipalNames": service_principal_names(principal),
        "alternativeNames": principal.managed_by_key.iter().collect::<Vec<_>>(),
        "createdDateTime": rfc3339(domain::UnixTime::from_millis(principal.created_at)),
        "passwordCredentials": credentials.iter().filter(|c| c.kind == "secret").map(password_json).collect::<Vec<_>>(),
        "keyCredentials": credentials.iter().filter(|c| c.kind == "certificate").map(key_json).collect::<Vec<_>>(),
    })
}

/// The app id, and for a managed identity the resource it belongs to (as Azure lists it).
fn service_principal_names(principal: &PrincipalRecord) -> Vec<String> {
    let mut names = vec![principal.app_id.clone()];
    if let Some(resource) = &principal.managed_by_key {
        names.push(format!("https://identity.azure.net/{resource}"));
    }
    names
}

pub(crate) fn password_json(credential: &CredentialRecord) -> Value {
    json!({
        "keyId": credential.id,
        "displayName": credential.display_name,
        "hint": credential.hint,
        "customKeyIdentifier": null,
        "startDateTime": rfc3339(domain::UnixTime::from_millis(credential.created_at)),
        "endDateTime": rfc3339(domain::UnixTime::from_millis(credential.expires_at)),
    })
}

pub(crate) fn key_json(credential: &CredentialRecord) -> Value {
    json!({
        "keyId": credential.id,
        "displayName": credential.display_name,
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
        "customKeyIdentifier": credential.thumbprint_sha1,
        "startDateTime": rfc3339(domain::UnixTime::from_millis(credential.created_at)),
        "endDateTime": rfc3339(domain::UnixTime::from_millis(credential.expires_at)),
    })
}
