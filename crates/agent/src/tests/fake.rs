//! A fake of the server's hosting API (`/hosting/...`), served over real TLS from a throwaway
//! CA like the real server, with client certificates verified against that CA (optional, as
//! enrollment has none). It keeps the assignments in memory, long-polls like the contract says,
//! signs CSRs, hands out unsigned JWT-shaped tokens and records every call for assertions.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::hosting::{
    Assignments, EnrollRequest, HostStatus, HostedResource, IdentityRef, IssuedHostCertificate,
    IssuedToken, RenewRequest, TokenRefusal, TokenRequest,
};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use crypto::pki::CertificateAuthority;
use domain::Clock;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub(crate) const HOST: &str = "host-1";
pub(crate) const JOIN_TOKEN: &str = "join-token-secret";
pub(crate) const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

pub(crate) struct FakeServer {
    pub(crate) url: String,
    pub(crate) ca_pem: String,
    state: Arc<FakeState>,
    task: JoinHandle<()>,
}

struct FakeState {
    ca: CertificateAuthority,
    cert_lifetime_secs: i64,
    changed: tokio::sync::watch::Sender<u64>,
    calls: Mutex<Calls>,
}

/// What the fake holds and saw.
#[derive(Default)]
pub(crate) struct Calls {
    pub(crate) resources: Vec<HostedResource>,
    pub(crate) version: u64,
    pub(crate) revoked: bool,
    /// When set, `/hosting/token` answers this status.
    pub(crate) token_failure: Option<StatusCode>,
    pub(crate) enrollments: usize,
    pub(crate) renewals: usize,
    /// Client certificates issued, DER, latest last.
    pub(crate) issued_certificates: Vec<Vec<u8>>,
    pub(crate) token_requests: Vec<TokenRequest>,
    /// The client certificate each token request came with, DER.
    pub(crate) token_request_certificates: Vec<Vec<u8>>,
    pub(crate) statuses: Vec<HostStatus>,
    /// The version last served by the watch when each status arrived.
    pub(crate) reported_version: Option<u64>,
    last_served_version: Option<u64>,
}

/// The leaf certificate the TLS client presented, if any.
#[derive(Clone)]
struct PeerCertificate(Option<Vec<u8>>);

#[derive(serde::Deserialize)]
struct WatchQuery {
    version: String,
    wait: u64,
}

