//! The token service (Entra ID's role): client-credential grants on the v1 and v2 token
//! endpoints, OIDC discovery, JWKS and instance discovery, with errors in Entra's shape.
//!
//! Wire formats: `protocols/03-sts.md`. An unknown client and a wrong credential look alike to
//! the caller (same status, error and AADSTS code) and cost the same work. Every issuance and
//! refusal lands in the sign-in log, bounded and aggregated (`issuer::SignInLog`).
//!
//! Abuse bounds (issue 17): a body over [`TOKEN_REQUEST_BODY_BYTES_MAX`] or a `client_id` that
//! is not a GUID is refused before any lookup; a request may use one client authentication
//! method only (RFC 6749 §2.3); failed requests are counted per source address and failed
//! client authentications per client id (`throttle`), and past the limit the endpoint answers
//! 429 with `Retry-After` (AADSTS50196) until the window ends.

mod federation;
#[cfg(test)]
mod tests;
mod throttle;

pub use crate::sts::throttle::Throttle;

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::directory::{ClientEntry, PrincipalKind};
use crate::state::AppState;

pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest lifetime a client assertion may claim (Entra accepts long-lived assertions;
/// a day bounds the replay cache).
const ASSERTION_LIFETIME_SECS_MAX: i64 = 24 * 3600;
/// Tenant path segments: GUIDs or names of `[A-Za-z0-9.-]`.
const TENANT_CHARS_MAX: usize = 256;
/// Largest token request body: a client assertion (at most `crypto::jws::TOKEN_BYTES_MAX`)
/// with room for the other parameters.
pub const TOKEN_REQUEST_BODY_BYTES_MAX: usize = crypto::jws::TOKEN_BYTES_MAX + 16 * 1024;
/// Entra's code for a malformed request.
const MALFORMED_REQUEST_CODE: u32 = 9002313;

const _: () = assert!(TOKEN_REQUEST_BODY_BYTES_MAX <= domain::limits::REQUEST_BODY_BYTES_MAX);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    V1,
    V2,
}

/// A refusal in Entra's terms.
#[derive(Debug)]
pub struct OAuthFailure {
    pub status: StatusCode,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    /// `Retry-After` of a throttled request.
    pub retry_after_secs: Option<i64>,
}

impl OAuthFailure {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> Self {
        OAuthFailure { status, error, code, message: message.into(), retry_after_secs: None }
    }

    /// A store failure: 503 `temporarily_unavailable` (with `Retry-After`) when the database
    /// cannot be reached, so clients retry; otherwise a generic 500. The detail goes to the log.
    pub fn from_store(error: store::Error, what: &str) -> Self {
        if matches!(error, store::Error::Unavailable(_)) {
            tracing::warn!(%error, what, "database unavailable");
            return OAuthFailure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                50001,
                "The service is temporarily unavailable. Retry the request.",
            );
        }
        tracing::error!(%error, what, "store failure");
        OAuthFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            "There was an error issuing a token.",
        )
    }

    pub fn bad_request(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        OAuthFailure::new(StatusCode::BAD_REQUEST, error, code, message)
    }

    fn missing(parameter: &str) -> Self {
        OAuthFailure::bad_request(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    /// The answer for a wrong secret and for an unknown client alike. `client_id` is a GUID
    /// (checked before any credential).
    fn invalid_secret(client_id: &str) -> Self {
        OAuthFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    /// The answer for a bad assertion signature and for an unknown client alike.
    fn invalid_assertion(client_id: &str) -> Self {
        OAuthFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "Client assertion failed signature validation for app '{client_id}', or no matching certificate is registered."
            ),
        )
    }

    /// Renders the body with trace and correlation ids and a timestamp.
    pub fn render(&self, correlation_id: &str, now: domain::UnixTime, base_url: &str) -> Response {
        let trace_id = domain::Guid::new_random().to_string();
        let timestamp = crate::time_format::entra_timestamp(now);
        let body = api_types::oauth::OAuthError {
            error: self.error.to_owned(),
            error_description: format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.message
            ),
            error_codes: vec![self.code],
            timestamp,
            trace_id,
            correlation_id: correlation_id.to_owned(),
            error_uri: Some(format!("{base_url}/error?code={}", self.code)),
        };
        let mut response =
            (self.status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(crate::error::RETRY_AFTER_SECS),
            );
        }
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = header::HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }

    /// 429 for a caller past its failures' limit, as Entra throttles a client that repeats a
    /// failing request (AADSTS50196), with `Retry-After`.
    fn throttled(retry_after_secs: i64, what: &str) -> Self {
        OAuthFailure {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..OAuthFailure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                50196,
                format!(
                    "The server terminated an operation because it encountered a client request loop: too many failed requests from this {what}. Retry after {} seconds.",
                    retry_after_secs.max(1)
                ),
            )
        }
    }

    /// A body this endpoint will not read: too large, or not readable.
    fn unreadable_body(status: StatusCode) -> Self {
        OAuthFailure::new(
            if status.is_client_error() { status } else { StatusCode::BAD_REQUEST },
            "invalid_request",
            MALFORMED_REQUEST_CODE,
            format!(
                "Invalid request. The request body must be application/x-www-form-urlencoded of at most {TOKEN_REQUEST_BODY_BYTES_MAX} bytes."
            ),
        )
    }
}

