//! Workload identity federation: a user-assigned identity's client id with a client assertion
//! issued by someone else (a Kubernetes service-account token, another tenant, Ambient itself),
//! accepted when it matches one of the identity's federated identity credentials.
//!
//! Checks, in order: a federated credential whose `issuer` equals the assertion's `iss`, whose
//! `subject` equals its `sub`, and one of whose `audiences` is in its `aud`; then the signature,
//! with Ambient's own keys when the issuer is this tenant's, else with the keys the issuer
//! publishes (OIDC discovery, `jwks_uri`, over HTTPS, cached); then `exp` and `nbf`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::Value;

use crate::directory::ClientEntry;
use crate::state::AppState;
use crate::sts::OAuthFailure;

const JWKS_CACHE_TTL: Duration = Duration::from_secs(300);
const JWKS_CACHE_ENTRIES_MAX: usize = 256;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

type JwksCache = Mutex<HashMap<String, (Instant, crypto::jws::Jwks)>>;

fn no_match() -> OAuthFailure {
    OAuthFailure::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        70021,
        "No matching federated identity record found for presented assertion. Check the issuer, subject and audience of the federated identity credential.",
    )
}

/// Checks a federated assertion for the managed identity `entry`; returns the identity's ARM id.
pub async fn check(
    state: &AppState,
    entry: Option<&ClientEntry>,
    client_id: &str,
    assertion: &str,
    now: domain::UnixTime,
) -> Result<String, OAuthFailure> {
    let entry = entry.ok_or_else(no_match)?;
    let malformed = || {
        OAuthFailure::bad_request(
            "invalid_request",
            50027,
            "Invalid JWT token. The client assertion is not a well-formed JWT.",
        )
    };
    let claims = unverified_claims(assertion).ok_or_else(malformed)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(iss), Some(sub)) = (text("iss"), text("sub")) else { return Err(malformed()) };
    let audiences: Vec<String> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    };
    let principal = state
        .store
        .get_principal(&entry.object_id)
        .await
        .map_err(internal)?
        .ok_or_else(no_match)?;
    let identity_key = principal
        .managed_by_key
        .clone()
        .filter(|_| principal.identity_kind.as_deref() == Some("UserAssigned"))
        .ok_or_else(no_match)?;
    let credentials =
        state.store.list_federated_credentials(&identity_key).await.map_err(internal)?;
    let matched = credentials.iter().find(|credential| {
        let allowed: Vec<String> = serde_json::from_str(&credential.audiences).unwrap_or_default();
        same_issuer(&credential.issuer, &iss)
            && credential.subject == sub
            && allowed.iter().any(|audience| audiences.contains(audience))
    });
    let Some(matched) = matched else {
        tracing::info!(
            client = %client_id,
            iss = %issuer::bounded_text(&iss),
            sub = %issuer::bounded_text(&sub),
            "federated assertion matches no credential"
        );
        return Err(no_match());
    };
    let own = [state.issuer.issuer_v1(), state.issuer.issuer_v2()];
    if own.iter().any(|ours| same_issuer(ours, &iss)) {
        let allowed: Vec<String> = serde_json::from_str(&matched.audiences).unwrap_or_default();
        let options = issuer::ValidationOptions {
            audiences: &allowed,
            issuers: std::slice::from_ref(&iss),
            leeway_secs: domain::limits::CLOCK_LEEWAY_SECS,
            algorithms: &[crypto::jws::Algorithm::RS256],
        };
        return match state.issuer.validate(assertion, &options) {
            Ok(_) => Ok(identity_id(state, &identity_key).await),
            Err(issuer::ValidationError::Expired | issuer::ValidationError::NotYetValid) => {
                Err(time_range())
            }
            Err(error) => {
                tracing::info!(client = %client_id, reason = %error, "federated assertion refused");
                Err(bad_signature())
            }
        };
    }
    let header = crypto::jws::decode_header(assertion).map_err(|_| malformed())?;
    let jwks = external_keys(&iss).await.map_err(|message| {
        tracing::info!(%iss, %message, "could not fetch the issuer's keys");
        OAuthFailure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!("The keys of issuer '{iss}' could not be read: {message}"),
        )
    })?;
    let key = jwks
        .keys
        .iter()
        .find(|key| header.kid.as_deref().is_some_and(|kid| key.kid.as_deref() == Some(kid)))
        .or_else(|| (jwks.keys.len() == 1).then(|| &jwks.keys[0]))
        .ok_or_else(bad_signature)?;
    let public = crypto::jws::RsaPublicKey::from_jwk(key).map_err(|_| bad_signature())?;
    crypto::jws::verify(
        assertion,
        &[crypto::jws::Algorithm::RS256, crypto::jws::Algorithm::PS256],
        &public,
    )
    .map_err(|_| bad_signature())?;
    let leeway = domain::limits::CLOCK_LEEWAY_SECS;
    let number = |name: &str| {
        claims
            .get(name)
            .and_then(|value| value.as_i64().or_else(|| value.as_f64().map(|f| f as i64)))
    };
    let exp = number("exp").ok_or_else(malformed)?;
    if exp + leeway < now.secs() || number("nbf").is_some_and(|nbf| nbf - leeway > now.secs()) {
        return Err(time_range());
    }
    Ok(identity_id(state, &identity_key).await)
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn time_range() -> OAuthFailure {
    OAuthFailure::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700024,
        "Client assertion is not within its valid time range.",
    )
}

fn bad_signature() -> OAuthFailure {
    OAuthFailure::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        700027,
        "Client assertion failed signature validation.",
    )
}

fn internal(error: store::Error) -> OAuthFailure {
    OAuthFailure::from_store(error, "federated credential lookup")
}

/// The identity's id as created (for `xms_mirid`), or its key if the row is gone.
async fn identity_id(state: &AppState, key: &str) -> String {
    match state.store.get_resource(key).await {
        Ok(Some(row)) => row.id,
        _ => key.to_owned(),
    }
}

fn unverified_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    // base64url without padding, as the JWS encoding is (a padded payload is malformed).
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The issuer's published keys, through OIDC discovery, cached for a few minutes.
async fn external_keys(issuer: &str) -> Result<crypto::jws::Jwks, String> {
    static CACHE: OnceLock<JwksCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(entries) = cache.lock()
        && let Some((at, jwks)) = entries.get(issuer)
        && at.elapsed() < JWKS_CACHE_TTL
    {
        return Ok(jwks.clone());
    }
    if !issuer.starts_with("https://") {
        return Err("the issuer must be an https URL".to_owned());
    }
    let http = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|error| error.to_string())?;
    let discovery: Value = http
        .get(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')))
        .send()
        .await
        .map_err(|error| error.to_string())?
        .json()
        .await
        .map_err(|error| error.to_string())?;
    let jwks_uri =
        discovery["jwks_uri"].as_str().ok_or("the discovery document has no jwks_uri")?;
    if !jwks_uri.starts_with("https://") {
        return Err("jwks_uri must be an https URL".to_owned());
    }
    let jwks: crypto::jws::Jwks = http
        .get(jwks_uri)
        .send()
        .await
        .map_err(|error| error.to_string())?
        .json()
        .await
        .map_err(|error| error.to_string())?;
    if let Ok(mut entries) = cache.lock() {
        if entries.len() >= JWKS_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(issuer.to_owned(), (Instant::now(), jwks.clone()));
    }
    Ok(jwks)
}
