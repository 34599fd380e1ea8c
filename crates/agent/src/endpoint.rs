//! The routes every listener serves, in the exact wire shapes of protocols/01-imds.md and
//! protocols/02-hosted-endpoints.md:
//!
//! - IMDS: `GET /metadata/identity/oauth2/token`, `/metadata/identity/info`,
//!   `/metadata/instance` and `/metadata/instance/compute/location`.
//! - App Service: `GET /msi/token` (`api-version=2019-08-01` with `X-IDENTITY-HEADER`, or the
//!   legacy `2017-09-01` with `secret`, which Azure ML speaks too).
//! - Azure Arc: `GET /arc/metadata/identity/oauth2/token`, IMDS's shape behind Arc's challenge:
//!   a request without `Authorization` gets 401 with `WWW-Authenticate: Basic realm=PATH`, where
//!   `PATH` is a fresh key file in `/var/opt/azcmagent/tokens` (the SDKs accept no other
//!   directory, so this needs root); the retry sends `Authorization: Basic KEY`, and the key
//!   file is deleted once used or after [`ARC_KEY_TTL`].
//! - Cloud Shell: `POST /cloudshell/token` with `Metadata: true` and a form body (`resource`),
//!   answered in IMDS's shape.
//! - Service Fabric: `GET /servicefabric/token` (`api-version=2019-07-01-preview`, the
//!   resource's identity header as `Secret`), over HTTPS on the same port (`tls`), answered
//!   with `expires_on` as a number.
//!
//! Before all of these, the listener's injected faults apply (`faults`); the token lifetime and
//! clock offset faults are applied here, from the request's `faults::Injected`.
//!
//! A per-resource listener serves its resource. The shared IMDS listener serves the host's
//! only resource, and refuses token requests when the host runs several.
//!
//! Checks run in this order: the rate limit (every path, the probe included), then
//! `X-Forwarded-For` and the method, then `Metadata: true` (IMDS) or the identity header
//! (App Service), then revocation, parameters, workload attestation (`attest`: when the
//! resource has workload selectors, the process at the other end of the connection must match
//! them, else 403 and a refused sign-in reported to the server), identity selection and the
//! token cache. The instance metadata paths and `/metadata/identity/info` need a well-formed
//! `api-version` too, as IMDS does (400 `Bad request. api-version was not specified...`).
//! Every refusal logs one line, without tokens or header values.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use api_types::hosting::{
    HostedResource, IdentityRef, IdentitySelector as Selector, IssuedToken, TokenRequest,
};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::attest::{Attested, Connection};
use crate::cache::{CacheKey, FetchError};
use crate::faults::{FaultLayer, Injected};
use crate::refusal::{Refusal, Shape};
use crate::state::{SHARED_LIMITER_KEY, Shared};
use crate::upstream::CallError;

/// Service Fabric's managed-identity protocol version.
const SERVICE_FABRIC_API_VERSION: &str = "2019-07-01-preview";
/// The legacy App Service protocol version.
const APP_SERVICE_LEGACY_API_VERSION: &str = "2017-09-01";
/// Where Azure Arc's key files live on Linux; the SDKs refuse a key file anywhere else.
pub(crate) const ARC_KEY_DIRECTORY: &str = "/var/opt/azcmagent/tokens";
/// How long an Arc key file is kept when the client never comes back with it.
const ARC_KEY_TTL: Duration = Duration::from_secs(60);
/// Arc challenges outstanding per listener at most; the oldest is dropped beyond.
const ARC_KEYS_MAX: usize = 64;
/// Mode of an Arc key file: the owner and the directory's group may read it, as with the
/// Arc agent's `himds` group.
const ARC_KEY_FILE_MODE: u32 = 0o640;
/// Mode of the key directory when the agent creates it.
const ARC_KEY_DIRECTORY_MODE: u32 = 0o750;
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
    let faults =
        FaultLayer { shared: shared.clone(), scope: scope.clone(), counter: Arc::default() };
    let endpoint = Endpoint { shared, scope, arc_keys: Arc::default() };
    Router::new()
        .route("/arc/metadata/identity/oauth2/token", any(arc_token))
        .route("/cloudshell/token", any(cloud_shell_token))
        .route("/servicefabric/token", any(service_fabric_token))
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
        .layer(middleware::from_fn_with_state(faults, crate::faults::inject))
        .with_state(endpoint)
}

