//! The console's only way to the server: its public HTTPS API, called with the signed-in
//! principal's own bearer token, so the server authorizes every call exactly as for any client.
//!
//! [`Api`] holds one HTTP client for the process. Every host name it is asked for (the public
//! host, and vault names `{vault}.vault.{suffix}`) resolves to the address the server is bound
//! to, and TLS trusts only the server's own CA while still checking the certificate for the
//! name in the URL. So the console works whether the public URL names this machine or a
//! proxy in front of it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// How long one call to the API may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Pages followed through `nextLink` at most, so a server bug cannot loop the console.
pub const PAGES_MAX: usize = 20;

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error body.
    #[error("{code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The protocol's error code (`AuthorizationFailed`, `invalid_client`, ...).
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// The server could not be reached or answered something unreadable.
    #[error("the server could not be reached: {0}")]
    Transport(String),
}

impl ApiError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            ApiError::Transport(_) => None,
        }
    }

    /// True when the server refused the token itself (expired or otherwise invalid).
    pub fn is_unauthenticated(&self) -> bool {
        self.status() == Some(401)
    }
}

/// A client of this server's public API.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// `https://{public_host}:{port}` without a trailing slash.
    base_url: String,
}

impl Api {
    /// A client for the server reachable at `local_addr` under `public_url`, trusting only the
    /// CA in `ca_pem`.
    pub fn new(public_url: &str, local_addr: SocketAddr, ca_pem: &str) -> Result<Api, String> {
        let certificates = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())
            .map_err(|error| format!("CA certificate: {error}"))?;
        let http = reqwest::Client::builder()
            .tls_certs_only(certificates)
            .dns_resolver(Arc::new(ToServer(connect_address(local_addr))))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|error| format!("http client: {error}"))?;
        Ok(Api { http, base_url: public_url.trim_end_matches('/').to_owned() })
    }

    /// `method` on `path` (with its query) of the server, or on a full `https://` URL (a vault's
    /// data plane), with `token`. Returns the JSON body, or `Value::Null` for an empty one.
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path_or_url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let url = self.url(path_or_url);
        let mut request = self.http.request(method, &url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        read(request).await
    }

    /// `GET` with `token`.
    pub async fn get(&self, token: &str, path: &str) -> Result<Value, ApiError> {
        self.call(token, reqwest::Method::GET, path, None).await
    }

    /// Every item of a list, following `nextLink` for at most [`PAGES_MAX`] pages.
    pub async fn list(&self, token: &str, path: &str) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        for _ in 0..PAGES_MAX {
            let Some(url) = next.take() else { break };
            let mut page = self.get(token, &url).await?;
            if let Some(Value::Array(values)) = page.get_mut("value").map(Value::take) {
                items.extend(values);
            }
            next = page.get("nextLink").and_then(Value::as_str).map(str::to_owned);
        }
        Ok(items)
    }

    /// A public, unauthenticated `GET` (discovery, keys, health).
    pub async fn get_public(&self, path: &str) -> Result<Value, ApiError> {
        read(self.http.get(self.url(path))).await
    }

    /// The client-credentials grant at this server's token endpoint: `form` holds `client_id`
    /// and either `client_secret` or a client assertion. Returns the access token and its
    /// lifetime in seconds.
    pub async fn token(
        &self,
        tenant: &str,
        scope: &str,
        form: &[(&str, &str)],
    ) -> Result<(String, i64), ApiError> {
        let mut fields = vec![("grant_type", "client_credentials"), ("scope", scope)];
        fields.extend_from_slice(form);
        let url = format!("{}/{}/oauth2/v2.0/token", self.base_url, client::encode(tenant));
        let body = read(self.http.post(url).form(&fields)).await?;
        let token = body["access_token"].as_str().ok_or_else(|| {
            ApiError::Transport("the token answer has no access_token".to_owned())
        })?;
        let lifetime = body["expires_in"].as_i64().unwrap_or(0);
        Ok((token.to_owned(), lifetime))
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base_url)
        }
    }
}

/// Where this process connects to reach the listener: the bound address, or loopback when the
/// server listens on every address.
fn connect_address(local_addr: SocketAddr) -> SocketAddr {
    match local_addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, local_addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, local_addr.port()))
        }
        _ => local_addr,
    }
}

/// Resolves every name to the server's own address: the console talks to nothing else.
struct ToServer(SocketAddr);

impl reqwest::dns::Resolve for ToServer {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let address = self.0;
        Box::pin(async move {
            let addresses: reqwest::dns::Addrs = Box::new(std::iter::once(address));
            Ok(addresses)
        })
    }
}

async fn read(request: reqwest::RequestBuilder) -> Result<Value, ApiError> {
    let response =
        request.send().await.map_err(|error| ApiError::Transport(without_url(&error)))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|error| ApiError::Transport(without_url(&error)))?;
    if (200..300).contains(&status) {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(&bytes)
            .map_err(|error| ApiError::Transport(format!("invalid JSON: {error}")));
    }
    Err(refusal(status, &bytes))
}

/// reqwest's message without the URL, which may carry a query the user need not see.
fn without_url(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(&format!(" ({url})"), "").replace(url.as_str(), "");
    }
    message
}

/// An error body in any of the server's shapes: ARM's and Graph's `{"error": {"code",
/// "message"}}`, OAuth's `{"error", "error_description"}`, or something else.
pub fn refusal(status: u16, body: &[u8]) -> ApiError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (code, message) = match &parsed["error"] {
        Value::Object(error) => (
            error.get("code").and_then(Value::as_str).unwrap_or("Error").to_owned(),
            error.get("message").and_then(Value::as_str).unwrap_or_default().to_owned(),
        ),
        Value::String(code) => {
            (code.clone(), parsed["error_description"].as_str().unwrap_or_default().to_owned())
        }
        _ => (
            format!("HTTP {status}"),
            String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        ),
    };
    ApiError::Refused { status, code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_protocol_are_read() {
        let arm = refusal(403, br#"{"error":{"code":"AuthorizationFailed","message":"no"}}"#);
        assert_eq!(arm.to_string(), "AuthorizationFailed: no");
        let oauth = refusal(401, br#"{"error":"invalid_client","error_description":"bad"}"#);
        assert_eq!(oauth.to_string(), "invalid_client: bad");
        assert!(oauth.is_unauthenticated());
        let other = refusal(502, b"bad gateway");
        assert_eq!(other.to_string(), "HTTP 502: bad gateway");
    }

    #[test]
    fn unspecified_listen_addresses_are_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        assert_eq!(connect_address(any).to_string(), "127.0.0.1:8443");
        let bound: SocketAddr = "10.0.0.5:8443".parse().unwrap();
        assert_eq!(connect_address(bound), bound);
    }
}
