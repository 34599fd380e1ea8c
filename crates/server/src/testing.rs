//! An in-process server for this crate's own tests: [`Harness::start`] runs [`crate::start`]
//! with a fresh data directory and SQLite database, and [`Harness::call`] hands each request
//! straight to the router (`tower::ServiceExt::oneshot`), without TLS or a socket, so property
//! tests can send hundreds of requests in a second. Throttling of failed sign-ins is off, so a
//! test of the token endpoint's parsing is not answered 429 after its first failures.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt as _;

use proptest::prelude::*;

use crate::RunningServer;

/// A started server and its router.
pub struct Harness {
    running: RunningServer,
    router: axum::Router,
    dir: PathBuf,
    pub admin_app_id: String,
    pub admin_secret: String,
}

impl Harness {
    /// Starts a server with embedded defaults; the listener it binds on `127.0.0.1:0` is not
    /// used.
    pub async fn start() -> Harness {
        let dir =
            std::env::temp_dir().join(format!("ambient-harness-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = crate::Settings {
            data_dir: Some(dir.clone()),
            listen: Some("127.0.0.1:0".to_owned()),
            sign_in_failures_per_minute: Some(0),
            ..crate::Settings::default()
        };
        let config =
            crate::ServerConfig::resolve(crate::Mode::Server, settings, None, &dir).unwrap();
        let running = crate::start(config).await.unwrap();
        let admin: Value =
            serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
        let router = crate::http::router(running.state.clone(), None);
        Harness {
            running,
            router,
            dir,
            admin_app_id: admin["appId"].as_str().unwrap().to_owned(),
            admin_secret: admin["password"].as_str().unwrap().to_owned(),
        }
    }

    pub fn state(&self) -> &crate::state::AppState {
        &self.running.state
    }

    pub fn tenant_id(&self) -> &str {
        &self.running.deployment.tenant_id
    }

    pub fn subscription_id(&self) -> &str {
        &self.running.deployment.subscription_id
    }

    /// Sends `request` from a loopback peer; returns the status and the body as JSON
    /// (`Value::Null` when it is not JSON).
    pub async fn call(&self, mut request: Request<Body>) -> (StatusCode, Value) {
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A form POST to the tenant's v2 token endpoint.
    pub async fn token_request(&self, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
        let body: String =
            form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let request = Request::post(format!("/{}/oauth2/v2.0/token", self.tenant_id()))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.call(request).await
    }

    /// A client-credential token for `app_id` and `scope`.
    pub async fn token(&self, app_id: &str, secret: &str, scope: &str) -> String {
        let (status, body) = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", app_id),
                ("client_secret", secret),
                ("scope", scope),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A control-plane request (with `api-version=2024-11-01` unless `path` has one).
    pub async fn arm(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> (StatusCode, Value) {
        let uri = if path.contains("api-version=") {
            path.to_owned()
        } else {
            let separator = if path.contains('?') { '&' } else { '?' };
            format!("{path}{separator}api-version=2024-11-01")
        };
        self.send(token, method, &uri, body).await
    }

    /// A request with `token` and, when given, a JSON body.
    pub async fn send(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Option<&[u8]>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request =
            builder.body(body.map_or_else(Body::empty, |body| Body::from(body.to_vec()))).unwrap();
        self.call(request).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A current-thread runtime for a test that drives a [`Harness`] from a proptest runner's
/// synchronous closure (`block_on` per case).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Runs `test` on `cases` values of `strategy`; panics with the minimal failing input.
#[track_caller]
pub fn run_cases<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{error}");
    }
}

/// Arbitrary JSON: nulls, booleans, integers, finite floats, short strings, and arrays and
/// objects nested at most four deep, with object keys drawn from `keys` or at random.
pub fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |float| {
            serde_json::Number::from_f64(float).map(Value::Number)
        }),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        let key = prop_oneof![
            3 => proptest::sample::select(keys).prop_map(str::to_owned),
            1 => ".{0,12}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}