#[derive(Clone)]
struct Endpoint {
    shared: Arc<Shared>,
    scope: Scope,
    /// Arc challenges handed out and not yet answered.
    arc_keys: Arc<Mutex<Vec<ArcKey>>>,
}

/// One outstanding Arc challenge: its key and the file that holds it.
struct ArcKey {
    secret: String,
    path: PathBuf,
    issued: Instant,
}

impl Drop for ArcKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The faults applying to a request (none when the fault layer added nothing).
type Faults = Option<Extension<Injected>>;

fn injected(faults: Faults) -> Injected {
    faults.map(|Extension(injected)| injected).unwrap_or_default()
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
    ConnectInfo(connection): ConnectInfo<Connection>,
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
            endpoint.refuse(request.uri().path(), connection.peer, Shape::Imds, &refusal)
        }
    }
}

async fn imds_token(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    faults: Faults,
    params: Params,
) -> Response {
    let result =
        endpoint.imds_token(&connection, &method, &headers, params, &injected(faults)).await;
    endpoint.answer("/metadata/identity/oauth2/token", connection.peer, Shape::Imds, result)
}

async fn arc_token(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    faults: Faults,
    params: Params,
) -> Response {
    let result =
        endpoint.arc_token(&connection, &method, &headers, params, &injected(faults)).await;
    endpoint.answer("/arc/metadata/identity/oauth2/token", connection.peer, Shape::Imds, result)
}

async fn service_fabric_token(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    faults: Faults,
    params: Params,
) -> Response {
    let result = endpoint
        .service_fabric_token(&connection, &method, &headers, params, &injected(faults))
        .await;
    endpoint.answer("/servicefabric/token", connection.peer, Shape::AppService, result)
}

async fn cloud_shell_token(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    faults: Faults,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let result =
        endpoint.cloud_shell_token(&connection, &method, &headers, form, &injected(faults)).await;
    endpoint.answer("/cloudshell/token", connection.peer, Shape::Imds, result)
}

async fn identity_info(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let result = endpoint.identity_info(&connection, &method, &headers, params).await;
    endpoint.answer("/metadata/identity/info", connection.peer, Shape::Imds, result)
}

async fn instance(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let result = endpoint.instance_resource(&connection, &method, &headers, params).await;
    let result = result.map(|resource| {
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
    endpoint.answer("/metadata/instance", connection.peer, Shape::Instance, result)
}

async fn location(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let result = endpoint.instance_resource(&connection, &method, &headers, params).await;
    let result = result.map(|resource| {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], resource.location.clone())
            .into_response()
    });
    endpoint.answer("/metadata/instance/compute/location", connection.peer, Shape::Instance, result)
}

async fn app_service_token(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    method: Method,
    headers: HeaderMap,
    faults: Faults,
    params: Params,
) -> Response {
    let result =
        endpoint.app_service_token(&connection, &method, &headers, params, &injected(faults)).await;
    endpoint.answer("/msi/token", connection.peer, Shape::AppService, result)
}

async fn not_found(
    State(endpoint): State<Endpoint>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    request: Request,
) -> Response {
    endpoint.refuse(request.uri().path(), connection.peer, Shape::Imds, &Refusal::NotFound)
}

impl Endpoint {
    async fn imds_token(
        &self,
        connection: &Connection,
        method: &Method,
        headers: &HeaderMap,
        params: Params,
        injected: &Injected,
    ) -> Result<Response, Refusal> {
        check_request(method, headers)?;
        check_metadata_header(headers)?;
        let resource = self.resource()?;
        self.check_not_revoked()?;
        let params = parse(params)?;
        check_imds_api_version(required(&params, "api-version")?)?;
        self.attest(&resource, connection, "imds", audience_of(&params)).await?;
        self.imds_shaped_token(&resource, &params, "imds", connection.peer, injected).await
    }