/// What the sign-in log learns about a request as it is handled.
#[derive(Default)]
struct SignInDraft {
    principal_type: Option<&'static str>,
    principal_id: Option<String>,
    app_id: Option<String>,
    display_name: Option<String>,
    credential_type: Option<&'static str>,
    resource: Option<String>,
}

pub async fn token_v2(
    state: State<AppState>,
    tenant: Path<String>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    token(state, tenant, peer, headers, body, Endpoint::V2).await
}

pub async fn token_v1(
    state: State<AppState>,
    tenant: Path<String>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    token(state, tenant, peer, headers, body, Endpoint::V1).await
}

async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
) -> Response {
    let correlation_id = headers
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            value.len() <= 64
                && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| domain::Guid::new_random().to_string());
    let mut draft = SignInDraft::default();
    let address = throttle::address_key(peer.ip());
    let result = match state.throttle.retry_after(&address, state.clock.now()) {
        // A throttled address is answered before any other work.
        Some(secs) => Err(OAuthFailure::throttled(secs, "address")),
        None => match body {
            Ok(body) if body.len() <= TOKEN_REQUEST_BODY_BYTES_MAX => {
                grant(&state, &tenant, &headers, &body, endpoint, &mut draft).await
            }
            Ok(_) => Err(OAuthFailure::unreadable_body(StatusCode::PAYLOAD_TOO_LARGE)),
            Err(rejection) => Err(OAuthFailure::unreadable_body(rejection.status())),
        },
    };
    let now = state.clock.now();
    let (success, error_code, failure_reason) = match &result {
        Ok(_) => (true, None, None),
        Err(failure) => (false, Some(failure.code), Some(failure.message.clone())),
    };
    if let Err(failure) = &result
        && failure.status.is_client_error()
        && failure.status != StatusCode::TOO_MANY_REQUESTS
    {
        state.throttle.failed(&address, now);
        if failure.status == StatusCode::UNAUTHORIZED
            && let Some(client) = draft.app_id.as_deref()
        {
            state.throttle.failed(&throttle::client_key(client), now);
        }
    }
    state
        .sign_in_log
        .record(issuer::SignInEvent {
            id: domain::Guid::new_random().to_string(),
            created: now,
            tenant_id: state.deployment.tenant_id.clone(),
            principal_id: draft.principal_id,
            app_id: draft.app_id,
            principal_display_name: draft.display_name,
            principal_type: draft.principal_type.unwrap_or("ServicePrincipal").to_owned(),
            credential_type: draft.credential_type.unwrap_or("unknown").to_owned(),
            resource: draft.resource,
            success,
            error_code,
            failure_reason,
            client_ip: Some(peer.ip().to_string()),
            correlation_id: Some(correlation_id.clone()),
            host_id: None,
            compute_resource_id: None,
            endpoint: Some("token".to_owned()),
        })
        .await;
    match result {
        Ok(response) => response,
        Err(failure) => {
            tracing::info!(code = failure.code, error = failure.error, correlation = %correlation_id, "token request refused");
            failure.render(&correlation_id, now, &state.base_url)
        }
    }
}

