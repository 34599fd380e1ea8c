//! Test fakes: a token endpoint that behaves like Entra's, served over real HTTPS on loopback,
//! and the test PKI it needs.
//!
//! The credentials accept only `https` authorities (as the Azure SDKs do), and the tests keep
//! that rule rather than opening a test-only `http` door: [`FakeEntra`] serves TLS with a
//! certificate for `127.0.0.1` issued by a test CA, and tests trust that CA through
//! [`ClientOptions::extra_root_certificates_pem`], the same path a user of a local CA takes.
//!
//! The fake checks what Entra checks (client secret, client assertion signature, thumbprint,
//! audience, issuer, subject, time window, `/.default` scope), records every request, and
//! answers with Entra's error bodies and `AADSTS` codes.
//!
//! [`FakeManagedIdentity`] fakes the managed-identity endpoints (IMDS, App Service, Azure Arc,
//! the legacy endpoint, Cloud Shell) over plain HTTP on loopback, as the real ones are served,
//! and Service Fabric's over HTTPS with a self-signed certificate. Tests point credentials at it
//! explicitly, so no test ever sends a request to 169.254.169.254.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

use crate::ClientOptions;
use crate::clock::{Clock, FakeClock};
use crate::entra::JWT_BEARER_ASSERTION_TYPE;

/// The test PKI, generated once per test binary (RSA key generation is the slow part).
pub(crate) static PKI: LazyLock<TestPki> = LazyLock::new(TestPki::generate);

/// A CA, a TLS server certificate it issued for `127.0.0.1`, and an application's client
/// certificate (RSA, also issued by the CA so a chain exists).
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    pub(crate) ca_der: Vec<u8>,
    server_cert_der: Vec<u8>,
    server_key_der: Vec<u8>,
    pub(crate) client: TestClientCertificate,
}

pub(crate) struct TestClientCertificate {
    pub(crate) cert_der: Vec<u8>,
    pub(crate) cert_pem: String,
    /// PKCS#8 `PRIVATE KEY` PEM.
    pub(crate) key_pem: String,
    pub(crate) key_pkcs8_der: Vec<u8>,
    /// The PKCS#1 `RSAPublicKey` DER of the certified key.
    pub(crate) public_key: Vec<u8>,
}

impl TestPki {
    fn generate() -> TestPki {
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.distinguished_name.push(DnType::CommonName, "identity test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

        let client_key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let mut client_params = CertificateParams::new(Vec::new()).unwrap();
        client_params.distinguished_name.push(DnType::CommonName, "identity test application");
        let client_cert = client_params.signed_by(&client_key, &ca).unwrap();

        TestPki {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            server_cert_der: server_cert.der().to_vec(),
            server_key_der: server_key.serialize_der(),
            client: TestClientCertificate {
                cert_der: client_cert.der().to_vec(),
                cert_pem: client_cert.pem(),
                key_pem: client_key.serialize_pem(),
                key_pkcs8_der: client_key.serialize_der(),
                public_key: client_key.der_bytes().to_vec(),
            },
        }
    }

    /// Client options that trust the test CA and point at `authority`.
    pub(crate) fn client_options(&self, authority: &str) -> ClientOptions {
        ClientOptions {
            authority_host: authority.to_owned(),
            extra_root_certificates_pem: vec![self.ca_pem.clone().into_bytes()],
            ..ClientOptions::default()
        }
    }
}

/// base64url(SHA-1(der)), computed here independently of the code under test.
pub(crate) fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der))
}

