//! Fault injection on the metadata endpoints, for testing clients (docs/flavours.md): the faults
//! an administrator set on the host or on one resource arrive with the assignments
//! (`HostedResource::faults`, `Assignments::faults`) and are applied here, before any other
//! check, in this order: added latency, no answer at all, the Docker-Desktop 403 on IMDS
//! paths, then a share of error answers on token paths. Token lifetimes and the clock offset
//! are applied where the token is fetched and answered (`endpoint`), from the request's
//! [`Injected`] extension. Every fault applied logs one warning line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api_types::hosting::Faults;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::endpoint::Scope;
use crate::state::Shared;

/// How long a request under the "no answer" fault is held before the connection is answered
/// with 504 (clients time out long before).
const NO_ANSWER_HOLD: Duration = Duration::from_secs(600);
/// What Docker Desktop answers for 169.254.169.254 when no metadata service is reachable; the
/// SDKs look for "unreachable" in it.
pub(crate) const DOCKER_DESKTOP_UNREACHABLE: &str = "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.";

/// The faults that apply to one request, for the handlers (token lifetime, clock offset).
#[derive(Clone, Debug, Default)]
pub(crate) struct Injected(pub(crate) Option<Arc<Faults>>);

impl Injected {
    /// The lifetime the server should give the token, when shortened.
    pub(crate) fn lifetime_secs(&self) -> Option<i64> {
        self.0.as_ref().and_then(|faults| faults.token_lifetime_secs)
    }

    /// Seconds to add to the absolute times of an answer.
    pub(crate) fn clock_offset_secs(&self) -> i64 {
        self.0.as_ref().map_or(0, |faults| faults.clock_offset_secs)
    }
}

/// The state of the fault middleware of one listener.
#[derive(Clone)]
pub(crate) struct FaultLayer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) scope: Scope,
    /// Token requests seen by this listener, to spread the injected errors evenly.
    pub(crate) counter: Arc<AtomicU64>,
}

impl FaultLayer {
    /// The faults of the listener's resource, else the host's.
    fn faults(&self) -> Option<Faults> {
        let resource = match &self.scope {
            Scope::Resource(key) => self.shared.resource(key),
            Scope::SharedImds => {
                let placed = self.shared.resources();
                if placed.len() == 1 { placed.values().next().cloned() } else { None }
            }
        };
        match resource {
            Some(resource) => resource.faults.clone(),
            None => self.shared.host_faults(),
        }
        .filter(|faults| !faults.is_empty())
    }
}

fn is_token_path(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    matches!(
        path,
        "/metadata/identity/oauth2/token"
            | "/msi/token"
            | "/MSI/token"
            | "/arc/metadata/identity/oauth2/token"
            | "/cloudshell/token"
            | "/servicefabric/token"
    )
}

/// The middleware: applies the listener's faults, or passes the request on untouched.
pub(crate) async fn inject(
    State(layer): State<FaultLayer>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(faults) = layer.faults() else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    let scope = match &layer.scope {
        Scope::Resource(key) => key.clone(),
        Scope::SharedImds => "shared-imds".to_owned(),
    };
    if faults.latency_ms > 0 {
        tracing::warn!(%scope, %path, latency_ms = faults.latency_ms, "fault injected: latency");
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.no_answer {
        tracing::warn!(%scope, %path, "fault injected: no answer");
        tokio::time::sleep(NO_ANSWER_HOLD).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    if faults.imds_unreachable && path.starts_with("/metadata/") {
        tracing::warn!(%scope, %path, status = 403, "fault injected: IMDS unreachable (Docker Desktop)");
        // In a JSON body, so that both the SDKs that search the body (Go, JavaScript) and the
        // one that searches its parsed error message (Python) find "unreachable".
        let body = json!({"error": "forbidden", "error_description": DOCKER_DESKTOP_UNREACHABLE});
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    if !faults.errors.is_empty() && is_token_path(&path) {
        let seen = layer.counter.fetch_add(1, Ordering::Relaxed);
        if let Some(status) = pick_error(&faults, seen) {
            tracing::warn!(%scope, %path, status, retry_after_secs = ?faults.retry_after_secs, "fault injected: error answer");
            return error_answer(status, faults.retry_after_secs);
        }
    }
    request.extensions_mut().insert(Injected(Some(Arc::new(faults))));
    next.run(request).await
}

/// The injected status for the `seen`-th token request, if any. The shares together take
/// their total percent `t` of every hundred requests, spread evenly (request `n` is hit when
/// `floor((n+1)·t/100)` grows); the `k`-th hit goes to the share that position `k mod t` falls
/// in, so each share gets exactly its percent.
fn pick_error(faults: &Faults, seen: u64) -> Option<u16> {
    let total: u64 =
        faults.errors.iter().map(|error| u64::from(error.percent)).sum::<u64>().min(100);
    if total == 0 || (seen + 1) * total / 100 == seen * total / 100 {
        return None;
    }
    let position = ((seen + 1) * total / 100 - 1) % total;
    let mut floor = 0u64;
    for error in &faults.errors {
        floor += u64::from(error.percent);
        if position < floor {
            return Some(error.status);
        }
    }
    None
}

fn error_answer(status: u16, retry_after_secs: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "error": if status == StatusCode::TOO_MANY_REQUESTS { "too_many_requests" } else { "unknown" },
        "error_description": format!("injected fault: {}", status.as_u16()),
    });
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after_secs
        && matches!(status.as_u16(), 429 | 503)
    {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use api_types::hosting::InjectedError;

    use super::*;

    #[test]
    fn error_shares_are_spread_evenly() {
        let faults = Faults {
            errors: vec![
                InjectedError { status: 429, percent: 30 },
                InjectedError { status: 503, percent: 10 },
            ],
            ..Faults::default()
        };
        let picks: Vec<Option<u16>> = (0..100).map(|seen| pick_error(&faults, seen)).collect();
        let count = |status| picks.iter().filter(|pick| **pick == Some(status)).count();
        assert_eq!((count(429), count(503)), (30, 10));
        // Never two injected errors in a row at these shares.
        assert!(picks.windows(2).all(|pair| pair[0].is_none() || pair[1].is_none()), "{picks:?}");
        let all = Faults {
            errors: vec![InjectedError { status: 500, percent: 100 }],
            ..Faults::default()
        };
        assert!((0..10).all(|seen| pick_error(&all, seen) == Some(500)));
    }
}