/// The grant itself; fills `draft` as facts become known.
async fn grant(
    state: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: Endpoint,
    draft: &mut SignInDraft,
) -> Result<Response, OAuthFailure> {
    resolve_tenant(state, tenant)?;
    let form = Form::parse(body)?;
    let basic = basic_credentials(headers);
    let grant_type = form.get("grant_type").ok_or_else(|| OAuthFailure::missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(OAuthFailure::bad_request(
            "unsupported_grant_type",
            70003,
            format!(
                "The app requested an unsupported grant type '{}'.",
                issuer::bounded_text(grant_type)
            ),
        ));
    }
    let form_secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    // RFC 6749 §2.3: one client authentication method per request.
    let methods = [form_secret.is_some(), assertion.is_some(), basic.is_some()];
    if methods.iter().filter(|used| **used).count() > 1 {
        return Err(OAuthFailure::bad_request(
            "invalid_request",
            MALFORMED_REQUEST_CODE,
            "Invalid request. The request uses more than one client authentication method (client_secret, client_assertion, HTTP Basic); use one.",
        ));
    }
    let client_id = form
        .get("client_id")
        .map(str::to_owned)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| OAuthFailure::missing("client_id"))?;
    // Application ids are GUIDs: anything else is refused before any lookup, so no cache or
    // log holds it (the sign-in log keeps a marked preview).
    draft.app_id = Some(client_id.clone());
    let client_id = match client_id.parse::<domain::Guid>() {
        Ok(guid) if guid.to_string().eq_ignore_ascii_case(&client_id) => client_id,
        _ => {
            return Err(OAuthFailure::bad_request(
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{}' was not found in the directory '{}'. Application identifiers are GUIDs.",
                    issuer::bounded_text(&client_id.chars().take(64).collect::<String>()),
                    state.deployment.tenant_id
                ),
            ));
        }
    };
    if let Some(secs) =
        state.throttle.retry_after(&throttle::client_key(&client_id), state.clock.now())
    {
        return Err(OAuthFailure::throttled(secs, "client"));
    }
    let resource = canonical_resource(state, &requested_resource(&form, endpoint)?);
    draft.resource = Some(resource.clone());
    if resource.chars().count() > domain::limits::AUDIENCE_CHARS_MAX {
        return Err(OAuthFailure::bad_request(
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {}... was not found in the tenant: resource identifiers are at most {} characters.",
                resource.chars().take(64).collect::<String>(),
                domain::limits::AUDIENCE_CHARS_MAX
            ),
        ));
    }

    let entry = state
        .directory
        .client(&client_id)
        .await
        .map_err(|error| OAuthFailure::from_store(error, "client lookup"))?;
    let now = state.clock.now();
    let mut federated_identity = None;
    let credential = if let Some(assertion) = assertion {
        draft.credential_type = Some("clientCertificate");
        let assertion_type = form.get("client_assertion_type").unwrap_or_default();
        if assertion_type != CLIENT_ASSERTION_TYPE {
            return Err(OAuthFailure::bad_request(
                "invalid_request",
                50027,
                format!(
                    "Invalid client_assertion_type '{}'; expected '{CLIENT_ASSERTION_TYPE}'.",
                    issuer::bounded_text(assertion_type)
                ),
            ));
        }
        if entry.as_ref().is_some_and(|entry| entry.kind == PrincipalKind::ManagedIdentity) {
            draft.credential_type = Some("federatedCredential");
            draft.principal_type = Some("ManagedIdentity");
            let identity =
                federation::check(state, entry.as_deref(), &client_id, assertion.trim(), now)
                    .await?;
            federated_identity = Some(identity);
            issuer::CredentialKind::FederatedAssertion
        } else {
            check_assertion(state, entry.as_deref(), &client_id, assertion.trim(), tenant, now)
                .await?;
            issuer::CredentialKind::ClientCertificate
        }
    } else {
        draft.credential_type = Some("clientSecret");
        let secret = form_secret
            .map(str::to_owned)
            .or_else(|| basic.map(|(_, secret)| secret))
            .ok_or_else(|| OAuthFailure::missing("client_assertion' or 'client_secret"))?;
        check_secret(state, entry.as_deref(), &client_id, &secret, now)?;
        issuer::CredentialKind::ClientSecret
    };
    let entry = entry.ok_or_else(|| OAuthFailure::invalid_secret(&client_id))?;
    draft.principal_id = Some(entry.object_id.clone());
    draft.display_name = Some(entry.display_name.clone());
    if !entry.enabled {
        return Err(OAuthFailure::bad_request(
            "unauthorized_client",
            7000112,
            format!("Application '{client_id}' is disabled."),
        ));
    }
    let version = match state.directory.accepts_v2(&resource).await {
        true => issuer::TokenVersion::V2,
        false => issuer::TokenVersion::V1,
    };
    let issued = state
        .issuer
        .issue(&issuer::TokenRequest {
            object_id: entry.object_id.clone(),
            app_id: entry.app_id.clone(),
            audience: resource.clone(),
            version,
            credential,
            managed_identity_resource_id: federated_identity,
            compute_resource_id: None,
            lifetime_secs: None,
        })
        .map_err(|error| {
            tracing::error!(%error, "token signing failed");
            OAuthFailure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                50000,
                "There was an error issuing a token.",
            )
        })?;
    let body = match endpoint {
        Endpoint::V2 => json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "ext_expires_in": issued.expires_in,
            "access_token": issued.access_token,
        }),
        Endpoint::V1 => json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in.to_string(),
            "ext_expires_in": issued.expires_in.to_string(),
            "expires_on": issued.expires_on.to_string(),
            "not_before": issued.not_before.to_string(),
            "resource": resource,
            "access_token": issued.access_token,
        }),
    };
    Ok(([(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")], Json(body))
        .into_response())
}

/// Accepts this deployment's tenant id, and `organizations` / `common`, which resolve to it
/// (there is one tenant, so the client identifies it, as Entra does for single-tenant apps).
fn resolve_tenant(state: &AppState, tenant: &str) -> Result<(), OAuthFailure> {
    if tenant.is_empty()
        || tenant.len() > TENANT_CHARS_MAX
        || !tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(OAuthFailure::bad_request(
            "invalid_request",
            900023,
            format!(
                "Specified tenant identifier '{}' is neither a valid DNS name, nor a valid external domain.",
                tenant.chars().take(64).collect::<String>()
            ),
        ));
    }
    if tenant.eq_ignore_ascii_case(&state.deployment.tenant_id)
        || tenant.eq_ignore_ascii_case("organizations")
        || tenant.eq_ignore_ascii_case("common")
    {
        Ok(())
    } else {
        Err(OAuthFailure::bad_request(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ))
    }
}

/// The audience a resource gets, as Entra maps scopes to app id URIs: Resource Manager's URIs
/// end in `/` (`https://management.azure.com/.default` gives `aud` `https://management.azure.com/`).
fn canonical_resource(state: &AppState, resource: &str) -> String {
    let with_slash = [
        "https://management.azure.com".to_owned(),
        "https://management.core.windows.net".to_owned(),
        format!("https://management.{}", state.dns_suffix),
    ];
    if with_slash.iter().any(|uri| uri.eq_ignore_ascii_case(resource)) {
        format!("{resource}/")
    } else {
        resource.to_owned()
    }
}

fn requested_resource(form: &Form, endpoint: Endpoint) -> Result<String, OAuthFailure> {
    match endpoint {
        Endpoint::V1 => {
            let resource = form.get("resource").ok_or_else(|| OAuthFailure::missing("resource"))?;
            Ok(resource.to_owned())
        }
        Endpoint::V2 => {
            let scope = form.get("scope").ok_or_else(|| OAuthFailure::missing("scope"))?;
            let scopes: Vec<&str> = scope.split_whitespace().collect();
            match scopes.as_slice() {
                [single] if single.ends_with("/.default") && single.len() > "/.default".len() => {
                    Ok(single.trim_end_matches("/.default").to_owned())
                }
                _ => Err(OAuthFailure::bad_request(
                    "invalid_scope",
                    70011,
                    format!(
                        "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {} is not valid. Client credential flows must have one scope value with /.default suffixed to the resource identifier (application ID URI).",
                        issuer::bounded_text(scope)
                    ),
                )),
            }
        }
    }
}

fn check_secret(
    state: &AppState,
    entry: Option<&ClientEntry>,
    client_id: &str,
    secret: &str,
    now: domain::UnixTime,
) -> Result<(), OAuthFailure> {
    let Some(entry) = entry.filter(|entry| entry.kind == PrincipalKind::ServicePrincipal) else {
        // Do the same work as for a known client so timing does not tell them apart.
        let _ = state.hasher.verify(secret.as_bytes(), &[0u8; 32]);
        return Err(OAuthFailure::invalid_secret(client_id));
    };
    let mut matched_expired = false;
    for credential in &entry.secrets {
        if state.hasher.verify(secret.as_bytes(), &credential.hash) {
            if credential.expires_at > now.millis() {
                return Ok(());
            }
            matched_expired = true;
        }
    }
    if matched_expired {
        return Err(OAuthFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{client_id}' are expired. Create new keys for your app, or consider using certificate credentials for added security."
            ),
        ));
    }
    Err(OAuthFailure::invalid_secret(client_id))
}