    /// A token for `params` (`resource` and an IMDS selector) in IMDS's shape: every value a
    /// string (IMDS swagger `IdentityTokenResponse`), the selector echoed.
    async fn imds_shaped_token(
        &self,
        resource: &HostedResource,
        params: &HashMap<String, String>,
        endpoint_kind: &str,
        peer: SocketAddr,
        injected: &Injected,
    ) -> Result<Response, Refusal> {
        let audience = required(params, "resource")?;
        let (selector, used) = selector(params, IMDS_SELECTORS)?;
        let identity = resource.select(&selector).ok_or(Refusal::IdentityNotFound)?;
        let token = self
            .token(resource, identity, &selector, audience, endpoint_kind, peer, injected)
            .await?;

        let now_secs = self.shared.clock.now().secs();
        let offset = injected.clock_offset_secs();
        let expires_in = (token.expires_on - now_secs).max(0).to_string();
        let mut body: BTreeMap<&str, String> = BTreeMap::from([
            ("access_token", token.access_token.clone()),
            ("refresh_token", String::new()),
            ("client_id", token.client_id.clone()),
            ("expires_in", expires_in.clone()),
            ("expires_on", (token.expires_on + offset).to_string()),
            ("ext_expires_in", expires_in),
            ("not_before", (token.not_before + offset).to_string()),
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

    /// Azure Arc: the challenge, then the token for the key it named.
    async fn arc_token(
        &self,
        connection: &Connection,
        method: &Method,
        headers: &HeaderMap,
        params: Params,
        injected: &Injected,
    ) -> Result<Response, Refusal> {
        check_request(method, headers)?;
        check_metadata_header(headers)?;
        let resource = self.resource()?;
        self.check_not_revoked()?;
        let params = parse(params)?;
        required(&params, "api-version")?;
        let audience = required(&params, "resource")?;
        self.attest(&resource, connection, "arc", audience).await?;
        let peer = connection.peer;
        let Some(authorization) = headers.get(header::AUTHORIZATION) else {
            let path = self.arc_challenge()?;
            tracing::info!(scope = self.scope_label(), client = %peer.ip(), key_file = %path.display(), "arc challenge");
            let mut response = (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "unauthorized", "error_description": "Use the key in the file named by WWW-Authenticate."})),
            )
                .into_response();
            let challenge = HeaderValue::from_str(&format!("Basic realm={}", path.display()))
                .map_err(|_| Refusal::ArcUnavailable)?;
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
            return Ok(response);
        };
        let presented = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Basic "))
            .map(str::trim)
            .ok_or(Refusal::WrongArcKey)?;
        self.take_arc_key(presented)?;
        self.imds_shaped_token(&resource, &params, "arc", peer, injected).await
    }

