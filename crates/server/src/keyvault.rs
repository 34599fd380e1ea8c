//! The Key Vault secrets data plane, served for host names `{vault}.vault.{dns_suffix}`.
//!
//! Order of checks, as Key Vault does them: a request without a bearer token gets the 401
//! challenge before anything else; then the token (signature, audience, issuer, expiry); then
//! the RBAC data action on the vault (or the secret); then the operation. Wire shapes and codes:
//! `protocols/05-keyvault.md`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::ResourceId;
use rbac::ActionKind;
use serde_json::{Map, Value, json};
use store::{Page, ResourceFilter, ResourceRecord};

use crate::auth::{Caller, CallerGrants};
use crate::state::AppState;

const ACTION_PREFIX: &str = "Microsoft.KeyVault/vaults/secrets/";
const PAGE_DEFAULT: usize = 25;

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

/// Handles one data-plane request for vault `name`.
pub async fn handle(
    state: AppState,
    name: String,
    peer: Option<SocketAddr>,
    request: Request,
) -> Response {
    let _ = peer;
    let writes = request.method() != Method::GET;
    let response = match serve(&state, &name, request).await {
        Ok(response) => response,
        Err(error) => error.render(&state),
    };
    if writes {
        // Again after the write: a read racing with it may have cached the old rows.
        state.caches.secrets.clear();
    }
    response
}