/// Decodes one base64url JWT segment as JSON.
pub(crate) fn jwt_json(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// A running fake Entra token endpoint. Stops when dropped.
pub(crate) struct FakeEntra {
    /// `https://127.0.0.1:{port}`.
    pub(crate) authority: String,
    state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub(crate) struct RecordedRequest {
    pub(crate) tenant: String,
    pub(crate) form: BTreeMap<String, String>,
}

/// How a registered application authenticates.
enum AppCredential {
    Secret(String),
    Certificate {
        public_key: Vec<u8>,
        thumbprint: String,
    },
    /// A federated identity credential, reduced to the one assertion it accepts.
    Federated {
        assertion: String,
    },
}

#[derive(Clone)]
struct Behaviour {
    expires_in: i64,
    refresh_in: Option<i64>,
    outage: bool,
}

struct FakeState {
    clock: Arc<FakeClock>,
    authority: String,
    applications: Mutex<HashMap<String, AppCredential>>,
    requests: Mutex<Vec<RecordedRequest>>,
    behaviour: Mutex<Behaviour>,
    /// When set, each request waits for a permit before answering.
    hold: Mutex<Option<Arc<Semaphore>>>,
    arrived: Notify,
}

impl FakeEntra {
    /// Starts the fake on `127.0.0.1:0`. Tokens live `3599` s unless told otherwise.
    pub(crate) async fn start(clock: Arc<FakeClock>) -> FakeEntra {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = format!("https://{}", tcp.local_addr().unwrap());
        let state = Arc::new(FakeState {
            clock,
            authority: authority.clone(),
            applications: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            behaviour: Mutex::new(Behaviour { expires_in: 3599, refresh_in: None, outage: false }),
            hold: Mutex::new(None),
            arrived: Notify::new(),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(state.clone());
        let listener = TlsListener { tcp, acceptor: tls_acceptor() };
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeEntra { authority, state, server }
    }

    pub(crate) fn register_secret(&self, client_id: &str, secret: &str) {
        self.state
            .applications
            .lock()
            .unwrap()
            .insert(client_id.to_owned(), AppCredential::Secret(secret.to_owned()));
    }

    /// Registers an application by its certificate's public key (PKCS#1 DER) and thumbprint.
    pub(crate) fn register_certificate(
        &self,
        client_id: &str,
        public_key: &[u8],
        thumbprint: &str,
    ) {
        self.state.applications.lock().unwrap().insert(
            client_id.to_owned(),
            AppCredential::Certificate {
                public_key: public_key.to_vec(),
                thumbprint: thumbprint.to_owned(),
            },
        );
    }

    /// Registers an application that accepts exactly `assertion` as a federated client
    /// assertion (the fake does not validate external tokens; the real-server tests do).
    pub(crate) fn register_federated(&self, client_id: &str, assertion: &str) {
        self.state.applications.lock().unwrap().insert(
            client_id.to_owned(),
            AppCredential::Federated { assertion: assertion.to_owned() },
        );
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    pub(crate) fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    pub(crate) fn set_token_lifetime(&self, expires_in: i64, refresh_in: Option<i64>) {
        let mut behaviour = self.state.behaviour.lock().unwrap();
        behaviour.expires_in = expires_in;
        behaviour.refresh_in = refresh_in;
    }

    /// While on, every request fails with `500 temporarily_unavailable`.
    pub(crate) fn set_outage(&self, outage: bool) {
        self.state.behaviour.lock().unwrap().outage = outage;
    }

    /// From now on requests wait for a permit of the returned semaphore before answering.
    pub(crate) fn hold_requests(&self) -> Arc<Semaphore> {
        let semaphore = Arc::new(Semaphore::new(0));
        *self.state.hold.lock().unwrap() = Some(semaphore.clone());
        semaphore
    }

    /// Waits until a request has arrived (returns at once if one arrived unobserved).
    pub(crate) async fn request_arrived(&self) {
        self.state.arrived.notified().await;
    }
}

impl Drop for FakeEntra {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    tls_acceptor_for(PKI.server_cert_der.clone(), PKI.server_key_der.clone())
}

/// A TLS acceptor presenting `cert_der` alone, with its PKCS#8 key.
fn tls_acceptor_for(cert_der: Vec<u8>, key_pkcs8_der: Vec<u8>) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert_der.into()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key_pkcs8_der).into(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A TCP listener that completes the TLS handshake before handing the connection to axum.
/// Handshakes run one at a time, which is plenty for tests.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else { continue };
            // A client that rejects our certificate fails the handshake; wait for the next one.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

type Answer = (StatusCode, Json<Value>);

async fn token(
    State(state): State<Arc<FakeState>>,
    Path(tenant): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Answer {
    let number = {
        let mut requests = state.requests.lock().unwrap();
        requests.push(RecordedRequest { tenant: tenant.clone(), form: form.clone() });
        requests.len()
    };
    state.arrived.notify_one();
    let hold = state.hold.lock().unwrap().clone();
    if let Some(semaphore) = hold {
        semaphore.acquire().await.unwrap().forget();
    }
    let behaviour = state.behaviour.lock().unwrap().clone();
    if behaviour.outage {
        return entra_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable",
            "AADSTS50196: The server is temporarily unavailable.",
        );
    }
    if let Err(answer) = check_request(&state, &tenant, &form) {
        return answer;
    }
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": behaviour.expires_in,
        "ext_expires_in": behaviour.expires_in,
        "access_token": format!("fake-token-{number}"),
    });
    if let Some(refresh_in) = behaviour.refresh_in {
        body["refresh_in"] = json!(refresh_in);
    }
    (StatusCode::OK, Json(body))
}

fn check_request(
    state: &FakeState,
    tenant: &str,
    form: &BTreeMap<String, String>,
) -> Result<(), Answer> {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        ));
    }
    if !field("scope").ends_with("/.default") {
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
        ));
    }
    let client_id = field("client_id");
    let applications = state.applications.lock().unwrap();
    let Some(credential) = applications.get(client_id) else {
        return Err(entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!("AADSTS700016: Application with identifier '{client_id}' was not found."),
        ));
    };
    match credential {
        AppCredential::Secret(secret) => {
            if field("client_secret") != secret {
                return Err(entra_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    &format!(
                        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                ));
            }
        }
        AppCredential::Federated { assertion } => {
            if field("client_assertion_type") != JWT_BEARER_ASSERTION_TYPE
                || field("client_assertion") != assertion
            {
                return Err(entra_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "AADSTS70021: No matching federated identity record found for presented assertion.",
                ));
            }
        }
        AppCredential::Certificate { public_key, thumbprint } => {
            if field("client_assertion_type") != JWT_BEARER_ASSERTION_TYPE {
                return Err(entra_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required.",
                ));
            }
            let audience = format!("{}/{tenant}/oauth2/v2.0/token", state.authority);
            let now = state.clock.now_unix_secs();
            verify_assertion(
                field("client_assertion"),
                public_key,
                thumbprint,
                client_id,
                &audience,
                now,
            )
            .map_err(|(code, message)| {
                entra_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    &format!("{code}: {message}"),
                )
            })?;
        }
    }
    Ok(())
}

