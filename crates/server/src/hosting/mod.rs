//! The agents' API (`/hosting/...`): hosts and their one-time join tokens (admin), enrollment
//! and certificate renewal, the assignment watch, status reports, and managed-identity tokens.
//!
//! Agents authenticate with a client certificate issued by the local CA (subject CN = host
//! name); rustls has already verified it against the CA when a handler runs. The server checks
//! on every call that the host exists and is not revoked, and on every token that the resource
//! is placed on that host and holds the identity now (DESIGN §4). Join tokens look like
//! `{host}.{secret}`, are stored as hashes, expire, and work once.
//!
//! Each hosted resource carries what its agent needs besides its identities: its
//! managed-identity flavour and workload selectors (`properties.ambient`, typed by
//! `resources::workload`) and the faults injected on it (`faults`, set by administrators).
//! When the agent refuses a workload that matches none of a resource's selectors, it says so in
//! a token request marked `refused`; the server then records the failed sign-in and issues
//! nothing.

mod faults;

pub use crate::hosting::faults::{
    delete_host_faults, delete_resource_faults, get_host_faults, get_resource_faults,
    put_host_faults, put_resource_faults,
};

use std::time::Duration;

use api_types::hosting::{
    Assignments, EnrollRequest, Faults, HostCreated, HostInfo, HostStatus, HostedResource,
    IdentityFlavour, IdentityRef, IssuedHostCertificate, RenewRequest, TokenRefusal, TokenRequest,
    WorkloadSelectors,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ResourceId;
use rbac::ActionKind;
use serde::Deserialize;
use store::{HostRecord, ResourceFilter, Write};

use crate::auth::{authenticate, authorize, management_audiences};
use crate::error::ApiError;
use crate::state::AppState;
use crate::time_format::rfc3339;
use crate::tls::PeerCertificates;

const JOIN_TOKEN_LIFETIME_SECS: i64 = 15 * 60;
const WATCH_WAIT_SECS_MAX: u64 = 30;
const STATUS_SETTING_PREFIX: &str = "host-status/";
/// An agent's refusal reason is kept to this many characters in the sign-in log.
const REFUSAL_REASON_CHARS_MAX: usize = 300;

// --- Administration -------------------------------------------------------------------------

pub(crate) async fn admin(
    state: &AppState,
    headers: &HeaderMap,
    action: &str,
) -> Result<(), ApiError> {
    let caller = authenticate(state, headers, management_audiences(state))?;
    authorize(state, &caller, action, ActionKind::Control, &ResourceId::root()).await
}

fn check_host_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "InvalidHostName",
            format!(
                "The host name '{name}' is invalid: use 1 to 63 lower-case letters, digits and '-'."
            ),
        ))
    }
}

/// Creates a host (or gives an existing one a new join token).
pub async fn create_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/write").await?;
    let (created, status) = new_join_token(&state, &name).await?;
    Ok((status, Json(created)).into_response())
}

/// Issues a join token for `name`, creating the host if needed (also used by `ambient dev`).
pub async fn new_join_token(
    state: &AppState,
    name: &str,
) -> Result<(HostCreated, StatusCode), ApiError> {
    check_host_name(name)?;
    let now = state.clock.now();
    let existing = state.store.get_host(name).await?;
    let secret = crypto::random::random_token(32);
    let expires = now.plus_secs(JOIN_TOKEN_LIFETIME_SECS);
    let record = HostRecord {
        id: name.to_owned(),
        state: match existing.as_ref().map(|host| host.state.as_str()) {
            Some("active") => "active".to_owned(),
            _ => "pending".to_owned(),
        },
        join_token_hash: Some(state.hasher.hash(secret.as_bytes()).to_vec()),
        join_token_expires_at: Some(expires.millis()),
        certificate_sha256: existing.as_ref().and_then(|host| host.certificate_sha256.clone()),
        certificate_not_after: existing.as_ref().and_then(|host| host.certificate_not_after),
        created_at: existing.as_ref().map_or(now.millis(), |host| host.created_at),
        updated_at: now.millis(),
    };
    state.store.apply(vec![Write::PutHost(record.clone())]).await?;
    state.changed();
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        HostCreated {
            name: name.to_owned(),
            state: record.state,
            join_token: format!("{name}.{secret}"),
            join_token_expires_on: rfc3339(expires),
        },
        status,
    ))
}

