//! The routes every listener serves, in the exact wire shapes of protocols/01-imds.md and
//! protocols/02-hosted-endpoints.md:
//!
//! - IMDS: `GET /metadata/identity/oauth2/token`, `/metadata/identity/info`,
//!   `/metadata/instance` and `/metadata/instance/compute/location`.
//! - App Service: `GET /msi/token` (`api-version=2019-08-01` with `X-IDENTITY-HEADER`, or the
//!   legacy `2017-09-01` with `secret`).
//!
//! A per-resource listener serves its resource. The shared IMDS listener serves the host's
//! only resource, and refuses token requests when the host runs several.
//!
//! Checks run in this order: the rate limit (every path, the probe included), then
//! `X-Forwarded-For` and the method, then `Metadata: true` (IMDS) or the identity header
//! (App Service), then revocation, parameters, identity selection and the token cache.
//! Every refusal logs one line, without tokens or header values.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use api_types::hosting::{
    HostedResource, IdentityRef, IdentitySelector as Selector, IssuedToken, TokenRequest,
};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::json;

use crate::cache::{CacheKey, FetchError};
use crate::refusal::{Refusal, Shape};
use crate::state::{SHARED_LIMITER_KEY, Shared};
use crate::upstream::CallError;

/// The legacy App Service protocol version.
const APP_SERVICE_LEGACY_API_VERSION: &str = "2017-09-01";
/// The current App Service managed identity protocol version.
const APP_SERVICE_API_VERSION: &str = "2019-08-01";
/// Headers a proxy adds; a request carrying any of them is refused (the caller must be local).
const PROXY_HEADERS: &[&str] =
    &["forwarded", "x-real-ip", "via", "true-client-ip", "client-ip", "x-client-ip"];

/// What one listener serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One resource's own listener, by resource key.
    Resource(String),
    /// The shared IMDS listener (`169.254.169.254:80` on a real host).
    SharedImds,
}

/// The routes for one listener.
pub(crate) fn router(shared: Arc<Shared>, scope: Scope) -> Router {
    let endpoint = Endpoint { shared, scope };
    Router::new()
        .route("/metadata/identity/oauth2/token", any(imds_token))
        .route("/metadata/identity/oauth2/token/", any(imds_token))
        .route("/metadata/identity/info", any(identity_info))
        .route("/metadata/instance", any(instance))
        .route("/metadata/instance/", any(instance))
        .route("/metadata/instance/compute/location", any(location))
        .route("/msi/token", any(app_service_token))
        .route("/msi/token/", any(app_service_token))
        .route("/MSI/token", any(app_service_token))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(endpoint.clone(), rate_limit))
        .with_state(endpoint)
}

#[derive(Clone)]
struct Endpoint {
    shared: Arc<Shared>,
    scope: Scope,
}

/// The query string as a map; a malformed one is refused.
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// A query parameter that selects an identity, and the selector it makes.
type SelectorParameter = (&'static str, fn(String) -> Selector);

/// The identity selector a request used: the parameter name and its value, echoed in the
/// IMDS answer.
type UsedSelector = Option<(&'static str, String)>;

const IMDS_SELECTORS: &[SelectorParameter] = &[
    ("client_id", Selector::ClientId),
    ("object_id", Selector::ObjectId),
    ("msi_res_id", Selector::ResourceId),
    // Some MSAL Node versions send the App Service spelling to IMDS too.
    ("mi_res_id", Selector::ResourceId),
];
const APP_SERVICE_SELECTORS: &[SelectorParameter] = &[
    ("client_id", Selector::ClientId),
    ("principal_id", Selector::ObjectId),
    // MSAL sends `object_id` for the documented `principal_id`.
    ("object_id", Selector::ObjectId),
    ("mi_res_id", Selector::ResourceId),
];
const APP_SERVICE_LEGACY_SELECTORS: &[SelectorParameter] = &[("clientid", Selector::ClientId)];

async fn rate_limit(
    State(endpoint): State<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let limiter = endpoint.shared.limiter(&endpoint.limiter_key());
    match limiter.try_acquire(Instant::now()) {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(retry_after) => {
            let refusal = Refusal::RateLimited { retry_after_secs: retry_after.0 };
            endpoint.refuse(request.uri().path(), peer, Shape::Imds, &refusal)
        }
    }
}

async fn imds_token(
    State(endpoint): State<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let result = endpoint.imds_token(peer, &method, &headers, params).await;
    endpoint.answer("/metadata/identity/oauth2/token", peer, Shape::Imds, result)
}

async fn identity_info(
    State(endpoint): State<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let result = endpoint.identity_info(peer, &method, &headers).await;
    endpoint.answer("/metadata/identity/info", peer, Shape::Imds, result)
}

async fn instance(
    State(endpoint): State<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let result = endpoint.instance_resource(&method, &headers).map(|resource| {
        Json(json!({
            "compute": {
                "name": resource.name,
                "resourceId": resource.resource_id,
                "subscriptionId": resource.subscription_id,
                "resourceGroupName": resource.resource_group,
                "location": resource.location,
                "vmId": resource.vm_id.clone().unwrap_or_default(),
                "azEnvironment": "Ambient",
                "osType": "Linux",
                "vmSize": "Standard_D2s_v3",
                "tags": "",
            },
            "network": { "interface": [] },
        }))
        .into_response()
    });
    endpoint.answer("/metadata/instance", peer, Shape::Imds, result)
}

async fn location(
    State(endpoint): State<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let result = endpoint.instance_resource(&method, &headers).map(|resource| {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], resource.location.clone())
            .into_response()
    });
    endpoint.answer("/metadata/instance/compute/location", peer, Shape::Imds, result)
}

