//! A typed async client for Ambient's public HTTPS API, authenticated by any
//! `identity::TokenCredential`.
//!
//! [`Client`] sends JSON requests with a bearer token for the API the path names (the Graph
//! audience for the directory's `/v1.0/...`, the management audience for everything else; see
//! [`scope_for_path`]) and turns error bodies (ARM's and Graph's `{"error": {"code",
//! "message"}}`) into [`ClientError::Api`].
//! The directory helpers (`create_service_principal`, `add_password`, ...) name the Graph-shaped
//! routes; other areas use [`Client::request`] with their path.

#![warn(missing_docs)]

use std::sync::Arc;

use identity::{TokenCredential, TokenRequestOptions};
use serde_json::Value;

/// The scope of the control plane and the agents' admin API (`/subscriptions/...`,
/// `/hosting/...`).
pub const MANAGEMENT_SCOPE: &str = "https://management.azure.com/.default";
/// The scope of the Graph-shaped directory (`/v1.0/...`), which accepts Graph tokens only.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// The scope whose tokens the API at `path` accepts: [`GRAPH_SCOPE`] for the directory
/// (`/v1.0` and below), [`MANAGEMENT_SCOPE`] for everything else.
pub fn scope_for_path(path: &str) -> &'static str {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path == "/v1.0" || path.starts_with("/v1.0/") { GRAPH_SCOPE } else { MANAGEMENT_SCOPE }
}

/// What can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code (`AuthorizationFailed`, `ResourceNotFound`, ...).
        code: String,
        /// The server's message.
        message: String,
    },
    /// No token could be had.
    #[error("sign-in failed: {0}")]
    Credential(#[from] identity::Error),
    /// The server could not be reached or the response could not be read.
    #[error("request to {url} failed: {message}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The client was configured wrongly (for example an unreadable CA file).
    #[error("{0}")]
    Config(String),
}

/// An authenticated client of one Ambient server.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    credential: Arc<dyn TokenCredential>,
    ca_pem: Option<Vec<u8>>,
}