async fn host_info(state: &AppState, host: &HostRecord) -> Result<HostInfo, ApiError> {
    let placed = hosted(state, &host.id).await?;
    let stored_faults = faults::load(state, &host.id).await?;
    let mut warnings = Vec::new();
    let mut resource_faults = std::collections::BTreeMap::new();
    for resource in &placed {
        let settings = resources::workload::AmbientSettings::of(resource)
            .map_err(crate::arm::from_resources)?;
        if settings.workload_selectors.is_none() {
            warnings.push(format!(
                "{}: no workload selectors; any local process can use its identities",
                resource.id
            ));
        }
        if let Some(own) = stored_faults.resources.get(resource.key()) {
            resource_faults.insert(resource.id.as_str().to_owned(), own.clone());
        }
    }
    let resources = placed.iter().map(|resource| resource.id.as_str().to_owned()).collect();
    let last_contact = state
        .store
        .get_setting(&format!("{LAST_CONTACT_SETTING_PREFIX}{}", host.id))
        .await?
        .and_then(|millis| millis.parse::<i64>().ok())
        .map(|millis| rfc3339(domain::UnixTime::from_millis(millis)));
    Ok(HostInfo {
        name: host.id.clone(),
        state: host.state.clone(),
        certificate_expires_on: host
            .certificate_not_after
            .map(|at| rfc3339(domain::UnixTime::from_millis(at))),
        last_contact,
        resources,
        faults: stored_faults.host,
        resource_faults,
        warnings,
    })
}

pub async fn list_hosts(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/read").await?;
    let mut value = Vec::new();
    for host in state.store.list_hosts().await? {
        value.push(host_info(&state, &host).await?);
    }
    Ok(Json(serde_json::json!({"value": value})).into_response())
}

pub(crate) async fn find_host(state: &AppState, name: &str) -> Result<HostRecord, ApiError> {
    state.store.get_host(name).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "HostNotFound",
            format!("The host '{name}' does not exist."),
        )
    })
}

pub async fn get_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/read").await?;
    let host = find_host(&state, &name).await?;
    Ok(Json(host_info(&state, &host).await?).into_response())
}

/// Revokes a host: it gets nothing more (its certificate is refused and tokens are refused).
pub async fn revoke_host(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin(&state, &headers, "Ambient.Hosting/hosts/revoke/action").await?;
    let mut host = find_host(&state, &name).await?;
    host.state = "revoked".to_owned();
    host.join_token_hash = None;
    host.join_token_expires_at = None;
    host.updated_at = state.clock.now().millis();
    state.store.apply(vec![Write::PutHost(host.clone())]).await?;
    state.changed();
    tracing::info!(host = %name, "host revoked");
    Ok(Json(host_info(&state, &host).await?).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointsQuery {
    resource_id: String,
}

/// Where a resource's metadata endpoints are, with its App Service secret: what `ambient run`
/// needs. Requires write access to the resource (whoever may change it may act as it).
pub async fn resource_endpoints(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EndpointsQuery>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, management_audiences(&state))?;
    let id = ResourceId::parse(&query.resource_id)
        .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
    let kind = id
        .resource_type()
        .and_then(resources::types::lookup)
        .filter(|known| known.kind == resources::Kind::Compute);
    let Some(kind) = kind else {
        return Err(ApiError::bad_request(
            "InvalidResourceType",
            format!("'{id}' is not a compute resource that can run workloads."),
        ));
    };
    authorize(&state, &caller, &format!("{}/write", kind.name), ActionKind::Control, &id).await?;
    let row = state.store.get_resource(id.key()).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!("The resource '{id}' was not found."),
        )
    })?;
    let host = row.host_id.clone().unwrap_or_default();
    let status: Option<HostStatus> = state
        .store
        .get_setting(&format!("{STATUS_SETTING_PREFIX}{host}"))
        .await?
        .and_then(|json| serde_json::from_str(&json).ok());
    let endpoint = status.as_ref().and_then(|status| status.endpoints.get(&row.key).cloned());
    let resource = resources::Resource::from_record(&row).map_err(crate::arm::from_resources)?;
    let settings =
        resources::workload::AmbientSettings::of(&resource).map_err(crate::arm::from_resources)?;
    let mut answer = serde_json::json!({
        "resourceId": row.id,
        "hostId": host,
        "endpoint": endpoint,
        "serviceFabricThumbprint": status.as_ref().and_then(|status| status.service_fabric_thumbprint.clone()),
        "serviceFabricCa": status.as_ref().and_then(|status| status.service_fabric_ca_pem.clone()),
        "imds": status.and_then(|status| status.imds),
        "identityHeader": identity_header(&state, &row.key),
    });
    if let Some(flavour) = settings.identity_flavour {
        answer["identityFlavour"] = serde_json::json!(flavour_of(flavour).as_str());
    }
    if let Some(selectors) = &settings.workload_selectors {
        answer["workloadSelectors"] =
            serde_json::to_value(selectors_of(selectors)).map_err(ApiError::internal)?;
    }
    Ok(Json(answer).into_response())
}