async fn check_assertion(
    state: &AppState,
    entry: Option<&ClientEntry>,
    client_id: &str,
    assertion: &str,
    tenant: &str,
    now: domain::UnixTime,
) -> Result<(), OAuthFailure> {
    let malformed = |detail: &str| {
        OAuthFailure::bad_request("invalid_request", 50027, format!("Invalid JWT token. {detail}"))
    };
    let header = crypto::jws::decode_header(assertion)
        .map_err(|_| malformed("The client assertion is not a well-formed JWT."))?;
    let Some(entry) = entry.filter(|entry| entry.kind == PrincipalKind::ServicePrincipal) else {
        return Err(OAuthFailure::invalid_assertion(client_id));
    };
    let certificate = entry.certificates.iter().find(|certificate| {
        header
            .x5t
            .as_deref()
            .is_some_and(|x5t| crypto::jws::thumbprint_matches(x5t, &certificate.x5t_sha1))
            || header
                .x5t_s256
                .as_deref()
                .is_some_and(|x5t| crypto::jws::thumbprint_matches(x5t, &certificate.x5t_sha256))
            || header
                .kid
                .as_deref()
                .is_some_and(|kid| crypto::jws::thumbprint_matches(kid, &certificate.x5t_sha1))
    });
    let Some(certificate) = certificate else {
        return Err(OAuthFailure::invalid_assertion(client_id));
    };
    let verified = crypto::jws::verify(
        assertion,
        &[crypto::jws::Algorithm::RS256, crypto::jws::Algorithm::PS256],
        &certificate.public_key,
    )
    .map_err(|_| OAuthFailure::invalid_assertion(client_id))?;
    let claims: serde_json::Value =
        verified.claims().map_err(|_| malformed("The client assertion payload is not JSON."))?;
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    // MSAL writes NumericDate values as floats (`time.time()`), so accept any JSON number.
    let number = |name: &str| {
        claims
            .get(name)
            .and_then(|value| value.as_i64().or_else(|| value.as_f64().map(|float| float as i64)))
    };
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(OAuthFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700021,
            "The client assertion's 'iss' and 'sub' must both be the client id.",
        ));
    }
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => audience_is_token_endpoint(state, aud, tenant),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(serde_json::Value::as_str)
            .any(|aud| audience_is_token_endpoint(state, aud, tenant)),
        _ => false,
    };
    if !audience_ok {
        return Err(OAuthFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700016,
            format!(
                "The audience of the client assertion must be this tenant's token endpoint ({}/{}/oauth2/v2.0/token).",
                state.base_url, state.deployment.tenant_id
            ),
        ));
    }
    let leeway = domain::limits::CLOCK_LEEWAY_SECS;
    let exp = number("exp").ok_or_else(|| malformed("The client assertion has no 'exp' claim."))?;
    let out_of_range = exp + leeway < now.secs()
        || exp - now.secs() > ASSERTION_LIFETIME_SECS_MAX
        || number("nbf").is_some_and(|nbf| nbf - leeway > now.secs());
    if out_of_range {
        return Err(OAuthFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let jti = text("jti").ok_or_else(|| malformed("The client assertion has no 'jti' claim."))?;
    let fresh = state
        .store
        .record_assertion_use(&format!("{client_id}/{jti}"), (exp + leeway) * 1000, now.millis())
        .await
        .map_err(|error| OAuthFailure::from_store(error, "assertion replay cache"))?;
    if !fresh {
        return Err(OAuthFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700025,
            "The client assertion has already been used (its 'jti' was replayed).",
        ));
    }
    Ok(())
}

