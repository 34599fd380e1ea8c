//! The Key Vault secrets data plane, served for host names `{vault}.vault.{dns_suffix}`: an
//! axum [`router`] inside the same layers as every other surface (request ids, panic catching,
//! body limit). The host-name split (`http.rs`) hands requests here with the vault's name in a
//! [`VaultName`] extension.
//!
//! Order of checks, as Key Vault does them: a request without a bearer token gets the 401
//! challenge before anything else (and before its body is read); then the token (signature,
//! audience, issuer, expiry) and the api-version; then the RBAC data action on the vault (or
//! the secret); then the operation. Wire shapes and codes: `protocols/05-keyvault.md`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::ResourceId;
use rbac::ActionKind;
use resources::Resource;
use serde_json::{Map, Value, json};
use store::ResourceFilter;

use crate::auth::{Caller, CallerGrants};
use crate::state::AppState;

const ACTION_PREFIX: &str = "Microsoft.KeyVault/vaults/secrets/";
const PAGE_DEFAULT: usize = 25;

/// The vault a request is for, from its host name.
#[derive(Clone, Debug)]
pub struct VaultName(pub String);

/// The data plane's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list_secrets))
        .route("/secrets/", get(list_secrets))
        .route("/secrets/restore", post(restore))
        .route(
            "/secrets/{name}",
            get(get_secret).put(set_secret).patch(update_secret).delete(delete_secret),
        )
        .route("/secrets/{name}/", get(get_secret).patch(update_secret))
        .route("/secrets/{name}/versions", get(list_versions))
        .route("/secrets/{name}/backup", post(backup))
        .route("/secrets/{name}/{version}", get(get_version).patch(update_version))
        .route("/deletedsecrets", get(list_deleted))
        .route("/deletedsecrets/{name}", get(get_deleted).delete(purge))
        .route("/deletedsecrets/{name}/recover", post(recover))
        .fallback(unsupported)
}

/// A Key Vault error body with its status.
struct KvError {
    status: StatusCode,
    code: &'static str,
    inner: Option<&'static str>,
    message: String,
    challenge: bool,
}

impl KvError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        KvError { status, code, inner: None, message: message.into(), challenge: false }
    }

    fn bad(message: impl Into<String>) -> Self {
        KvError::new(StatusCode::BAD_REQUEST, "BadParameter", message)
    }

    fn render(self, state: &AppState) -> Response {
        tracing::debug!(
            status = self.status.as_u16(),
            code = self.code,
            "key vault request refused"
        );
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(inner) = self.inner {
            error["innererror"] = json!({"code": inner});
        }
        let mut response = (self.status, Json(json!({"error": error}))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(crate::error::RETRY_AFTER_SECS),
            );
        }
        if self.challenge
            && let Ok(value) = header::HeaderValue::from_str(&challenge(state))
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<vault::Error> for KvError {
    fn from(error: vault::Error) -> Self {
        let message = error.to_string();
        match error {
            vault::Error::NotFound(_) => {
                KvError::new(StatusCode::NOT_FOUND, "SecretNotFound", message)
            }
            vault::Error::BadParameter(_) => KvError::bad(message),
            vault::Error::Conflict { inner, .. } => KvError {
                inner: Some(inner),
                ..KvError::new(StatusCode::CONFLICT, "Conflict", message)
            },
            vault::Error::Forbidden { inner, .. } => KvError {
                inner: Some(inner),
                ..KvError::new(StatusCode::FORBIDDEN, "Forbidden", message)
            },
            vault::Error::Store(store::Error::Unavailable(error)) => {
                tracing::warn!(%error, "key vault: database unavailable");
                KvError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable. Retry the request.",
                )
            }
            vault::Error::Store(store) => {
                tracing::error!(error = %store, "key vault store failure");
                KvError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "An internal error occurred.",
                )
            }
            vault::Error::Crypto(_) => {
                tracing::error!("a stored secret did not decrypt");
                KvError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "An internal error occurred.",
                )
            }
        }
    }
}

/// The resource Key Vault's challenge names: `https://vault.{suffix}[:port]`.
pub fn vault_resource(state: &AppState) -> String {
    format!("https://{}", state.vault_host)
}