/// Checks a client assertion as Entra does; on failure, the AADSTS code and message.
fn verify_assertion(
    assertion: &str,
    public_key: &[u8],
    thumbprint: &str,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<(), (&'static str, String)> {
    let malformed =
        |why: &str| ("AADSTS50027", format!("JWT token is invalid or malformed: {why}"));
    let segments: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = segments[..] else {
        return Err(malformed("not three segments"));
    };
    let decode = |segment: &str| URL_SAFE_NO_PAD.decode(segment).map_err(|_| malformed("base64"));
    let header: Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| malformed("header"))?;
    let claims_json: Value =
        serde_json::from_slice(&decode(claims)?).map_err(|_| malformed("claims"))?;
    if header["alg"] != "RS256" {
        return Err(malformed("alg"));
    }
    if header["x5t"] != thumbprint {
        return Err((
            "AADSTS700027",
            "The certificate with identifier used to sign the client assertion is not registered on application.".to_owned(),
        ));
    }
    let signing_input = &assertion[..assertion.rfind('.').unwrap_or_default()];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(signing_input.as_bytes(), &decode(signature)?)
        .map_err(|_| {
            ("AADSTS700027", "Client assertion contains an invalid signature.".to_owned())
        })?;
    if claims_json["aud"] != audience {
        return Err((
            "AADSTS700021",
            format!("Client assertion audience claim does not match: {}", claims_json["aud"]),
        ));
    }
    if claims_json["iss"] != client_id || claims_json["sub"] != client_id {
        return Err((
            "AADSTS700023",
            "Client assertion issuer or subject is not the client id.".to_owned(),
        ));
    }
    let seconds = |name: &str| claims_json[name].as_i64().unwrap_or_default();
    if seconds("nbf") > now || seconds("exp") <= now {
        return Err((
            "AADSTS700024",
            "Client assertion is not within its valid time range.".to_owned(),
        ));
    }
    if claims_json["jti"].as_str().is_none_or(str::is_empty) {
        return Err(malformed("jti"));
    }
    Ok(())
}