/// The v2 or v1 token endpoint of this tenant, by id or by the name the request used.
fn audience_is_token_endpoint(state: &AppState, audience: &str, tenant: &str) -> bool {
    let audience = audience.trim_end_matches('/');
    [state.deployment.tenant_id.as_str(), tenant].iter().any(|name| {
        audience.eq_ignore_ascii_case(&format!("{}/{name}/oauth2/v2.0/token", state.base_url))
            || audience.eq_ignore_ascii_case(&format!("{}/{name}/oauth2/token", state.base_url))
    })
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |part: &str| {
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

/// A parsed `application/x-www-form-urlencoded` body.
struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    fn parse(body: &[u8]) -> Result<Form, OAuthFailure> {
        if std::str::from_utf8(body).is_err() {
            return Err(OAuthFailure::bad_request(
                "invalid_request",
                900144,
                "The request body must be application/x-www-form-urlencoded UTF-8.",
            ));
        }
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        Ok(Form { pairs })
    }

    /// The first non-empty value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
}

// --- Discovery, keys, instance discovery ---------------------------------------------------

pub async fn openid_configuration_v2(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Response {
    discovery(&state, &tenant, true)
}

pub async fn openid_configuration_v1(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Response {
    discovery(&state, &tenant, false)
}

fn discovery(state: &AppState, tenant: &str, v2: bool) -> Response {
    let now = state.clock.now();
    let correlation = domain::Guid::new_random().to_string();
    let tenant_name = match resolve_tenant(state, tenant) {
        Ok(())
            if tenant.eq_ignore_ascii_case("common")
                || tenant.eq_ignore_ascii_case("organizations") =>
        {
            tenant.to_ascii_lowercase()
        }
        Ok(()) => state.deployment.tenant_id.clone(),
        Err(failure) => return failure.render(&correlation, now, &state.base_url),
    };
    let base = &state.base_url;
    let multi = tenant_name == "common" || tenant_name == "organizations";
    let issuer_tenant = if multi { "{tenantid}".to_owned() } else { tenant_name.clone() };
    let body = if v2 {
        json!({
            "token_endpoint": format!("{base}/{tenant_name}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tenant_name}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{issuer_tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/{tenant_name}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tenant_name}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/{tenant_name}/oauth2/v2.0/logout"),
            "tenant_region_scope": null,
            "cloud_instance_name": state.dns_suffix.as_ref(),
            "cloud_graph_host_name": format!("graph.{}", state.dns_suffix),
            "msgraph_host": format!("graph.{}", state.dns_suffix),
            "rbac_url": base.as_ref(),
        })
    } else {
        json!({
            "token_endpoint": format!("{base}/{tenant_name}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tenant_name}/discovery/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": format!("{base}/{issuer_tenant}/"),
            "authorization_endpoint": format!("{base}/{tenant_name}/oauth2/authorize"),
            "end_session_endpoint": format!("{base}/{tenant_name}/oauth2/logout"),
            "cloud_instance_name": state.dns_suffix.as_ref(),
        })
    };
    Json(body).into_response()
}

pub async fn keys_v2(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    keys(&state, &tenant, true)
}

pub async fn keys_v1(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    keys(&state, &tenant, false)
}

fn keys(state: &AppState, tenant: &str, v2: bool) -> Response {
    if let Err(failure) = resolve_tenant(state, tenant) {
        return failure.render(
            &domain::Guid::new_random().to_string(),
            state.clock.now(),
            &state.base_url,
        );
    }
    ([(header::CACHE_CONTROL, "max-age=300")], Json(state.issuer.jwks(v2))).into_response()
}

#[derive(serde::Deserialize)]
pub struct InstanceQuery {
    authorization_endpoint: Option<String>,
}

/// MSAL's instance discovery, answered for this host so a client that asks is told to use it.
pub async fn instance_discovery(
    State(state): State<AppState>,
    Query(query): Query<InstanceQuery>,
) -> Response {
    let host = state.base_url.trim_start_matches("https://").to_owned();
    let tenant = query
        .authorization_endpoint
        .as_deref()
        .and_then(|endpoint| endpoint.split('/').nth(3).map(str::to_owned))
        .unwrap_or_else(|| "common".to_owned());
    Json(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", state.base_url),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }))
    .into_response()
}