/// The per-resource App Service secret, derived from the master key so every node agrees.
fn identity_header(state: &AppState, resource_key: &str) -> String {
    state
        .identity_headers
        .hash(resource_key.as_bytes())
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

// --- Enrollment and renewal -----------------------------------------------------------------

/// `POST /hosting/enroll`: a join token and a CSR in, a client certificate out.
pub async fn enroll(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let request: EnrollRequest = json(&body)?;
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidJoinToken",
            "The join token is invalid, expired or already used.",
        )
    };
    let (token_host, secret) = request.join_token.split_once('.').ok_or_else(refused)?;
    if token_host != request.host {
        return Err(refused());
    }
    let Some(mut host) = state.store.get_host(&request.host).await? else {
        let _ = state.hasher.verify(secret.as_bytes(), &[0u8; 32]);
        return Err(refused());
    };
    let now = state.clock.now();
    let valid = host.state != "revoked"
        && host.join_token_expires_at.is_some_and(|at| at > now.millis())
        && host
            .join_token_hash
            .as_deref()
            .is_some_and(|hash| state.hasher.verify(secret.as_bytes(), hash));
    if !valid {
        tracing::info!(host = %request.host, "enrollment refused");
        return Err(refused());
    }
    let issued = sign(&state, &request.csr, &host.id)?;
    host.state = "active".to_owned();
    host.join_token_hash = None;
    host.join_token_expires_at = None;
    host.certificate_sha256 = Some(issued.1.clone());
    host.certificate_not_after = Some(issued.0.not_after * 1000);
    host.updated_at = now.millis();
    state.store.apply(vec![Write::PutHost(host)]).await?;
    tracing::info!(host = %request.host, "host enrolled");
    Ok(Json(issued.0).into_response())
}

/// `POST /hosting/renew`: a new certificate for a new key, before the current one expires.
pub async fn renew(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerCertificates>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut host = agent_host(&state, peer).await?;
    let request: RenewRequest = json(&body)?;
    let issued = sign(&state, &request.csr, &host.id)?;
    host.certificate_sha256 = Some(issued.1.clone());
    host.certificate_not_after = Some(issued.0.not_after * 1000);
    host.updated_at = state.clock.now().millis();
    state.store.apply(vec![Write::PutHost(host)]).await?;
    Ok(Json(issued.0).into_response())
}

fn sign(
    state: &AppState,
    csr: &str,
    host: &str,
) -> Result<(IssuedHostCertificate, String), ApiError> {
    let lifetime = state.host_certificate_lifetime_secs;
    let signed = state.ca.sign_csr(csr, host, state.clock.now(), lifetime).map_err(|error| {
        ApiError::bad_request(
            "InvalidCsr",
            format!("The certificate signing request is not usable: {error}"),
        )
    })?;
    Ok((
        IssuedHostCertificate {
            certificate: signed.cert_pem,
            ca_certificate: state.ca.cert_pem().to_owned(),
            not_after: signed.not_after.secs(),
            lifetime_secs: lifetime,
        },
        signed.sha256_fingerprint_hex,
    ))
}

/// The host a client certificate names, if it exists and is not revoked.
async fn agent_host(
    state: &AppState,
    peer: Option<axum::Extension<PeerCertificates>>,
) -> Result<HostRecord, ApiError> {
    let unauthenticated = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ClientCertificateRequired",
            "This endpoint requires the host's client certificate.",
        )
    };
    let axum::Extension(PeerCertificates(chain)) = peer.ok_or_else(unauthenticated)?;
    let leaf = chain.first().ok_or_else(unauthenticated)?;
    let info = crypto::pki::certificate_info(leaf.as_ref()).map_err(|_| unauthenticated())?;
    let name = info.subject_cn.ok_or_else(unauthenticated)?;
    let host = state.store.get_host(&name).await?.ok_or_else(unauthenticated)?;
    if host.state == "revoked" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "HostRevoked",
            format!("The host '{name}' has been revoked."),
        ));
    }
    if host.state != "active" {
        return Err(unauthenticated());
    }
    touch(state, &host.id).await;
    Ok(host)
}