fn challenge(state: &AppState) -> String {
    format!(
        "Bearer authorization=\"{}/{}\", resource=\"{}\"",
        state.base_url,
        state.deployment.tenant_id,
        vault_resource(state)
    )
}

/// The vault name a `Host` header names, if it is `{vault}.vault.{suffix}[:port]`.
pub fn vault_name_of(host: &str, dns_suffix: &str) -> Option<String> {
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }
    });
    let name = host
        .to_ascii_lowercase()
        .strip_suffix(&format!(".vault.{}", dns_suffix.to_ascii_lowercase()))?
        .to_owned();
    (!name.is_empty() && !name.contains('.')).then_some(name)
}

/// A request's error rendered in Key Vault's shape (with the challenge on 401s).
struct Refused(KvError, AppState);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.0.render(&self.1)
    }
}

/// Everything a data-plane handler needs, checked before its body is read: the caller (with
/// the challenge when there is no token), the api-version, the vault and the caller's grants.
struct Kv {
    state: AppState,
    caller: Caller,
    grants: CallerGrants,
    vault: Arc<Resource>,
    vault_uri: String,
    api_version: String,
    query: Vec<(String, String)>,
}

impl FromRequestParts<AppState> for Kv {
    type Rejection = Refused;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let refuse = |error: KvError| Refused(error, state.clone());
        if parts.headers.get(header::AUTHORIZATION).is_none() {
            return Err(refuse(KvError {
                challenge: true,
                ..KvError::new(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "AKV10000: Request is missing a Bearer or PoP token.",
                )
            }));
        }
        let caller = authenticate(state, &parts.headers).map_err(refuse)?;
        let query: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect();
        let api_version = query
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("api-version"))
            .map(|(_, value)| value.clone())
            .ok_or_else(|| refuse(KvError::bad("The 'api-version' query parameter is missing.")))?;
        if !is_api_version(&api_version) {
            return Err(refuse(KvError::bad(format!(
                "The specified version ({api_version}) is not recognized. Consider using the latest supported version (2025-07-01)."
            ))));
        }
        let name = parts
            .extensions
            .get::<VaultName>()
            .map(|name| name.0.clone())
            .ok_or_else(|| refuse(KvError::bad("The request is not for a vault.")))?;
        let vault = find_vault(state, &name).await.map_err(refuse)?;
        let vault_uri =
            format!("https://{}.{}/", vault.name.to_ascii_lowercase(), state.vault_host);
        let grants = CallerGrants::load(state, &caller).await.map_err(|error| {
            refuse(KvError::new(
                error.status,
                if error.status == StatusCode::SERVICE_UNAVAILABLE {
                    "ServiceUnavailable"
                } else {
                    "InternalServerError"
                },
                error.message,
            ))
        })?;
        Ok(Kv { state: state.clone(), caller, grants, vault, vault_uri, api_version, query })
    }
}

impl Kv {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn store(&self) -> vault::Vault<'_> {
        let (soft_delete, retention_days) = resources::plan::vault_policy(&self.vault);
        vault::Vault::new(
            self.state.store.as_ref(),
            &self.state.master_key,
            self.vault.key(),
            vault::Policy { soft_delete, retention_days },
            self.state.clock.now(),
        )
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            state: &self.state,
            grants: &self.grants,
            caller: &self.caller,
            vault_id: &self.vault.id,
            vault_uri: &self.vault_uri,
            vault: &self.vault,
            api_version: &self.api_version,
        }
    }

    fn maxresults(&self) -> Result<usize, KvError> {
        match self.param("maxresults") {
            Some(text) => match text.parse::<usize>() {
                Ok(value) if (1..=domain::limits::VAULT_PAGE_SIZE_MAX).contains(&value) => {
                    Ok(value)
                }
                _ => Err(KvError::bad("maxresults must be between 1 and 25.")),
            },
            None => Ok(PAGE_DEFAULT),
        }
    }

    fn refused(&self, error: impl Into<KvError>) -> Refused {
        Refused(error.into(), self.state.clone())
    }

    /// Local writes drop the cached secret rows (also after the write: a read racing with it
    /// may have cached the old rows).
    fn wrote(&self) {
        self.state.caches.secrets.clear();
    }
}

