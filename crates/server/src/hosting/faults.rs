//! Fault injection for testing clients (docs/flavours.md): faults on a host's metadata
//! endpoints or on one resource's, set by an administrator and handed to the host's agent in
//! the assignment watch.
//!
//! - `GET|PUT|DELETE /hosting/hosts/{name}/faults`: the host's faults, for every resource of the
//!   host without faults of its own and for the shared IMDS listener;
//! - `GET|PUT|DELETE /hosting/faults?resourceId=ID`: one resource's faults, kept with the host
//!   the resource is placed on (a resource moved to another host leaves them behind).
//!
//! Stored as one setting per host (`faults/{host}`, [`HostFaults`]), read once per watch round.
//! Authorized like the other host administration calls (`Ambient.Hosting/hosts/read|write` at
//! the root scope).

use std::collections::BTreeMap;

use api_types::hosting::{Faults, InjectedError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ResourceId;
use domain::limits::{
    FAULT_CLOCK_OFFSET_SECS_MAX, FAULT_LATENCY_MS_MAX, FAULT_RETRY_AFTER_SECS_MAX,
    FAULTY_RESOURCES_PER_HOST_MAX, MANAGED_IDENTITY_TOKEN_LIFETIME_SECS, TOKEN_LIFETIME_SECS_MIN,
};
use serde::{Deserialize, Serialize};
use store::Write;

use crate::error::ApiError;
use crate::hosting::{admin, find_host, json};
use crate::state::AppState;

const SETTING_PREFIX: &str = "faults/";
const INJECTABLE_STATUSES: [u16; 3] = [429, 500, 503];

/// What the setting `faults/{host}` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFaults {
    /// The host's own faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Faults>,
    /// By resource key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Faults>,
}

impl HostFaults {
    /// The faults that apply to the resource `key`: its own, else the host's.
    pub fn effective(&self, key: &str) -> Option<Faults> {
        self.resources.get(key).or(self.host.as_ref()).cloned()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceQuery {
    resource_id: String,
}

/// The faults stored for `host` (none when the setting is missing or unreadable).
pub async fn load(state: &AppState, host: &str) -> Result<HostFaults, ApiError> {
    let stored = state.store.get_setting(&format!("{SETTING_PREFIX}{host}")).await?;
    Ok(stored.and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default())
}

async fn save(state: &AppState, host: &str, faults: &HostFaults) -> Result<(), ApiError> {
    let value = serde_json::to_string(faults).map_err(ApiError::internal)?;
    state
        .store
        .apply(vec![Write::PutSetting { name: format!("{SETTING_PREFIX}{host}"), value }])
        .await?;
    // Wakes the host's assignment watch.
    state.changed();
    Ok(())
}

/// `GET /hosting/hosts/{name}/faults`.
pub async fn get_host_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/read").await?;
    find_host(&state, &name).await?;
    let faults = load(&state, &name).await?.host.unwrap_or_default();
    Ok(Json(faults).into_response())
}

/// `PUT /hosting/hosts/{name}/faults`: replaces the host's faults.
pub async fn put_host_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/write").await?;
    find_host(&state, &name).await?;
    let faults: Faults = json(&body)?;
    validate(&faults)?;
    let mut stored = load(&state, &name).await?;
    stored.host = Some(faults.clone()).filter(|faults| !faults.is_empty());
    save(&state, &name, &stored).await?;
    tracing::info!(host = %name, ?faults, "host faults set");
    Ok(Json(faults).into_response())
}

/// `DELETE /hosting/hosts/{name}/faults`.
pub async fn delete_host_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/write").await?;
    find_host(&state, &name).await?;
    let mut stored = load(&state, &name).await?;
    stored.host = None;
    save(&state, &name, &stored).await?;
    tracing::info!(host = %name, "host faults cleared");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The resource's key and host, for `/hosting/faults?resourceId=`.
async fn placed(state: &AppState, resource_id: &str) -> Result<(String, String), ApiError> {
    let id = ResourceId::parse(resource_id)
        .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
    let row = state.store.get_resource(id.key()).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The resource '{id}' was not found."),
        )
    })?;
    let host = row.host_id.ok_or_else(|| {
        ApiError::bad_request(
            "InvalidResourceType",
            format!("'{id}' is not a compute resource placed on a host."),
        )
    })?;
    Ok((row.key, host))
}

/// `GET /hosting/faults?resourceId=ID`: the resource's own faults.
pub async fn get_resource_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ResourceQuery>,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/read").await?;
    let (key, host) = placed(&state, &query.resource_id).await?;
    let faults = load(&state, &host).await?.resources.remove(&key).unwrap_or_default();
    Ok(Json(faults).into_response())
}