fn entra_error(status: StatusCode, error: &str, description: &str) -> Answer {
    (
        status,
        Json(json!({
            "error": error,
            "error_description": format!("{description}\r\nTrace ID: 00000000-0000-0000-0000-000000000000"),
            "error_codes": [],
            "timestamp": "2024-01-01 00:00:00Z",
        })),
    )
}

/// A running fake of the managed-identity endpoints on loopback. Over plain HTTP, as the real
/// ones are: IMDS (`GET /metadata/identity/oauth2/token`, header `Metadata: true`), Azure Arc
/// (the same path with api-version `2020-06-01` and the key-file challenge, see
/// [`FakeManagedIdentity::arc_challenge`]), App Service (`GET /msi/token?api-version=2019-08-01`,
/// header `X-IDENTITY-HEADER`), the legacy endpoint (`GET /msi/token?api-version=2017-09-01`,
/// header `secret`) and Cloud Shell (`POST /cloudshell`, form `resource`, header
/// `Metadata: true`). Over HTTPS with a self-signed certificate
/// ([`FakeManagedIdentity::start_service_fabric`]): Service Fabric (`GET
/// /metadata/identity/oauth2/token?api-version=2019-07-01-preview`, header `Secret`). Stops when
/// dropped.
///
/// It refuses a request without its source's header as the real endpoints do, records every
/// request, answers scripted responses first (in order) and then tokens whose every field is a
/// string, as IMDS writes them (Service Fabric's `expires_on` is a number, as in its
/// documentation), echoing the user-assigned selector as IMDS and newer Arc agents do.
pub(crate) struct FakeManagedIdentity {
    /// `http://127.0.0.1:{port}`, or `https://...` for Service Fabric.
    pub(crate) base: String,
    /// For Service Fabric: the SHA-1 thumbprint of the server certificate, lower-case hex.
    pub(crate) thumbprint: Option<String>,
    /// For Service Fabric: the server certificate (DER).
    pub(crate) certificate_der: Option<Vec<u8>>,
    state: Arc<MiState>,
    server: tokio::task::JoinHandle<()>,
}

/// One request as the managed-identity fake received it.
#[derive(Clone, Debug)]
pub(crate) struct MiRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: BTreeMap<String, String>,
    /// Lower-cased names.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) form: BTreeMap<String, String>,
}

