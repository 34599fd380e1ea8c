//! The server's handlers, tested in-process through `test-support` (a real listener with TLS,
//! SQLite and the generated CA, in this process): one module per surface.

mod arm;
mod deployments;
mod keyvault;
mod layers;
mod security;

use serde_json::Value;
use test_support::TestServer;

/// A server, started for one test.
pub async fn server() -> TestServer {
    TestServer::start().await.expect("start the test server")
}

/// `GET|PUT|... {url}{path}` with a management token, answering (status, JSON body).
pub async fn arm(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let token = server.admin_token("https://management.azure.com/.default").await.unwrap();
    let separator = if path.contains('?') { '&' } else { '?' };
    let url = if path.contains("api-version=") {
        format!("{}{path}", server.url())
    } else {
        format!("{}{path}{separator}api-version=2024-11-01", server.url())
    };
    let mut request = server.http(&[]).unwrap().request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), headers)
}

pub fn group(server: &TestServer, name: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{name}", server.subscription_id())
}