    /// Writes a fresh key file and remembers its key; the path for `WWW-Authenticate`.
    fn arc_challenge(&self) -> Result<PathBuf, Refusal> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
        let directory = Path::new(ARC_KEY_DIRECTORY);
        let cannot = |error: std::io::Error| {
            tracing::error!(directory = ARC_KEY_DIRECTORY, %error, "Azure Arc needs root: the agent cannot write its key files in {ARC_KEY_DIRECTORY}, the only directory the SDKs accept; run the agent as root");
            Refusal::ArcUnavailable
        };
        if !directory.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(ARC_KEY_DIRECTORY_MODE)
                .create(directory)
                .map_err(cannot)?;
        }
        let secret = crypto::random::random_token(32);
        let name = crypto::random::random_token(16);
        let path = directory.join(format!("{name}.key"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(ARC_KEY_FILE_MODE)
            .open(&path)
            .map_err(cannot)?;
        file.set_permissions(std::fs::Permissions::from_mode(ARC_KEY_FILE_MODE)).map_err(cannot)?;
        std::io::Write::write_all(&mut file, secret.as_bytes()).map_err(cannot)?;
        let mut keys = self.arc_keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.retain(|key| key.issued.elapsed() < ARC_KEY_TTL);
        if keys.len() >= ARC_KEYS_MAX {
            keys.remove(0);
        }
        keys.push(ArcKey { secret, path: path.clone(), issued: Instant::now() });
        Ok(path)
    }

    /// Accepts `presented` once if it is an outstanding key; its file is deleted.
    fn take_arc_key(&self, presented: &str) -> Result<(), Refusal> {
        let mut keys = self.arc_keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.retain(|key| key.issued.elapsed() < ARC_KEY_TTL);
        let found = keys.iter().position(|key| {
            crypto::hash::constant_time_eq(key.secret.as_bytes(), presented.as_bytes())
        });
        match found {
            Some(index) => {
                keys.remove(index);
                Ok(())
            }
            None => Err(Refusal::WrongArcKey),
        }
    }

    /// Service Fabric: the identity header as `Secret`; the application's identity is the
    /// resource's default one (Service Fabric binds identities in the cluster, not per call).
    async fn service_fabric_token(
        &self,
        connection: &Connection,
        method: &Method,
        headers: &HeaderMap,
        params: Params,
        injected: &Injected,
    ) -> Result<Response, Refusal> {
        check_request(method, headers)?;
        let resource = self.resource()?;
        let presented = headers
            .get("secret")
            .map(|value| value.as_bytes())
            .filter(|value| !value.is_empty())
            .ok_or(Refusal::MissingIdentityHeader)?;
        let expected = resource.identity_header.as_bytes();
        if expected.is_empty() || !crypto::hash::constant_time_eq(presented, expected) {
            return Err(Refusal::WrongIdentityHeader);
        }
        self.check_not_revoked()?;
        let params = parse(params)?;
        if required(&params, "api-version")? != SERVICE_FABRIC_API_VERSION {
            return Err(Refusal::BadQuery);
        }
        let audience = required(&params, "resource")?;
        self.attest(&resource, connection, "serviceFabric", audience).await?;
        let peer = connection.peer;
        let selector = Selector::Default;
        let identity = resource.select(&selector).ok_or(Refusal::IdentityNotFound)?;
        let token = self
            .token(&resource, identity, &selector, audience, "serviceFabric", peer, injected)
            .await?;
        Ok(Json(json!({
            "token_type": "Bearer",
            "access_token": token.access_token,
            "expires_on": token.expires_on + injected.clock_offset_secs(),
            "resource": audience,
        }))
        .into_response())
    }

    /// Cloud Shell: a POST with `Metadata: true` and the parameters in a form body.
    async fn cloud_shell_token(
        &self,
        connection: &Connection,
        method: &Method,
        headers: &HeaderMap,
        form: Result<Form<HashMap<String, String>>, FormRejection>,
        injected: &Injected,
    ) -> Result<Response, Refusal> {
        if headers.contains_key("x-forwarded-for") {
            return Err(Refusal::ForwardedFor);
        }
        if method != Method::POST {
            return Err(Refusal::MethodNotAllowed);
        }
        check_metadata_header(headers)?;
        let resource = self.resource()?;
        self.check_not_revoked()?;
        let Form(params) = form.map_err(|_| Refusal::BadQuery)?;
        self.attest(&resource, connection, "cloudShell", audience_of(&params)).await?;
        self.imds_shaped_token(&resource, &params, "cloudShell", connection.peer, injected).await
    }

    async fn identity_info(
        &self,
        connection: &Connection,
        method: &Method,
        headers: &HeaderMap,
        params: Params,
    ) -> Result<Response, Refusal> {
        check_request(method, headers)?;
        check_metadata_header(headers)?;
        check_instance_api_version(&parse(params)?)?;
        let resource = self.resource()?;
        self.attest(&resource, connection, "imds", "").await?;
        self.check_not_revoked()?;
        // The tenant comes with the assignments: no token is signed to answer this.
        let tenant_id = self.shared.tenant().ok_or(Refusal::TokenUnavailable)?;
        Ok(Json(json!({ "tenantId": tenant_id })).into_response())
    }

    /// The resource for the instance metadata paths, which need `api-version` too.
    async fn instance_resource(
        &self,
        connection: &Connection,
        method: &Method,
        headers: &HeaderMap,
        params: Params,
    ) -> Result<Arc<HostedResource>, Refusal> {
        check_request(method, headers)?;
        check_metadata_header(headers)?;
        check_instance_api_version(&parse(params)?)?;
        let resource = self.resource()?;
        self.attest(&resource, connection, "imds", "").await?;
        Ok(resource)
    }

    async fn app_service_token(
        &self,
        connection: &Connection,
        method: &Method,
        headers: &HeaderMap,
        params: Params,
        injected: &Injected,
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
        let kind = if legacy { "appService2017" } else { "appService" };
        self.attest(&resource, connection, kind, audience).await?;
        let peer = connection.peer;
        let table = if legacy { APP_SERVICE_LEGACY_SELECTORS } else { APP_SERVICE_SELECTORS };
        let (selector, _) = selector(&params, table)?;
        let identity = resource.select(&selector).ok_or(Refusal::IdentityNotFound)?;
        let token =
            self.token(&resource, identity, &selector, audience, kind, peer, injected).await?;

        let now_secs = self.shared.clock.now().secs();
        let offset = injected.clock_offset_secs();
        // `expires_on` is an epoch string in both versions (MSAL does `int(expires_on)`);
        // `expires_in` is not in the documented shape but harmless and helps other clients.
        let body: BTreeMap<&str, String> = BTreeMap::from([
            ("access_token", token.access_token.clone()),
            ("expires_on", (token.expires_on + offset).to_string()),
            ("expires_in", (token.expires_on - now_secs).max(0).to_string()),
            ("resource", audience.to_owned()),
            ("token_type", "Bearer".to_owned()),
            ("client_id", token.client_id.clone()),
        ]);
        Ok(Json(body).into_response())
    }

    /// The identity's token for `audience`, from the cache or the server.
    #[allow(clippy::too_many_arguments)]
    async fn token(
        &self,
        resource: &HostedResource,
        identity: &IdentityRef,
        selector: &Selector,
        audience: &str,
        endpoint_kind: &str,
        peer: SocketAddr,
        injected: &Injected,
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
            lifetime_secs: injected.lifetime_secs(),
            refused: None,
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

    /// Refuses the request unless the process at the other end of `connection` matches the
    /// resource's workload selectors (any process when it has none). A refusal is logged
    /// and, once per connection, reported to the server, which records a failed sign-in.
    async fn attest(
        &self,
        resource: &HostedResource,
        connection: &Connection,
        endpoint_kind: &str,
        audience: &str,
    ) -> Result<(), Refusal> {
        let Some(selectors) = resource.workload_selectors.as_ref().filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        let (reason, fresh) = match connection.attest(selectors).await {
            Attested::Matches => return Ok(()),
            Attested::Refused { reason, fresh } => (reason, fresh),
        };
        if fresh {
            tracing::warn!(resource = %resource.resource_key, client = %connection.peer, %reason, "workload attestation refused the caller");
            let request = TokenRequest {
                resource_id: resource.resource_key.clone(),
                audience: audience.to_owned(),
                client_id: None,
                object_id: None,
                identity_resource_id: None,
                endpoint: endpoint_kind.to_owned(),
                client_ip: Some(connection.peer.ip().to_string()),
                lifetime_secs: None,
                refused: Some(reason),
            };
            let shared = self.shared.clone();
            // The caller's answer does not wait for the report.
            tokio::spawn(async move {
                if let Err(error) = shared.api.token(&request).await
                    && !matches!(error, CallError::Refused { .. })
                {
                    tracing::debug!(%error, "reporting a refused workload failed");
                }
            });
        }
        Err(Refusal::WorkloadNotAttested)
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

/// The instance metadata paths (and `/metadata/identity/info`) need an `api-version` too;
/// every well-formed one is accepted, as on the token path.
fn check_instance_api_version(params: &HashMap<String, String>) -> Result<(), Refusal> {
    match params.get("api-version").filter(|version| !version.is_empty()) {
        None => Err(Refusal::MissingApiVersion),
        Some(version) => check_imds_api_version(version),
    }
}

/// The `resource` parameter, or nothing, for reporting a refused workload.
fn audience_of(params: &HashMap<String, String>) -> &str {
    params.get("resource").map_or("", String::as_str)
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