async fn serve(state: &AppState, name: &str, request: Request) -> Result<Response, KvError> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let has_token = headers.get(header::AUTHORIZATION).is_some();
    if !has_token {
        return Err(KvError {
            challenge: true,
            ..KvError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
            )
        });
    }
    let caller = authenticate(state, headers)?;
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
    let param = |name: &str| {
        query.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
    };
    let api_version = param("api-version")
        .ok_or_else(|| KvError::bad("The 'api-version' query parameter is missing."))?;
    let vault_row = find_vault(state, name).await?;
    let vault_id =
        ResourceId::parse(&vault_row.id).map_err(|_| KvError::bad("corrupt vault id"))?;
    let properties: Value = serde_json::from_str::<Value>(&vault_row.properties)
        .unwrap_or_default()["properties"]
        .clone();
    let policy = vault::Policy {
        soft_delete: properties["enableSoftDelete"].as_bool().unwrap_or(true),
        retention_days: properties["softDeleteRetentionInDays"].as_i64().unwrap_or(90),
    };
    // Derived from the public URL now, never from what a row once stored.
    let vault_uri =
        format!("https://{}.{}/", vault_row.name.to_ascii_lowercase(), state.vault_host);
    let body = axum::body::to_bytes(body, domain::limits::REQUEST_BODY_BYTES_MAX)
        .await
        .map_err(|_| KvError::bad("The request body is too large."))?;
    let json_body = || -> Result<Value, KvError> {
        if body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&body)
            .map_err(|error| KvError::bad(format!("The request body is not valid JSON: {error}")))
    };
    let segments: Vec<String> =
        parts.uri.path().trim_matches('/').split('/').map(|segment| segment.to_owned()).collect();
    let grants = CallerGrants::load(state, &caller)
        .await
        .map_err(|error| KvError::new(error.status, "InternalServerError", error.message))?;
    let vault = vault::Vault::new(
        state.store.as_ref(),
        &state.master_key,
        vault_id.key(),
        policy,
        state.clock.now(),
    );
    let ctx = Ctx {
        state,
        grants: &grants,
        caller: &caller,
        vault_id: &vault_id,
        vault_uri: &vault_uri,
        vault_row: &vault_row,
        api_version: &api_version,
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = parts.method.clone();
    if method != Method::GET {
        state.caches.secrets.clear();
    }
    let maxresults = match param("maxresults") {
        Some(text) => match text.parse::<usize>() {
            Ok(value) if (1..=domain::limits::VAULT_PAGE_SIZE_MAX).contains(&value) => value,
            _ => return Err(KvError::bad("maxresults must be between 1 and 25.")),
        },
        None => PAGE_DEFAULT,
    };
    let skip = param("$skiptoken");
    match (method, segments.as_slice()) {
        (Method::PUT, ["secrets", secret]) => {
            ctx.authorize("setSecret/action", Some(secret))?;
            let body = json_body()?;
            let value = body["value"]
                .as_str()
                .ok_or_else(|| KvError::bad("The request body must contain a string 'value'."))?;
            let attributes = attributes(&body["attributes"])?;
            let view = vault
                .set(
                    secret,
                    value,
                    body["contentType"].as_str().map(str::to_owned),
                    &body["tags"],
                    &attributes,
                )
                .await?;
            Ok(Json(ctx.bundle(&view, false)).into_response())
        }
        (Method::GET, ["secrets"]) => {
            ctx.authorize("readMetadata/action", None)?;
            let views = vault.list(skip.as_deref(), maxresults as i64).await?;
            let next = (views.len() == maxresults)
                .then(|| views.last().map(|view| view.name.to_ascii_lowercase()))
                .flatten();
            let items: Vec<Value> = views.iter().map(|view| ctx.item(view, false, false)).collect();
            Ok(Json(ctx.page(items, "secrets", next, maxresults)).into_response())
        }
        (Method::GET, ["secrets", secret, "versions"]) => {
            ctx.authorize("readMetadata/action", Some(secret))?;
            let views = vault.versions(secret).await?;
            let start: usize = skip.as_deref().and_then(|token| token.parse().ok()).unwrap_or(0);
            let page: Vec<Value> = views
                .iter()
                .skip(start)
                .take(maxresults)
                .map(|view| ctx.item(view, true, false))
                .collect();
            let next = (start + maxresults < views.len()).then(|| (start + maxresults).to_string());
            Ok(Json(ctx.page(page, &format!("secrets/{secret}/versions"), next, maxresults))
                .into_response())
        }
        (Method::GET, ["secrets", secret]) | (Method::GET, ["secrets", secret, ""]) => {
            ctx.authorize("getSecret/action", Some(secret))?;
            // The hot path: the rows come from a short-lived cache that local writes clear.
            let key = (vault_id.key().to_owned(), secret.to_ascii_lowercase());
            let rows = match state.caches.secrets.get(&key) {
                Some(rows) => rows,
                None => {
                    let rows = std::sync::Arc::new(vault.load(secret, None).await?);
                    state.caches.secrets.insert(key, rows.clone());
                    rows
                }
            };
            let view = vault.reveal(&rows.0, &rows.1)?;
            Ok(Json(ctx.bundle(&view, false)).into_response())
        }

        (Method::GET, ["secrets", secret, version]) => {
            ctx.authorize("getSecret/action", Some(secret))?;
            let view = vault.get(secret, Some(version)).await?;
            Ok(Json(ctx.bundle(&view, false)).into_response())
        }
        (Method::PATCH, ["secrets", secret])
        | (Method::PATCH, ["secrets", secret, ""])
        | (Method::PATCH, ["secrets", secret, _]) => {
            ctx.authorize("update/action", Some(secret))?;
            let version = segments.get(2).copied().filter(|version| !version.is_empty());
            let body = json_body()?;
            let content_type =
                body.get("contentType").map(|value| value.as_str().map(str::to_owned));
            let tags = body.get("tags");
            let view = vault
                .update(secret, version, content_type, tags, &attributes(&body["attributes"])?)
                .await?;
            Ok(Json(ctx.bundle(&view, false)).into_response())
        }
        (Method::DELETE, ["secrets", secret]) => {
            ctx.authorize("delete", Some(secret))?;
            let view = vault.delete(secret).await?;
            Ok(Json(ctx.bundle(&view, policy.soft_delete)).into_response())
        }
        (Method::POST, ["secrets", secret, "backup"]) => {
            ctx.authorize("backup/action", Some(secret))?;
            Ok(Json(json!({"value": vault.backup(secret).await?})).into_response())
        }
        (Method::POST, ["secrets", "restore"]) => {
            ctx.authorize("restore/action", None)?;
            let body = json_body()?;
            let blob = body["value"]
                .as_str()
                .ok_or_else(|| KvError::bad("The request body must contain the backup 'value'."))?;
            let view = vault.restore(blob).await?;
            Ok(Json(ctx.bundle(&view, false)).into_response())
        }
        (Method::GET, ["deletedsecrets"]) => {
            ctx.authorize("readMetadata/action", None)?;
            let views = vault.list_deleted(skip.as_deref(), maxresults as i64).await?;
            let next = (views.len() == maxresults)
                .then(|| views.last().map(|view| view.name.to_ascii_lowercase()))
                .flatten();
            let items: Vec<Value> = views.iter().map(|view| ctx.item(view, false, true)).collect();
            Ok(Json(ctx.page(items, "deletedsecrets", next, maxresults)).into_response())
        }
        (Method::GET, ["deletedsecrets", secret]) => {
            ctx.authorize("readMetadata/action", Some(secret))?;
            let view = vault.get_deleted(secret).await?;
            Ok(Json(ctx.bundle(&view, true)).into_response())
        }
        (Method::POST, ["deletedsecrets", secret, "recover"]) => {
            ctx.authorize("recover/action", Some(secret))?;
            let view = vault.recover(secret).await?;
            Ok(Json(ctx.bundle(&view, false)).into_response())
        }
        (Method::DELETE, ["deletedsecrets", secret]) => {
            ctx.authorize("purge/action", Some(secret))?;
            vault.purge(secret).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(KvError::new(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!("The operation {} {} is not supported.", parts.method, parts.uri.path()),
        )),
    }
}

struct Ctx<'a> {
    state: &'a AppState,
    grants: &'a CallerGrants,
    caller: &'a Caller,
    vault_id: &'a ResourceId,
    vault_uri: &'a str,
    vault_row: &'a ResourceRecord,
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
                    self.vault_row.name,
                    self.vault_row.location
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
    let resource = vault_resource(state);
    let audiences = [resource, "https://vault.azure.net".to_owned()];
    crate::auth::authenticate(state, headers, &audiences).map_err(|error| KvError {
        challenge: true,
        ..KvError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("AKV10022: {}", error.message),
        )
    })
}

async fn find_vault(
    state: &AppState,
    name: &str,
) -> Result<std::sync::Arc<ResourceRecord>, KvError> {
    if let Some(row) = state.caches.vaults.get(&name.to_ascii_lowercase()) {
        return Ok(row);
    }
    let row = std::sync::Arc::new(find_vault_row(state, name).await?);
    state.caches.vaults.insert(name.to_ascii_lowercase(), row.clone());
    Ok(row)
}

async fn find_vault_row(state: &AppState, name: &str) -> Result<ResourceRecord, KvError> {
    let filter = ResourceFilter {
        type_key: Some("microsoft.keyvault/vaults".to_owned()),
        ..ResourceFilter::default()
    };
    let mut page = Page::first(500);
    loop {
        let rows = state
            .store
            .list_resources(&filter, &page)
            .await
            .map_err(|error| KvError::from(vault::Error::Store(error)))?;
        let Some(last) = rows.last() else { break };
        page.after_key = Some(last.key.clone());
        if let Some(row) = rows.into_iter().find(|row| row.name.eq_ignore_ascii_case(name)) {
            return Ok(row);
        }
    }
    Err(KvError::new(
        StatusCode::NOT_FOUND,
        "VaultNotFound",
        format!("The vault '{name}' does not exist."),
    ))
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