async fn app_service_token(
    State(endpoint): State<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let result = endpoint.app_service_token(peer, &method, &headers, params).await;
    endpoint.answer("/msi/token", peer, Shape::AppService, result)
}

async fn not_found(
    State(endpoint): State<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    endpoint.refuse(request.uri().path(), peer, Shape::Imds, &Refusal::NotFound)
}

impl Endpoint {
    async fn imds_token(
        &self,
        peer: SocketAddr,
        method: &Method,
        headers: &HeaderMap,
        params: Params,
    ) -> Result<Response, Refusal> {
        check_request(method, headers)?;
        check_metadata_header(headers)?;
        let resource = self.resource()?;
        self.check_not_revoked()?;
        let params = parse(params)?;
        check_imds_api_version(required(&params, "api-version")?)?;
        let audience = required(&params, "resource")?;
        let (selector, used) = selector(&params, IMDS_SELECTORS)?;
        let identity = resource.select(&selector).ok_or(Refusal::IdentityNotFound)?;
        let token = self.token(&resource, identity, &selector, audience, "imds", peer).await?;

        let now_secs = self.shared.clock.now().secs();
        let expires_in = (token.expires_on - now_secs).max(0).to_string();
        // Every value is a string (IMDS swagger `IdentityTokenResponse`).
        let mut body: BTreeMap<&str, String> = BTreeMap::from([
            ("access_token", token.access_token.clone()),
            ("refresh_token", String::new()),
            ("client_id", token.client_id.clone()),
            ("expires_in", expires_in.clone()),
            ("expires_on", token.expires_on.to_string()),
            ("ext_expires_in", expires_in),
            ("not_before", token.not_before.to_string()),
            ("resource", audience.to_owned()),
            ("token_type", "Bearer".to_owned()),
        ]);
        match used {
            Some(("object_id", value)) => {
                body.insert("object_id", value);
            }
            Some(("msi_res_id", value)) => {
                body.insert("msi_res_id", value);
            }
            Some(("mi_res_id", value)) => {
                body.insert("msi_res_id", value.clone());
                body.insert("mi_res_id", value);
            }
            _ => {}
        }
        Ok(Json(body).into_response())
    }