/// Key Vault api-versions: `7.4`, `2025-07-01`, `2026-04-01`, optionally `-preview`.
pub fn is_api_version(text: &str) -> bool {
    let numeric = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    let base = text.strip_suffix("-preview").unwrap_or(text);
    match base.split('.').collect::<Vec<_>>().as_slice() {
        [major, minor] => numeric(major) && numeric(minor),
        _ => crate::arm::is_api_version(text),
    }
}

fn json_body(body: &Bytes) -> Result<Value, KvError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|error| KvError::bad(format!("The request body is not valid JSON: {error}")))
}

type KvResult = Result<Response, Refused>;

async fn set_secret(kv: Kv, Path(name): Path<String>, body: Bytes) -> KvResult {
    kv.ctx().authorize("setSecret/action", Some(&name)).map_err(|e| kv.refused(e))?;
    kv.wrote();
    let body = json_body(&body).map_err(|e| kv.refused(e))?;
    let value = body["value"].as_str().ok_or_else(|| {
        kv.refused(KvError::bad("The request body must contain a string 'value'."))
    })?;
    let attributes = attributes(&body["attributes"]).map_err(|e| kv.refused(e))?;
    let view = kv
        .store()
        .set(
            &name,
            value,
            body["contentType"].as_str().map(str::to_owned),
            &body["tags"],
            &attributes,
        )
        .await
        .map_err(|e| kv.refused(e))?;
    kv.wrote();
    Ok(Json(kv.ctx().bundle(&view, false)).into_response())
}

async fn list_secrets(kv: Kv) -> KvResult {
    kv.ctx().authorize("readMetadata/action", None).map_err(|e| kv.refused(e))?;
    let maxresults = kv.maxresults().map_err(|e| kv.refused(e))?;
    let views = kv
        .store()
        .list(kv.param("$skiptoken"), maxresults as i64)
        .await
        .map_err(|e| kv.refused(e))?;
    let next = (views.len() == maxresults)
        .then(|| views.last().map(|view| view.name.to_ascii_lowercase()))
        .flatten();
    let ctx = kv.ctx();
    let items: Vec<Value> = views.iter().map(|view| ctx.item(view, false, false)).collect();
    Ok(Json(ctx.page(items, "secrets", next, maxresults)).into_response())
}

async fn list_versions(kv: Kv, Path(name): Path<String>) -> KvResult {
    kv.ctx().authorize("readMetadata/action", Some(&name)).map_err(|e| kv.refused(e))?;
    let maxresults = kv.maxresults().map_err(|e| kv.refused(e))?;
    let views = kv.store().versions(&name).await.map_err(|e| kv.refused(e))?;
    let start: usize = kv.param("$skiptoken").and_then(|token| token.parse().ok()).unwrap_or(0);
    let ctx = kv.ctx();
    let page: Vec<Value> =
        views.iter().skip(start).take(maxresults).map(|view| ctx.item(view, true, false)).collect();
    let next = (start + maxresults < views.len()).then(|| (start + maxresults).to_string());
    Ok(Json(ctx.page(page, &format!("secrets/{name}/versions"), next, maxresults)).into_response())
}

/// The hot path: the rows come from a short-lived cache that local writes clear.
async fn get_secret(kv: Kv, Path(name): Path<String>) -> KvResult {
    kv.ctx().authorize("getSecret/action", Some(&name)).map_err(|e| kv.refused(e))?;
    let key = (kv.vault.key().to_owned(), name.to_ascii_lowercase());
    let now = kv.state.clock.now();
    let store = kv.store();
    let rows = match kv.state.caches.secrets.get(&key, now) {
        Some(rows) => rows,
        None => {
            let rows = Arc::new(store.load(&name, None).await.map_err(|e| kv.refused(e))?);
            kv.state.caches.secrets.insert(key, rows.clone(), now);
            rows
        }
    };
    let view = store.reveal(&rows.0, &rows.1).map_err(|e| kv.refused(e))?;
    Ok(Json(kv.ctx().bundle(&view, false)).into_response())
}