/// How often a host's last contact is written, at most, per node.
pub const LAST_CONTACT_WRITE_MILLIS: i64 = 60_000;
const LAST_CONTACT_SETTING_PREFIX: &str = "host-seen/";

/// Records that `host`'s agent called, at most once a minute per host and node.
async fn touch(state: &AppState, host: &str) {
    let now = state.clock.now();
    let due = state.host_contacts.get(&host.to_owned(), now).is_none();
    if due {
        state.host_contacts.insert(host.to_owned(), (), now);
        let write = Write::PutSetting {
            name: format!("{LAST_CONTACT_SETTING_PREFIX}{host}"),
            value: now.millis().to_string(),
        };
        if let Err(error) = state.store.apply(vec![write]).await {
            tracing::debug!(%error, host, "could not record the host's last contact");
        }
    }
}

// --- Watch and status -----------------------------------------------------------------------

#[derive(Deserialize)]
pub struct WatchQuery {
    version: Option<String>,
    wait: Option<u64>,
}

/// `GET /hosting/assignments?version=V&wait=S`: the resources on the calling host, answered when
/// they differ from `version` or after `wait` seconds.
pub async fn assignments(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerCertificates>>,
    Query(query): Query<WatchQuery>,
) -> Result<Response, ApiError> {
    let host = agent_host(&state, peer).await?;
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(WATCH_WAIT_SECS_MAX));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notified = state.changes.notified();
        let current = snapshot(&state, &host.id).await?;
        let unchanged = query.version.as_deref() == Some(current.version.as_str());
        if !unchanged || tokio::time::Instant::now() >= deadline {
            return Ok(Json(current).into_response());
        }
        // Woken by a write on this node, or by another node's write through the change
        // counter (`jobs::follow_changes`); otherwise the watch answers at its deadline.
        let _ = tokio::time::timeout_at(deadline, notified).await;
        // A revoked host stops getting answers.
        if state.store.get_host(&host.id).await?.is_none_or(|row| row.state != "active") {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "HostRevoked",
                format!("The host '{}' has been revoked.", host.id),
            ));
        }
    }
}

async fn hosted(state: &AppState, host: &str) -> Result<Vec<resources::Resource>, ApiError> {
    let filter = ResourceFilter { host_id: Some(host.to_owned()), ..ResourceFilter::default() };
    resources::load::all(state.store.as_ref(), &filter).await.map_err(crate::arm::from_resources)
}

/// A compute resource as its host's agent sees it: its identities, each with its client id, its
/// flavour and workload selectors, and `faults`, the faults injected on it.
pub async fn hosted_resource(
    state: &AppState,
    resource: &resources::Resource,
    faults: Option<Faults>,
) -> Result<HostedResource, ApiError> {
    let settings =
        resources::workload::AmbientSettings::of(resource).map_err(crate::arm::from_resources)?;
    let block = resource.identity.clone().unwrap_or_default();
    let system = match &block.system {
        Some(system) => {
            state.store.get_principal(&system.principal_id).await?.map(|principal| IdentityRef {
                principal_id: principal.object_id,
                client_id: principal.app_id,
                resource_id: None,
            })
        }
        None => None,
    };
    let user = block
        .user
        .iter()
        .map(|user| IdentityRef {
            principal_id: user.principal_id.clone(),
            client_id: user.client_id.clone(),
            resource_id: Some(user.id.as_str().to_owned()),
        })
        .collect();
    Ok(HostedResource {
        resource_id: resource.id.as_str().to_owned(),
        resource_key: resource.key().to_owned(),
        name: resource.name.clone(),
        resource_type: resource.resource_type.name.to_owned(),
        subscription_id: resource.subscription_id.clone(),
        resource_group: resource.id.resource_group().unwrap_or_default().to_owned(),
        location: resource.location.clone(),
        vm_id: resource
            .properties
            .get("vmId")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        identity_header: identity_header(state, resource.key()),
        system,
        user,
        identity_flavour: settings.identity_flavour.map(flavour_of),
        workload_selectors: settings.workload_selectors.as_ref().map(selectors_of),
        faults,
    })
}