type MiAnswer = (StatusCode, Vec<(&'static str, String)>, String);

struct MiState {
    clock: Arc<FakeClock>,
    requests: Mutex<Vec<MiRequest>>,
    scripted: Mutex<std::collections::VecDeque<MiAnswer>>,
    /// Azure Arc: the realm of the challenge and the key expected back.
    arc: Mutex<Option<(String, String)>>,
    hold: Mutex<Option<Arc<Semaphore>>>,
    arrived: Notify,
}

impl FakeManagedIdentity {
    /// The secret the App Service, legacy and Service Fabric endpoints expect.
    pub(crate) const SECRET: &'static str = "fake-identity-header";

    /// Starts the plain-HTTP fake on `127.0.0.1:0`. Its own tokens live `86399` s.
    pub(crate) async fn start(clock: Arc<FakeClock>) -> FakeManagedIdentity {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", tcp.local_addr().unwrap());
        let (state, app) = mi_app(clock);
        let server = tokio::spawn(async move {
            axum::serve(tcp, app).await.unwrap();
        });
        FakeManagedIdentity { base, thumbprint: None, certificate_der: None, state, server }
    }

    /// Starts the fake over HTTPS on `127.0.0.1:0` with a fresh self-signed certificate for
    /// `sf-cluster.invalid` (not for `127.0.0.1`: Service Fabric clients check the thumbprint
    /// only), as a Service Fabric endpoint.
    pub(crate) async fn start_service_fabric(clock: Arc<FakeClock>) -> FakeManagedIdentity {
        let certified =
            rcgen::generate_simple_self_signed(vec!["sf-cluster.invalid".to_owned()]).unwrap();
        let cert_der = certified.cert.der().to_vec();
        let acceptor = tls_acceptor_for(cert_der.clone(), certified.signing_key.serialize_der());
        Self::start_tls(clock, cert_der, acceptor).await
    }

    /// As [`FakeManagedIdentity::start_service_fabric`], but presenting `certificate_der`
    /// (another server's) and signing the handshake with a key of its own: an impostor that
    /// copied a certificate without its private key.
    pub(crate) async fn start_service_fabric_impostor(
        clock: Arc<FakeClock>,
        certificate_der: Vec<u8>,
    ) -> FakeManagedIdentity {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let own_key = KeyPair::generate().unwrap().serialize_der();
        let signing_key = provider
            .key_provider
            .load_private_key(rustls::pki_types::PrivatePkcs8KeyDer::from(own_key).into())
            .unwrap();
        let certified =
            rustls::sign::CertifiedKey::new(vec![certificate_der.clone().into()], signing_key);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::start_tls(clock, certificate_der, acceptor).await
    }

    async fn start_tls(
        clock: Arc<FakeClock>,
        certificate_der: Vec<u8>,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> FakeManagedIdentity {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", tcp.local_addr().unwrap());
        let thumbprint =
            hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &certificate_der).as_ref());
        let (state, app) = mi_app(clock);
        let listener = TlsListener { tcp, acceptor };
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeManagedIdentity {
            base,
            thumbprint: Some(thumbprint),
            certificate_der: Some(certificate_der),
            state,
            server,
        }
    }

    /// The next request is answered with `status` and `body` (after the ones scripted before).
    pub(crate) fn script(&self, status: u16, body: &str) {
        self.script_with_headers(status, &[], body);
    }

    /// As [`FakeManagedIdentity::script`], with response headers.
    pub(crate) fn script_with_headers(
        &self,
        status: u16,
        headers: &[(&'static str, &str)],
        body: &str,
    ) {
        self.state.scripted.lock().unwrap().push_back((
            StatusCode::from_u16(status).unwrap(),
            headers.iter().map(|(name, value)| (*name, (*value).to_owned())).collect(),
            body.to_owned(),
        ));
    }

    /// Azure Arc requests without `Authorization` are answered `401` with
    /// `WWW-Authenticate: Basic realm={realm}`; with `Authorization: Basic {key}` they get a
    /// token.
    pub(crate) fn arc_challenge(&self, realm: &str, key: &str) {
        *self.state.arc.lock().unwrap() = Some((realm.to_owned(), key.to_owned()));
    }

    pub(crate) fn requests(&self) -> Vec<MiRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    pub(crate) fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// From now on requests wait for a permit of the returned semaphore before answering.
    pub(crate) fn hold_requests(&self) -> Arc<Semaphore> {
        let semaphore = Arc::new(Semaphore::new(0));
        *self.state.hold.lock().unwrap() = Some(semaphore.clone());
        semaphore
    }

    /// Waits until a request has arrived (returns at once if one arrived unobserved).
    pub(crate) async fn request_arrived(&self) {
        self.state.arrived.notified().await;
    }
}

impl Drop for FakeManagedIdentity {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn mi_app(clock: Arc<FakeClock>) -> (Arc<MiState>, Router) {
    let state = Arc::new(MiState {
        clock,
        requests: Mutex::new(Vec::new()),
        scripted: Mutex::new(std::collections::VecDeque::new()),
        arc: Mutex::new(None),
        hold: Mutex::new(None),
        arrived: Notify::new(),
    });
    let app = Router::new().fallback(managed_identity).with_state(state.clone());
    (state, app)
}

/// Pairs of an `application/x-www-form-urlencoded` text (a query or a form body).
fn url_pairs(text: &str) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://fake/?{text}")).unwrap();
    url.query_pairs().map(|(name, value)| (name.into_owned(), value.into_owned())).collect()
}

/// Which protocol a request speaks, told apart by method, path and api-version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MiProtocol {
    Imds,
    Arc,
    ServiceFabric,
    AppService,
    Legacy,
    CloudShell,
}

async fn managed_identity(
    State(state): State<Arc<MiState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (status, headers, body) = answer_mi(&state, method, uri, headers, body).await;
    let mut response = (status, body).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

async fn answer_mi(
    state: &MiState,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> MiAnswer {
    let request = MiRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: url_pairs(uri.query().unwrap_or_default()),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned())
            })
            .collect(),
        form: url_pairs(&String::from_utf8_lossy(&body)),
    };
    let number = {
        let mut requests = state.requests.lock().unwrap();
        requests.push(request.clone());
        requests.len()
    };
    state.arrived.notify_one();
    let hold = state.hold.lock().unwrap().clone();
    if let Some(semaphore) = hold {
        semaphore.acquire().await.unwrap().forget();
    }
    if let Some(scripted) = state.scripted.lock().unwrap().pop_front() {
        return scripted;
    }
    let header = |name: &str| request.headers.get(name).map(String::as_str);
    let query = |name: &str| request.query.get(name).map(String::as_str);
    let protocol = match (request.method.as_str(), request.path.as_str(), query("api-version")) {
        ("GET", "/metadata/identity/oauth2/token", Some("2019-07-01-preview")) => {
            MiProtocol::ServiceFabric
        }
        ("GET", "/metadata/identity/oauth2/token", Some("2020-06-01")) => MiProtocol::Arc,
        ("GET", "/metadata/identity/oauth2/token", _) => MiProtocol::Imds,
        ("GET", "/msi/token", Some("2019-08-01")) => MiProtocol::AppService,
        ("GET", "/msi/token", Some("2017-09-01")) => MiProtocol::Legacy,
        ("POST", "/cloudshell", _) => MiProtocol::CloudShell,
        _ => return (StatusCode::NOT_FOUND, Vec::new(), r#"{"error":"not_found"}"#.to_owned()),
    };
    let authorized = match protocol {
        MiProtocol::Imds | MiProtocol::CloudShell | MiProtocol::Arc => {
            header("metadata") == Some("true")
        }
        MiProtocol::AppService => header("x-identity-header") == Some(FakeManagedIdentity::SECRET),
        MiProtocol::Legacy | MiProtocol::ServiceFabric => {
            header("secret") == Some(FakeManagedIdentity::SECRET)
        }
    };
    if !authorized && protocol == MiProtocol::ServiceFabric {
        return (
            StatusCode::UNAUTHORIZED,
            Vec::new(),
            json!({"error": {"code": "SecretHeaderNotFound", "message": "Secret is not found in the request headers."}})
                .to_string(),
        );
    }
    if !authorized {
        return (
            StatusCode::BAD_REQUEST,
            Vec::new(),
            json!({"error": "bad_request_102", "error_description": "Required metadata header not specified"})
                .to_string(),
        );
    }
    if protocol == MiProtocol::Arc {
        let Some((realm, key)) = state.arc.lock().unwrap().clone() else {
            return (StatusCode::INTERNAL_SERVER_ERROR, Vec::new(), "no challenge set".to_owned());
        };
        if header("authorization") != Some(format!("Basic {key}").as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                vec![("www-authenticate", format!("Basic realm={realm}"))],
                String::new(),
            );
        }
    }
    let resource = match protocol {
        MiProtocol::CloudShell => request.form.get("resource"),
        _ => request.query.get("resource"),
    };
    let Some(resource) = resource else {
        return (
            StatusCode::BAD_REQUEST,
            Vec::new(),
            json!({"error": "invalid_request", "error_description": "resource is required"})
                .to_string(),
        );
    };
    let now = state.clock.now_unix_secs();
    let expires_in: i64 = 86_399;
    let access_token = format!("mi-token-{number}");
    if protocol == MiProtocol::ServiceFabric {
        let body = json!({
            "token_type": "Bearer",
            "access_token": access_token,
            "expires_on": now + expires_in,
            "resource": resource,
        });
        return (StatusCode::OK, Vec::new(), body.to_string());
    }
    let mut body = json!({
        "access_token": access_token,
        "refresh_token": "",
        "client_id": query("client_id").unwrap_or("00000000-0000-0000-0000-00000000c11e"),
        "expires_in": expires_in.to_string(),
        "expires_on": (now + expires_in).to_string(),
        "ext_expires_in": expires_in.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    for selector in ["object_id", "msi_res_id"] {
        if let Some(value) = query(selector) {
            body[selector] = json!(value);
        }
    }
    (StatusCode::OK, Vec::new(), body.to_string())
}

/// A loopback address where nothing listens: a port bound and released at once.
pub(crate) async fn closed_loopback_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}