async fn get_version(kv: Kv, Path((name, version)): Path<(String, String)>) -> KvResult {
    kv.ctx().authorize("getSecret/action", Some(&name)).map_err(|e| kv.refused(e))?;
    let view = kv.store().get(&name, Some(&version)).await.map_err(|e| kv.refused(e))?;
    Ok(Json(kv.ctx().bundle(&view, false)).into_response())
}

async fn update_secret(kv: Kv, Path(name): Path<String>, body: Bytes) -> KvResult {
    update(kv, name, None, body).await
}

async fn update_version(
    kv: Kv,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> KvResult {
    update(kv, name, Some(version), body).await
}

async fn update(kv: Kv, name: String, version: Option<String>, body: Bytes) -> KvResult {
    kv.ctx().authorize("update/action", Some(&name)).map_err(|e| kv.refused(e))?;
    kv.wrote();
    let body = json_body(&body).map_err(|e| kv.refused(e))?;
    let content_type = body.get("contentType").map(|value| value.as_str().map(str::to_owned));
    let attributes = attributes(&body["attributes"]).map_err(|e| kv.refused(e))?;
    let view = kv
        .store()
        .update(
            &name,
            version.as_deref().filter(|version| !version.is_empty()),
            content_type,
            body.get("tags"),
            &attributes,
        )
        .await
        .map_err(|e| kv.refused(e))?;
    kv.wrote();
    Ok(Json(kv.ctx().bundle(&view, false)).into_response())
}

async fn delete_secret(kv: Kv, Path(name): Path<String>) -> KvResult {
    kv.ctx().authorize("delete", Some(&name)).map_err(|e| kv.refused(e))?;
    kv.wrote();
    let view = kv.store().delete(&name).await.map_err(|e| kv.refused(e))?;
    kv.wrote();
    let (soft_delete, _) = resources::plan::vault_policy(&kv.vault);
    Ok(Json(kv.ctx().bundle(&view, soft_delete)).into_response())
}

async fn backup(kv: Kv, Path(name): Path<String>) -> KvResult {
    kv.ctx().authorize("backup/action", Some(&name)).map_err(|e| kv.refused(e))?;
    let blob = kv.store().backup(&name).await.map_err(|e| kv.refused(e))?;
    Ok(Json(json!({"value": blob})).into_response())
}

async fn restore(kv: Kv, body: Bytes) -> KvResult {
    kv.ctx().authorize("restore/action", None).map_err(|e| kv.refused(e))?;
    kv.wrote();
    let body = json_body(&body).map_err(|e| kv.refused(e))?;
    let blob = body["value"].as_str().ok_or_else(|| {
        kv.refused(KvError::bad("The request body must contain the backup 'value'."))
    })?;
    let view = kv.store().restore(blob).await.map_err(|e| kv.refused(e))?;
    kv.wrote();
    Ok(Json(kv.ctx().bundle(&view, false)).into_response())
}

async fn list_deleted(kv: Kv) -> KvResult {
    kv.ctx().authorize("readMetadata/action", None).map_err(|e| kv.refused(e))?;
    let maxresults = kv.maxresults().map_err(|e| kv.refused(e))?;
    let views = kv
        .store()
        .list_deleted(kv.param("$skiptoken"), maxresults as i64)
        .await
        .map_err(|e| kv.refused(e))?;
    let next = (views.len() == maxresults)
        .then(|| views.last().map(|view| view.name.to_ascii_lowercase()))
        .flatten();
    let ctx = kv.ctx();
    let items: Vec<Value> = views.iter().map(|view| ctx.item(view, false, true)).collect();
    Ok(Json(ctx.page(items, "deletedsecrets", next, maxresults)).into_response())
}

async fn get_deleted(kv: Kv, Path(name): Path<String>) -> KvResult {
    kv.ctx().authorize("readMetadata/action", Some(&name)).map_err(|e| kv.refused(e))?;
    let view = kv.store().get_deleted(&name).await.map_err(|e| kv.refused(e))?;
    Ok(Json(kv.ctx().bundle(&view, true)).into_response())
}

async fn recover(kv: Kv, Path(name): Path<String>) -> KvResult {
    kv.ctx().authorize("recover/action", Some(&name)).map_err(|e| kv.refused(e))?;
    kv.wrote();
    let view = kv.store().recover(&name).await.map_err(|e| kv.refused(e))?;
    kv.wrote();
    Ok(Json(kv.ctx().bundle(&view, false)).into_response())
}

async fn purge(kv: Kv, Path(name): Path<String>) -> KvResult {
    kv.ctx().authorize("purge/action", Some(&name)).map_err(|e| kv.refused(e))?;
    kv.wrote();
    kv.store().purge(&name).await.map_err(|e| kv.refused(e))?;
    kv.wrote();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Anything else: authenticated first (so an anonymous probe still gets the challenge).
async fn unsupported(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    if headers.get(header::AUTHORIZATION).is_none() {
        return KvError {
            challenge: true,
            ..KvError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
            )
        }
        .render(&state);
    }
    KvError::new(
        StatusCode::BAD_REQUEST,
        "BadParameter",
        format!("The operation {} {} is not supported.", request.method(), request.uri().path()),
    )
    .render(&state)
}

struct Ctx<'a> {
    state: &'a AppState,
    grants: &'a CallerGrants,
    caller: &'a Caller,
    vault_id: &'a ResourceId,
    vault_uri: &'a str,
    vault: &'a Resource,
    api_version: &'a str,
}