fn flavour_of(flavour: resources::workload::IdentityFlavour) -> IdentityFlavour {
    use resources::workload::IdentityFlavour as Typed;
    match flavour {
        Typed::Imds => IdentityFlavour::Imds,
        Typed::AppService => IdentityFlavour::AppService,
        Typed::Arc => IdentityFlavour::Arc,
        Typed::ServiceFabric => IdentityFlavour::ServiceFabric,
        Typed::Ml => IdentityFlavour::Ml,
        Typed::CloudShell => IdentityFlavour::CloudShell,
        Typed::Workload => IdentityFlavour::Workload,
    }
}

fn selectors_of(selectors: &resources::workload::WorkloadSelectors) -> WorkloadSelectors {
    WorkloadSelectors {
        user: selectors.user.clone(),
        group: selectors.group.clone(),
        executable: selectors.executable.clone(),
        executable_sha256: selectors.executable_sha256.clone(),
        systemd_unit: selectors.systemd_unit.clone(),
        cgroup: selectors.cgroup.clone(),
        container_id: selectors.container_id.clone(),
    }
}

async fn snapshot(state: &AppState, host: &str) -> Result<Assignments, ApiError> {
    let stored_faults = faults::load(state, host).await?;
    let mut hosted_resources = Vec::new();
    for resource in hosted(state, host).await? {
        let effective = stored_faults.effective(resource.key());
        hosted_resources.push(hosted_resource(state, &resource, effective).await?);
    }
    let digest = crypto::hash::sha256(
        serde_json::to_string(&(&hosted_resources, &stored_faults.host))
            .unwrap_or_default()
            .as_bytes(),
    );
    let version = digest.iter().take(12).map(|byte| format!("{byte:02x}")).collect();
    Ok(Assignments {
        version,
        tenant_id: state.deployment.tenant_id.clone(),
        resources: hosted_resources,
        faults: stored_faults.host,
    })
}

/// `POST /hosting/status`: the agent reports where it serves each resource.
pub async fn status(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerCertificates>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let host = agent_host(&state, peer).await?;
    let status: HostStatus = json(&body)?;
    if status.endpoints.len() > 10_000 {
        return Err(ApiError::bad_request("InvalidStatus", "too many endpoints"));
    }
    let value = serde_json::to_string(&status).map_err(ApiError::internal)?;
    state
        .store
        .apply(vec![Write::PutSetting {
            name: format!("{STATUS_SETTING_PREFIX}{}", host.id),
            value,
        }])
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- Tokens ---------------------------------------------------------------------------------

fn refusal(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(TokenRefusal { error: error.to_owned(), error_description: description.to_owned() }),
    )
        .into_response()
}