impl FakeServer {
    /// Starts a fake issuing client certificates valid `cert_lifetime_secs`.
    pub(crate) async fn start(cert_lifetime_secs: i64) -> FakeServer {
        let now = domain::SystemClock.now();
        let ca = CertificateAuthority::generate("fake ambient ca", now).unwrap();
        let server_cert = ca
            .issue_server_certificate(
                &["localhost".to_owned()],
                &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
                now,
                1,
            )
            .unwrap();
        let ca_pem = ca.cert_pem().to_owned();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(server_cert.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(server_cert.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let state = Arc::new(FakeState {
            ca,
            cert_lifetime_secs,
            changed: tokio::sync::watch::channel(0).0,
            calls: Mutex::new(Calls::default()),
        });
        let app = Router::new()
            .route("/hosting/enroll", post(enroll))
            .route("/hosting/renew", post(renew))
            .route("/hosting/assignments", get(assignments))
            .route("/hosting/status", post(status))
            .route("/hosting/token", post(token))
            .with_state(state.clone());
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let peer = tls.get_ref().1.peer_certificates().and_then(|chain| chain.first());
                    let app = app.layer(Extension(PeerCertificate(peer.map(|c| c.to_vec()))));
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakeServer { url: format!("https://localhost:{port}"), ca_pem, state, task }
    }

    /// Reads or changes what the fake holds.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Calls) -> T) -> T {
        f(&mut self.state.calls.lock().unwrap())
    }

    /// Replaces the host's resources; returns the new version.
    pub(crate) fn set_resources(&self, resources: Vec<HostedResource>) -> u64 {
        let version = self.with(|calls| {
            calls.resources = resources;
            calls.version += 1;
            calls.version
        });
        self.state.changed.send_replace(version);
        version
    }

    /// Revokes the host: every call with a certificate answers 403 from now on.
    pub(crate) fn revoke(&self) {
        self.with(|calls| calls.revoked = true);
        self.state.changed.send_modify(|_| {});
    }

    /// Waits until the agent has reported its status after applying `version`.
    pub(crate) async fn wait_reported(&self, version: u64) {
        for _ in 0..200 {
            if self.with(|calls| calls.reported_version.is_some_and(|seen| seen >= version)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the agent did not report version {version}");
    }

    pub(crate) fn token_request_count(&self) -> usize {
        self.with(|calls| calls.token_requests.len())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn enroll(
    State(state): State<Arc<FakeState>>,
    Json(request): Json<EnrollRequest>,
) -> Response {
    if request.join_token != JOIN_TOKEN || request.host != HOST {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    state.calls.lock().unwrap().enrollments += 1;
    issue(&state, &request.csr)
}

async fn renew(
    State(state): State<Arc<FakeState>>,
    Extension(peer): Extension<PeerCertificate>,
    Json(request): Json<RenewRequest>,
) -> Response {
    if let Err(status) = check_peer(&state, &peer) {
        return status.into_response();
    }
    state.calls.lock().unwrap().renewals += 1;
    issue(&state, &request.csr)
}

async fn assignments(
    State(state): State<Arc<FakeState>>,
    Extension(peer): Extension<PeerCertificate>,
    Query(query): Query<WatchQuery>,
) -> Response {
    let mut changed = state.changed.subscribe();
    if let Err(status) = check_peer(&state, &peer) {
        return status.into_response();
    }
    let current = state.calls.lock().unwrap().version;
    if query.version == format!("v{current}") {
        let wait = Duration::from_secs(query.wait.min(30));
        let _ = tokio::time::timeout(wait, changed.changed()).await;
    }
    if let Err(status) = check_peer(&state, &peer) {
        return status.into_response();
    }
    let mut calls = state.calls.lock().unwrap();
    calls.last_served_version = Some(calls.version);
    Json(Assignments {
        version: format!("v{}", calls.version),
        tenant_id: TENANT.to_owned(),
        resources: calls.resources.clone(),
        faults: None,
    })
    .into_response()
}

async fn status(
    State(state): State<Arc<FakeState>>,
    Extension(peer): Extension<PeerCertificate>,
    Json(status): Json<HostStatus>,
) -> Response {
    if let Err(status) = check_peer(&state, &peer) {
        return status.into_response();
    }
    let mut calls = state.calls.lock().unwrap();
    calls.statuses.push(status);
    calls.reported_version = calls.last_served_version;
    StatusCode::NO_CONTENT.into_response()
}

async fn token(
    State(state): State<Arc<FakeState>>,
    Extension(peer): Extension<PeerCertificate>,
    Json(request): Json<TokenRequest>,
) -> Response {
    if let Err(status) = check_peer(&state, &peer) {
        return status.into_response();
    }
    let mut calls = state.calls.lock().unwrap();
    calls.token_requests.push(request.clone());
    calls.token_request_certificates.push(peer.0.clone().unwrap_or_default());
    if let Some(status) = calls.token_failure {
        return refusal(status, "server_error", "configured to fail");
    }
    let resource = calls.resources.iter().find(|r| r.resource_key == request.resource_id);
    let Some(resource) = resource else {
        return refusal(StatusCode::FORBIDDEN, "forbidden", "resource not placed on this host");
    };
    let mut identities = resource.system.iter().chain(resource.user.iter());
    let identity: Option<&IdentityRef> =
        match (&request.client_id, &request.object_id, &request.identity_resource_id) {
            (Some(id), None, None) => identities.find(|i| &i.client_id == id),
            (None, Some(id), None) => identities.find(|i| &i.principal_id == id),
            (None, None, Some(id)) => identities.find(|i| i.resource_id.as_ref() == Some(id)),
            (None, None, None) => resource.system.as_ref().or(resource.user.first()),
            _ => None,
        };
    let Some(identity) = identity else {
        return refusal(StatusCode::BAD_REQUEST, "invalid_request", "Identity not found");
    };
    let now = domain::SystemClock.now().secs();
    let claims = serde_json::json!({
        "tid": TENANT,
        "oid": identity.principal_id,
        "aud": request.audience,
        "n": calls.token_requests.len(),
    });
    let access_token =
        format!("eyJhbGciOiJub25lIn0.{}.c2ln", base64url(claims.to_string().as_bytes()));
    Json(IssuedToken {
        access_token,
        expires_on: now + 3600,
        expires_in: 3600,
        not_before: now,
        resource: request.audience,
        client_id: identity.client_id.clone(),
        object_id: identity.principal_id.clone(),
        identity_resource_id: identity.resource_id.clone().unwrap_or_default(),
    })
    .into_response()
}

fn check_peer(state: &FakeState, peer: &PeerCertificate) -> Result<(), StatusCode> {
    match peer.0 {
        None => Err(StatusCode::UNAUTHORIZED),
        Some(_) if state.calls.lock().unwrap().revoked => Err(StatusCode::FORBIDDEN),
        Some(_) => Ok(()),
    }
}

fn issue(state: &FakeState, csr: &str) -> Response {
    let now = domain::SystemClock.now();
    let signed = state.ca.sign_csr(csr, HOST, now, state.cert_lifetime_secs).unwrap();
    let der = CertificateDer::from_pem_slice(signed.cert_pem.as_bytes()).unwrap().to_vec();
    state.calls.lock().unwrap().issued_certificates.push(der);
    Json(IssuedHostCertificate {
        certificate: signed.cert_pem,
        ca_certificate: state.ca.cert_pem().to_owned(),
        not_after: signed.not_after.secs(),
        lifetime_secs: state.cert_lifetime_secs,
    })
    .into_response()
}

fn refusal(status: StatusCode, error: &str, description: &str) -> Response {
    let body = TokenRefusal { error: error.to_owned(), error_description: description.to_owned() };
    (status, Json(body)).into_response()
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