impl Ctx<'_> {
    /// The RBAC data action on the secret (inherits from the vault and above).
    fn authorize(&self, action: &str, secret: Option<&str>) -> Result<(), KvError> {
        let action = format!("{ACTION_PREFIX}{action}");
        let target = match secret {
            Some(secret) => ResourceId::parse(&format!("{}/secrets/{secret}", self.vault_id))
                .unwrap_or_else(|_| self.vault_id.clone()),
            None => self.vault_id.clone(),
        };
        if self.grants.allows(&action, ActionKind::Data, &target) {
            return Ok(());
        }
        tracing::info!(caller = %self.caller.object_id, %action, vault = %self.vault_id, "key vault request denied");
        Err(KvError {
            inner: Some("ForbiddenByRbac"),
            ..KvError::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={};oid={};iss={}\r\nAction: '{action}'\r\nResource: '{}'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'\r\nVault: {};location={}",
                    self.caller.app_id,
                    self.caller.object_id,
                    self.state.issuer.issuer_v1(),
                    target.key(),
                    self.vault.name,
                    self.vault.location
                ),
            )
        })
    }

    fn attributes(&self, view: &vault::SecretView) -> Value {
        let mut attributes = json!({
            "enabled": view.enabled,
            "created": view.created,
            "updated": view.updated,
            "recoveryLevel": view.recovery_level,
            "recoverableDays": view.recoverable_days,
        });
        if let Some(nbf) = view.not_before {
            attributes["nbf"] = json!(nbf);
        }
        if let Some(exp) = view.expires {
            attributes["exp"] = json!(exp);
        }
        attributes
    }

    fn tags(view: &vault::SecretView) -> Value {
        serde_json::from_str(&view.tags).unwrap_or_else(|_| json!({}))
    }

    fn deleted_fields(&self, out: &mut Map<String, Value>, view: &vault::SecretView) {
        if let Some((deleted, purge)) = view.deleted {
            out.insert(
                "recoveryId".to_owned(),
                json!(format!("{}deletedsecrets/{}", self.vault_uri, view.name)),
            );
            out.insert("deletedDate".to_owned(), json!(deleted));
            out.insert("scheduledPurgeDate".to_owned(), json!(purge));
        }
    }

    /// A SecretBundle (with `value` when the view carries one) or DeletedSecretBundle.
    fn bundle(&self, view: &vault::SecretView, deleted: bool) -> Value {
        let mut out = Map::new();
        if let Some(value) = &view.value {
            out.insert("value".to_owned(), json!(value.expose()));
        }
        out.insert(
            "id".to_owned(),
            json!(format!("{}secrets/{}/{}", self.vault_uri, view.name, view.version)),
        );
        if let Some(content_type) = &view.content_type {
            out.insert("contentType".to_owned(), json!(content_type));
        }
        out.insert("attributes".to_owned(), self.attributes(view));
        out.insert("tags".to_owned(), Ctx::tags(view));
        if deleted {
            self.deleted_fields(&mut out, view);
        }
        Value::Object(out)
    }

    /// A SecretItem: version-less id in lists of secrets, versioned in lists of versions.
    fn item(&self, view: &vault::SecretView, versioned: bool, deleted: bool) -> Value {
        let id = if versioned {
            format!("{}secrets/{}/{}", self.vault_uri, view.name, view.version)
        } else {
            format!("{}secrets/{}", self.vault_uri, view.name)
        };
        let mut out = Map::new();
        out.insert("id".to_owned(), json!(id));
        out.insert("attributes".to_owned(), self.attributes(view));
        out.insert("tags".to_owned(), Ctx::tags(view));
        if let Some(content_type) = &view.content_type {
            out.insert("contentType".to_owned(), json!(content_type));
        }
        if deleted {
            self.deleted_fields(&mut out, view);
        }
        Value::Object(out)
    }

    fn page(
        &self,
        value: Vec<Value>,
        path: &str,
        next: Option<String>,
        maxresults: usize,
    ) -> Value {
        let next_link = next.map(|token| {
            format!(
                "{}{path}?api-version={}&maxresults={maxresults}&$skiptoken={}",
                self.vault_uri,
                form_urlencoded::byte_serialize(self.api_version.as_bytes()).collect::<String>(),
                form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
            )
        });
        json!({"value": value, "nextLink": next_link})
    }
}