impl Client {
    /// A client for `base_url` (`https://host:port`) that trusts the PEM roots in `ca_pem` in
    /// addition to the platform's.
    pub fn new(
        base_url: &str,
        credential: Arc<dyn TokenCredential>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Client, ClientError> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
        if let Some(pem) = ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|error| ClientError::Config(format!("CA bundle: {error}")))?;
            builder = builder.tls_certs_merge(certificates);
        }
        let http = builder
            .build()
            .map_err(|error| ClientError::Config(format!("http client: {error}")))?;
        Ok(Client {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            credential,
            ca_pem: ca_pem.map(<[u8]>::to_vec),
        })
    }

    /// A request to a data plane served by the same server under another host name (a vault at
    /// `https://{name}.vault.{suffix}:{port}/`), with a token for `scope`. The host name is
    /// resolved to the server's own address, so it works where `*.localhost` names do not
    /// resolve; TLS still checks the certificate for the real name.
    pub async fn data_request(
        &self,
        method: reqwest::Method,
        url: &str,
        scope: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let config = |message: String| ClientError::Config(message);
        let target =
            reqwest::Url::parse(url).map_err(|error| config(format!("bad URL {url}: {error}")))?;
        let server = reqwest::Url::parse(&self.base_url)
            .map_err(|error| config(format!("bad server URL: {error}")))?;
        let server_host = server.host_str().unwrap_or("localhost").to_owned();
        let server_port = server.port_or_known_default().unwrap_or(443);
        let address = tokio_lookup(&server_host, server_port)?;
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
        if let Some(pem) = &self.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|error| config(format!("CA bundle: {error}")))?;
            builder = builder.tls_certs_merge(certificates);
        }
        if let Some(host) = target.host_str() {
            builder = builder.resolve(host, address);
        }
        let http = builder.build().map_err(|error| config(format!("http client: {error}")))?;
        let token = self.credential.get_token(&[scope], &TokenRequestOptions::default()).await?;
        let mut request = http.request(method, target).bearer_auth(token.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request, url).await
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method path` (path may carry a query) with an optional JSON body and a token for
    /// the path's API ([`scope_for_path`]). Returns the JSON body, or `Value::Null` for an empty
    /// one (204).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let scope = scope_for_path(path);
        let token = self.credential.get_token(&[scope], &TokenRequestOptions::default()).await?;
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.request(method, &url).bearer_auth(token.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request, &url).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.request(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.request(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    // --- Directory -----------------------------------------------------------------------

    /// Creates an application and its service principal.
    pub async fn create_service_principal(&self, display_name: &str) -> Result<Value, ClientError> {
        self.post("/v1.0/servicePrincipals", &serde_json::json!({"displayName": display_name}))
            .await
    }

    /// Lists service principals, optionally only those with this display name.
    pub async fn list_service_principals(
        &self,
        display_name: Option<&str>,
    ) -> Result<Vec<Value>, ClientError> {
        let path = match display_name {
            Some(name) => format!(
                "/v1.0/servicePrincipals?$filter={}",
                encode(&format!("displayName eq '{}'", name.replace('\'', "''")))
            ),
            None => "/v1.0/servicePrincipals".to_owned(),
        };
        Ok(values(self.get(&path).await?))
    }

    /// One service principal by object id or app id.
    pub async fn get_service_principal(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/v1.0/servicePrincipals/{}", encode(id))).await
    }

    /// Deletes a service principal with its credentials and role assignments.
    pub async fn delete_service_principal(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1.0/servicePrincipals/{}", encode(id))).await.map(drop)
    }

    /// Adds a generated client secret; the answer's `secretText` is shown once.
    pub async fn add_password(
        &self,
        id: &str,
        display_name: &str,
        end: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut credential = serde_json::json!({"displayName": display_name});
        if let Some(end) = end {
            credential["endDateTime"] = Value::String(end.to_owned());
        }
        self.post(
            &format!("/v1.0/servicePrincipals/{}/addPassword", encode(id)),
            &serde_json::json!({"passwordCredential": credential}),
        )
        .await
    }

    /// Generates a certificate credential; the answer's `privateKeyPem` is shown once.
    pub async fn create_certificate(
        &self,
        id: &str,
        validity_days: u32,
    ) -> Result<Value, ClientError> {
        self.post(
            &format!("/v1.0/servicePrincipals/{}/ambient.createCertificate", encode(id)),
            &serde_json::json!({"validityDays": validity_days}),
        )
        .await
    }

    /// Removes a password (`kind` = `Password`) or key (`Key`) credential.
    pub async fn remove_credential(
        &self,
        id: &str,
        kind: &str,
        key_id: &str,
    ) -> Result<(), ClientError> {
        self.post(
            &format!("/v1.0/servicePrincipals/{}/remove{kind}", encode(id)),
            &serde_json::json!({"keyId": key_id}),
        )
        .await
        .map(drop)
    }
}

/// Sends a request and reads a JSON answer: the body, `Value::Null` for an empty one, or the
/// error body as [`ClientError::Api`].
async fn send(request: reqwest::RequestBuilder, url: &str) -> Result<Value, ClientError> {
    let transport = |error: reqwest::Error| ClientError::Transport {
        url: url.to_owned(),
        message: error.to_string(),
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(&bytes).map_err(|error| ClientError::Transport {
            url: url.to_owned(),
            message: format!("invalid JSON: {error}"),
        });
    }
    Err(api_error(status.as_u16(), &bytes))
}

/// The first address `host:port` resolves to (the server's own name, normally `localhost`).
fn tokio_lookup(host: &str, port: u16) -> Result<std::net::SocketAddr, ClientError> {
    use std::net::ToSocketAddrs as _;
    let mut addresses = (host, port)
        .to_socket_addrs()
        .map_err(|error| ClientError::Config(format!("resolve {host}: {error}")))?
        .collect::<Vec<_>>();
    // Prefer IPv4: the server listens on 127.0.0.1 by default.
    addresses.sort_by_key(|address| !address.is_ipv4());
    addresses
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Config(format!("{host} has no address")))
}

/// The `value` array of a list answer.
pub fn values(page: Value) -> Vec<Value> {
    match page {
        Value::Object(mut map) => match map.remove("value") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn api_error(status: u16, body: &[u8]) -> ClientError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        code: String,
        message: String,
        #[serde(default)]
        innererror: Option<Inner>,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => ClientError::Api {
            status,
            code: match envelope.error.innererror {
                Some(inner) => format!("{} ({})", envelope.error.code, inner.code),
                None => envelope.error.code,
            },
            message: envelope.error.message,
        },
        Err(_) => ClientError::Api {
            status,
            code: "UnexpectedResponse".to_owned(),
            message: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_path_segments() {
        assert_eq!(encode("displayName eq 'a b'"), "displayName%20eq%20%27a%20b%27");
        assert_eq!(encode("abc-1_2.3~"), "abc-1_2.3~");
    }

    #[test]
    fn the_directory_gets_graph_tokens_and_everything_else_management_tokens() {
        assert_eq!(scope_for_path("/v1.0/servicePrincipals?$filter=x"), GRAPH_SCOPE);
        assert_eq!(scope_for_path("/v1.0/auditLogs/signIns"), GRAPH_SCOPE);
        assert_eq!(scope_for_path("/v1.0"), GRAPH_SCOPE);
        assert_eq!(scope_for_path("/v1.00/x"), MANAGEMENT_SCOPE);
        assert_eq!(scope_for_path("/subscriptions?api-version=2022-12-01"), MANAGEMENT_SCOPE);
        assert_eq!(scope_for_path("/hosting/hosts/edge"), MANAGEMENT_SCOPE);
    }

    #[test]
    fn arm_errors_keep_their_code() {
        let error = api_error(403, br#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#);
        assert_eq!(error.to_string(), "AuthorizationFailed: no (HTTP 403)");
        let other = api_error(502, b"bad gateway");
        assert_eq!(other.to_string(), "UnexpectedResponse: bad gateway (HTTP 502)");
    }
}