    async fn identity_info(
        &self,
        peer: SocketAddr,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Response, Refusal> {
        check_request(method, headers)?;
        check_metadata_header(headers)?;
        let _ = peer;
        self.resource()?;
        self.check_not_revoked()?;
        // The tenant comes with the assignments: no token is signed to answer this.
        let tenant_id = self.shared.tenant().ok_or(Refusal::TokenUnavailable)?;
        Ok(Json(json!({ "tenantId": tenant_id })).into_response())
    }

    fn instance_resource(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Arc<HostedResource>, Refusal> {
        check_request(method, headers)?;
        check_metadata_header(headers)?;
        self.resource()
    }

    async fn app_service_token(
        &self,
        peer: SocketAddr,
        method: &Method,
        headers: &HeaderMap,
        params: Params,
    ) -> Result<Response, Refusal> {
        check_request(method, headers)?;
        let resource = self.resource()?;
        let params = parse(params)?;
        let legacy = match required(&params, "api-version")? {
            APP_SERVICE_LEGACY_API_VERSION => true,
            APP_SERVICE_API_VERSION => false,
            _ => return Err(Refusal::InvalidApiVersion),
        };
        let header_name = if legacy { "secret" } else { "x-identity-header" };
        let presented = headers
            .get(header_name)
            .map(|value| value.as_bytes())
            .filter(|value| !value.is_empty())
            .ok_or(Refusal::MissingIdentityHeader)?;
        // An empty expected header would match nothing presentable; refuse it outright.
        let expected = resource.identity_header.as_bytes();
        if expected.is_empty() || !crypto::hash::constant_time_eq(presented, expected) {
            return Err(Refusal::WrongIdentityHeader);
        }
        self.check_not_revoked()?;
        let audience = required(&params, "resource")?;
        let table = if legacy { APP_SERVICE_LEGACY_SELECTORS } else { APP_SERVICE_SELECTORS };
        let (selector, _) = selector(&params, table)?;
        let identity = resource.select(&selector).ok_or(Refusal::IdentityNotFound)?;
        let token =
            self.token(&resource, identity, &selector, audience, "appService", peer).await?;

        let now_secs = self.shared.clock.now().secs();
        // `expires_on` is an epoch string in both versions (MSAL does `int(expires_on)`);
        // `expires_in` is not in the documented shape but harmless and helps other clients.
        let body: BTreeMap<&str, String> = BTreeMap::from([
            ("access_token", token.access_token.clone()),
            ("expires_on", token.expires_on.to_string()),
            ("expires_in", (token.expires_on - now_secs).max(0).to_string()),
            ("resource", audience.to_owned()),
            ("token_type", "Bearer".to_owned()),
            ("client_id", token.client_id.clone()),
        ]);
        Ok(Json(body).into_response())
    }

    /// The identity's token for `audience`, from the cache or the server.
    async fn token(
        &self,
        resource: &HostedResource,
        identity: &IdentityRef,
        selector: &Selector,
        audience: &str,
        endpoint_kind: &str,
        peer: SocketAddr,
    ) -> Result<Arc<IssuedToken>, Refusal> {
        let shared = &self.shared;
        let resource_key = resource.resource_key.to_ascii_lowercase();
        let mut request = TokenRequest {
            resource_id: resource.resource_key.clone(),
            audience: audience.to_owned(),
            client_id: None,
            object_id: None,
            identity_resource_id: None,
            endpoint: endpoint_kind.to_owned(),
            client_ip: Some(peer.ip().to_string()),
        };
        match selector {
            Selector::Default => {}
            Selector::ClientId(id) => request.client_id = Some(id.clone()),
            Selector::ObjectId(id) => request.object_id = Some(id.clone()),
            Selector::ResourceId(id) => request.identity_resource_id = Some(id.clone()),
        }
        let key = CacheKey::new(&resource_key, &identity.principal_id, audience);
        let fetch = || async {
            let issued = shared.api.token(&request).await.map_err(|error| {
                tracing::debug!(resource = %resource_key, %error, refusal = ?refusal_code(&error), "token request failed");
                match error {
                    CallError::Refused { status, .. } => FetchError::Refused { status },
                    _ => FetchError::Unavailable,
                }
            })?;
            if !issued.object_id.eq_ignore_ascii_case(&identity.principal_id) {
                // The assignments changed between selection and issuance; do not cache it.
                tracing::warn!(resource = %resource_key, "the server issued a token for another identity");
                return Err(FetchError::Unavailable);
            }
            Ok(issued)
        };
        match shared.cache.get_or_fetch(key, shared.clock.as_ref(), fetch).await {
            Ok(token) => Ok(token),
            Err(FetchError::Refused { status: 401 | 403 }) => Err(Refusal::Forbidden),
            Err(FetchError::Refused { .. }) => Err(Refusal::IdentityNotFound),
            Err(FetchError::Unavailable) => Err(Refusal::TokenUnavailable),
        }
    }

    /// The resource this listener serves.
    fn resource(&self) -> Result<Arc<HostedResource>, Refusal> {
        match &self.scope {
            Scope::Resource(key) => self.shared.resource(key).ok_or(Refusal::NoResource),
            Scope::SharedImds => {
                let placed = self.shared.resources();
                match placed.len() {
                    0 => Err(Refusal::NoResource),
                    1 => placed.values().next().cloned().ok_or(Refusal::NoResource),
                    _ => Err(Refusal::SeveralResources),
                }
            }
        }
    }

    fn check_not_revoked(&self) -> Result<(), Refusal> {
        if self.shared.is_revoked() { Err(Refusal::HostRevoked) } else { Ok(()) }
    }

    /// Requests to the shared listener count against its resource when it has exactly one.
    fn limiter_key(&self) -> String {
        match &self.scope {
            Scope::Resource(key) => key.clone(),
            Scope::SharedImds => {
                let placed = self.shared.resources();
                match placed.keys().next() {
                    Some(key) if placed.len() == 1 => key.clone(),
                    _ => SHARED_LIMITER_KEY.to_owned(),
                }
            }
        }
    }

    fn scope_label(&self) -> &str {
        match &self.scope {
            Scope::Resource(key) => key,
            Scope::SharedImds => "shared-imds",
        }
    }

    fn answer(
        &self,
        path: &str,
        peer: SocketAddr,
        shape: Shape,
        result: Result<Response, Refusal>,
    ) -> Response {
        result.unwrap_or_else(|refusal| self.refuse(path, peer, shape, &refusal))
    }

    fn refuse(&self, path: &str, peer: SocketAddr, shape: Shape, refusal: &Refusal) -> Response {
        tracing::info!(
            scope = self.scope_label(),
            path,
            client = %peer.ip(),
            status = refusal.status().as_u16(),
            reason = refusal.reason(),
            "metadata request refused"
        );
        refusal.render(shape)
    }
}

/// Proxied requests and methods other than GET are refused on every path.
fn check_request(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    let proxied = headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("x-forwarded-") || PROXY_HEADERS.contains(&name)
    });
    if proxied {
        return Err(Refusal::ForwardedFor);
    }
    if method != Method::GET {
        return Err(Refusal::MethodNotAllowed);
    }
    Ok(())
}