fn attributes(value: &Value) -> Result<vault::AttributesInput, KvError> {
    let number = |field: &str| -> Result<Option<Option<i64>>, KvError> {
        match value.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(number) => number
                .as_i64()
                .map(|n| Some(Some(n)))
                .ok_or_else(|| KvError::bad(format!("attributes.{field} must be Unix seconds"))),
        }
    };
    Ok(vault::AttributesInput {
        enabled: match value.get("enabled") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(enabled)) => Some(*enabled),
            Some(_) => return Err(KvError::bad("attributes.enabled must be a boolean")),
        },
        not_before: number("nbf")?,
        expires: number("exp")?,
    })
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, KvError> {
    crate::auth::authenticate(state, headers, crate::auth::vault_audiences(state)).map_err(
        |error| KvError {
            challenge: true,
            ..KvError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                format!("AKV10022: {}", error.message),
            )
        },
    )
}

/// The vault named `name` (cached briefly, like other hot rows).
async fn find_vault(state: &AppState, name: &str) -> Result<Arc<Resource>, KvError> {
    let key = name.to_ascii_lowercase();
    let now = state.clock.now();
    if let Some(vault) = state.caches.vaults.get(&key, now) {
        return Ok(vault);
    }
    let filter = ResourceFilter {
        type_key: Some(resources::types::VAULT.to_ascii_lowercase()),
        ..ResourceFilter::default()
    };
    let vaults =
        resources::load::all(state.store.as_ref(), &filter).await.map_err(|error| match error {
            resources::Error::Store(error) => KvError::from(vault::Error::Store(error)),
            other => {
                tracing::error!(error = %other, "unreadable vault row");
                KvError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "An internal error occurred.",
                )
            }
        })?;
    let vault = vaults.into_iter().find(|vault| vault.name.eq_ignore_ascii_case(name)).ok_or_else(
        || {
            KvError::new(
                StatusCode::NOT_FOUND,
                "VaultNotFound",
                format!("The vault '{name}' does not exist."),
            )
        },
    )?;
    let vault = Arc::new(vault);
    state.caches.vaults.insert(key, vault.clone(), now);
    Ok(vault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_host_names() {
        assert_eq!(
            vault_name_of("myvault.vault.localhost:8443", "localhost").as_deref(),
            Some("myvault")
        );
        assert_eq!(
            vault_name_of("MyVault.vault.localhost", "localhost").as_deref(),
            Some("myvault")
        );
        assert_eq!(vault_name_of("localhost:8443", "localhost"), None);
        assert_eq!(vault_name_of("vault.localhost", "localhost"), None);
        assert_eq!(vault_name_of("a.b.vault.localhost", "localhost"), None);
    }
}