/// `PUT /hosting/faults?resourceId=ID`: replaces the resource's own faults.
pub async fn put_resource_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ResourceQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/write").await?;
    let (key, host) = placed(&state, &query.resource_id).await?;
    let faults: Faults = json(&body)?;
    validate(&faults)?;
    let mut stored = load(&state, &host).await?;
    if faults.is_empty() {
        stored.resources.remove(&key);
    } else {
        if !stored.resources.contains_key(&key)
            && stored.resources.len() >= FAULTY_RESOURCES_PER_HOST_MAX
        {
            return Err(ApiError::bad_request(
                "TooManyFaults",
                format!(
                    "At most {FAULTY_RESOURCES_PER_HOST_MAX} resources of a host may carry faults."
                ),
            ));
        }
        stored.resources.insert(key.clone(), faults.clone());
    }
    save(&state, &host, &stored).await?;
    tracing::info!(resource = %key, %host, ?faults, "resource faults set");
    Ok(Json(faults).into_response())
}

/// `DELETE /hosting/faults?resourceId=ID`.
pub async fn delete_resource_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ResourceQuery>,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/write").await?;
    let (key, host) = placed(&state, &query.resource_id).await?;
    let mut stored = load(&state, &host).await?;
    stored.resources.remove(&key);
    save(&state, &host, &stored).await?;
    tracing::info!(resource = %key, %host, "resource faults cleared");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Refuses faults outside the limits of `domain::limits`.
pub fn validate(faults: &Faults) -> Result<(), ApiError> {
    let invalid = |message: String| Err(ApiError::bad_request("InvalidFaults", message));
    if faults.latency_ms > FAULT_LATENCY_MS_MAX {
        return invalid(format!("latencyMs must be at most {FAULT_LATENCY_MS_MAX}."));
    }
    let mut total: u32 = 0;
    for InjectedError { status, percent } in &faults.errors {
        if !INJECTABLE_STATUSES.contains(status) {
            return invalid(format!("errors: status {status} is not one of 429, 500, 503."));
        }
        if *percent == 0 || *percent > 100 {
            return invalid(format!("errors: the share of {status} must be 1 to 100 percent."));
        }
        total += u32::from(*percent);
    }
    if total > 100 {
        return invalid("errors: the shares add up to more than 100 percent.".to_owned());
    }
    if faults.retry_after_secs.is_some_and(|secs| secs > FAULT_RETRY_AFTER_SECS_MAX) {
        return invalid(format!("retryAfterSecs must be at most {FAULT_RETRY_AFTER_SECS_MAX}."));
    }
    if faults.token_lifetime_secs.is_some_and(|secs| {
        !(TOKEN_LIFETIME_SECS_MIN..=MANAGED_IDENTITY_TOKEN_LIFETIME_SECS).contains(&secs)
    }) {
        return invalid(format!(
            "tokenLifetimeSecs must be {TOKEN_LIFETIME_SECS_MIN} to {MANAGED_IDENTITY_TOKEN_LIFETIME_SECS}."
        ));
    }
    if faults.clock_offset_secs.abs() > FAULT_CLOCK_OFFSET_SECS_MAX {
        return invalid(format!(
            "clockOffsetSecs must be within {FAULT_CLOCK_OFFSET_SECS_MAX} seconds either way."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(faults: serde_json::Value, expected: &str) {
        let faults: Faults = serde_json::from_value(faults).unwrap();
        let outcome = match validate(&faults) {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.message,
        };
        assert_eq!(outcome, expected);
    }

    #[test]
    fn faults_are_bounded() {
        check(
            serde_json::json!({"errors": [{"status": 429, "percent": 30}], "retryAfterSecs": 1}),
            "ok",
        );
        check(
            serde_json::json!({"errors": [{"status": 404, "percent": 30}]}),
            "errors: status 404 is not one of 429, 500, 503.",
        );
        check(
            serde_json::json!({"errors": [{"status": 429, "percent": 60}, {"status": 503, "percent": 50}]}),
            "errors: the shares add up to more than 100 percent.",
        );
        check(
            serde_json::json!({"tokenLifetimeSecs": 59}),
            "tokenLifetimeSecs must be 60 to 86400.",
        );
        check(serde_json::json!({"latencyMs": 60001}), "latencyMs must be at most 60000.");
        check(serde_json::json!({"clockOffsetSecs": -3600}), "ok");
    }

    #[test]
    fn a_resource_s_own_faults_win_over_the_host_s() {
        let host = Faults { latency_ms: 5, ..Faults::default() };
        let own = Faults { no_answer: true, ..Faults::default() };
        let stored = HostFaults {
            host: Some(host.clone()),
            resources: BTreeMap::from([("a".to_owned(), own.clone())]),
        };
        assert_eq!(stored.effective("a"), Some(own));
        assert_eq!(stored.effective("b"), Some(host));
        assert_eq!(HostFaults::default().effective("a"), None);
    }
}