/// `POST /hosting/token`: checks placement and attachment now, issues, and logs the sign-in.
pub async fn token(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerCertificates>>,
    body: Bytes,
) -> Response {
    let host = match agent_host(&state, peer).await {
        Ok(host) => host,
        Err(error) => return error.into_response(),
    };
    let request: TokenRequest = match json(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let outcome = match &request.refused {
        // The agent refused the workload; only the sign-in is recorded.
        Some(reason) => Err((
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("Workload attestation refused the caller: {}", bounded(reason)),
        )),
        None => issue_for(&state, &host.id, &request).await,
    };
    let (principal_id, app_id, identity_id) = match &outcome {
        Ok(issued) => (
            Some(issued.object_id.clone()),
            Some(issued.client_id.clone()),
            Some(issued.identity_resource_id.clone()),
        ),
        Err(_) => (None, request.client_id.clone(), request.identity_resource_id.clone()),
    };
    let (success, error_code, failure_reason) = match &outcome {
        Ok(_) => (true, None, None),
        Err((_, _, description)) => (false, Some(50001), Some(description.clone())),
    };
    let mut event = issuer::SignInEvent::new(
        state.clock.now(),
        state.deployment.tenant_id.clone(),
        "ManagedIdentity",
        "managedIdentity",
    );
    event.principal_id = principal_id;
    event.app_id = app_id;
    event.principal_display_name = identity_id;
    event.resource = Some(request.audience.clone());
    event.success = success;
    event.error_code = error_code;
    event.failure_reason = failure_reason;
    event.client_ip = request.client_ip.clone();
    event.host_id = Some(host.id.clone());
    event.compute_resource_id = Some(request.resource_id.clone());
    event.endpoint = Some(request.endpoint.clone());
    state.sign_in_log.record(event).await;
    match outcome {
        Ok(issued) => Json(issued).into_response(),
        Err((status, error, description)) => {
            tracing::info!(host = %host.id, resource = %issuer::bounded_text(&request.resource_id), %description, "managed identity token refused");
            refusal(status, error, &description)
        }
    }
}

type Refusal = (StatusCode, &'static str, String);

/// Checks that the resource is placed on `host` now and holds the identity the request selects
/// (with the same selection the agent applies), then issues.
async fn issue_for(
    state: &AppState,
    host: &str,
    request: &TokenRequest,
) -> Result<api_types::hosting::IssuedToken, Refusal> {
    let internal = |error: &dyn std::fmt::Display, unavailable: bool| {
        if unavailable {
            tracing::warn!(%error, "managed identity issuance: database unavailable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The service is temporarily unavailable. Retry the request.".to_owned(),
            );
        }
        tracing::error!(%error, "managed identity issuance failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Failed to retrieve token from the Active directory".to_owned(),
        )
    };
    let not_found =
        || (StatusCode::BAD_REQUEST, "invalid_request", "Identity not found".to_owned());
    if request.audience.trim().is_empty() {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing".to_owned(),
        ));
    }
    if request.audience.chars().count() > domain::limits::AUDIENCE_CHARS_MAX {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            format!(
                "The resource is not a valid resource identifier: resource identifiers are at most {} characters.",
                domain::limits::AUDIENCE_CHARS_MAX
            ),
        ));
    }
    let id = ResourceId::parse(&request.resource_id).map_err(|_| not_found())?;
    let resource = resources::load::resource(state.store.as_ref(), &id).await.map_err(|error| {
        let unavailable = matches!(&error, resources::Error::Store(store::Error::Unavailable(_)));
        internal(&error, unavailable)
    })?;
    let Some(resource) = resource.filter(|resource| resource.host.as_deref() == Some(host)) else {
        return Err((
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("The resource '{}' is not placed on host '{host}'.", request.resource_id),
        ));
    };
    let hosted = hosted_resource(state, &resource, None).await.map_err(|error| {
        let unavailable = error.status == StatusCode::SERVICE_UNAVAILABLE;
        internal(&error.message, unavailable)
    })?;
    let identity = hosted.select(&request.selector()).ok_or_else(not_found)?;
    let identity_resource_id =
        identity.resource_id.clone().unwrap_or_else(|| resource.id.as_str().to_owned());
    let issued = state
        .issuer
        .issue(&issuer::TokenRequest {
            object_id: identity.principal_id.clone(),
            app_id: identity.client_id.clone(),
            audience: request.audience.clone(),
            version: issuer::TokenVersion::V1,
            credential: issuer::CredentialKind::ManagedIdentity,
            managed_identity_resource_id: Some(identity_resource_id.clone()),
            compute_resource_id: Some(resource.id.as_str().to_owned()),
            // A host may ask for shorter tokens (fault injection, workload assertions), not
            // for longer ones.
            lifetime_secs: request.lifetime_secs.map(|secs| {
                secs.clamp(
                    domain::limits::TOKEN_LIFETIME_SECS_MIN,
                    domain::limits::MANAGED_IDENTITY_TOKEN_LIFETIME_SECS,
                )
            }),
        })
        .map_err(|error| internal(&error, false))?;
    Ok(api_types::hosting::IssuedToken {
        access_token: issued.access_token,
        expires_on: issued.expires_on,
        expires_in: issued.expires_in,
        not_before: issued.not_before,
        resource: request.audience.clone(),
        client_id: identity.client_id.clone(),
        object_id: identity.principal_id.clone(),
        identity_resource_id,
    })
}

/// At most [`REFUSAL_REASON_CHARS_MAX`] characters of an agent's refusal reason, for the log.
fn bounded(reason: &str) -> String {
    reason.chars().take(REFUSAL_REASON_CHARS_MAX).collect()
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(
            "InvalidRequestContent",
            format!("The request body is not valid: {error}"),
        )
    })
}