/// IMDS versions are dates (`2018-02-01`), some with a suffix (`2021-12-13-preview`); the
/// SDKs send several, and new ones appear, so any well-formed one is accepted.
fn check_imds_api_version(version: &str) -> Result<(), Refusal> {
    let bytes = version.as_bytes();
    let date = bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(at, byte)| match at {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    let suffix = version.get(10..).unwrap_or_default();
    let suffix_ok = suffix.is_empty()
        || ((2..=20).contains(&suffix.len())
            && suffix.starts_with('-')
            && suffix[1..].chars().all(|c| c.is_ascii_alphanumeric()));
    if date && suffix_ok { Ok(()) } else { Err(Refusal::InvalidApiVersion) }
}

fn check_metadata_header(headers: &HeaderMap) -> Result<(), Refusal> {
    let present = headers
        .get("metadata")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    if present { Ok(()) } else { Err(Refusal::MissingMetadataHeader) }
}

fn parse(params: Params) -> Result<HashMap<String, String>, Refusal> {
    params.map(|Query(params)| params).map_err(|_| Refusal::BadQuery)
}

fn required<'a>(
    params: &'a HashMap<String, String>,
    name: &'static str,
) -> Result<&'a str, Refusal> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
        .ok_or(Refusal::MissingParameter(name))
}

/// The selector among `table`'s parameters; at most one may be given (empty values count as
/// absent).
fn selector(
    params: &HashMap<String, String>,
    table: &[SelectorParameter],
) -> Result<(Selector, UsedSelector), Refusal> {
    let mut given = table.iter().filter_map(|&(name, make)| {
        params.get(name).filter(|value| !value.is_empty()).map(|value| (name, make, value))
    });
    let first = given.next();
    if given.next().is_some() {
        return Err(Refusal::ConflictingSelectors);
    }
    Ok(match first {
        None => (Selector::Default, None),
        Some((name, make, value)) => (make(value.clone()), Some((name, value.clone()))),
    })
}

fn refusal_code(error: &CallError) -> Option<&str> {
    match error {
        CallError::Refused { refusal: Some(refusal), .. } => Some(&refusal.error),
        _ => None,
    }
}
