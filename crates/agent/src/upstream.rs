//! The agent's client of the server's hosting API (`/hosting/...`, contract in
//! `api_types::hosting`): enrollment, renewal, the assignment watch, status reports and token
//! requests. Every call but enrollment carries the host's client certificate; the server's
//! certificate must chain to the configured CA and nothing else.
//!
//! The `reqwest::Client` holding the certificate is swapped as a whole when the certificate is
//! renewed. Calls clone the current client (a reference count) before sending, so requests in
//! flight finish on the connections they started with.
//!
//! An agent may know several servers of one deployment (they share the CA and the database).
//! A call goes to the server that answered last; when it cannot be reached, or answers 502,
//! 503 or 504, the same call goes at once to the next server, and so on once round the list.
//! Callers that retry a failed round wait with [`Backoff`], which adds jitter so that many
//! agents do not come back at the same instant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use api_types::hosting::{
    Assignments, EnrollRequest, HostStatus, IssuedHostCertificate, IssuedToken, RenewRequest,
    TokenRefusal, TokenRequest,
};
use serde::de::DeserializeOwned;

/// How long the server may hold an assignment watch open (the API allows up to 30).
pub(crate) const WATCH_WAIT_SECS: u64 = 25;
/// Time to open a connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole call, except the watch.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Time for a whole watch call: the wait plus room for a slow answer.
const WATCH_TIMEOUT: Duration = Duration::from_secs(WATCH_WAIT_SECS + 10);

/// The hosting API of a deployment's servers.
pub(crate) struct ServerApi {
    /// `https://host:port` of each server, without a trailing slash; never empty.
    servers: Vec<String>,
    /// The index in `servers` of the server that answered last.
    current: AtomicUsize,
    /// The client with the host's current certificate; replaced on renewal.
    client: RwLock<reqwest::Client>,
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// The server answered 4xx; `refusal` is its body when it had the `TokenRefusal` shape.
    #[error("refused by the server (http {status})")]
    Refused { status: u16, refusal: Option<TokenRefusal> },
    /// The server answered 5xx (or another unexpected status).
    #[error("server failed (http {status})")]
    ServerFailed { status: u16 },
    /// No answer: connection, TLS or timeout.
    #[error("server unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// An answer that does not have the contract's shape.
    #[error("unexpected answer from the server: {0}")]
    Decode(#[source] reqwest::Error),
}

/// A client trusting only `ca_pem` for the server, presenting `identity_pem` (certificate and
/// private key, PEM) when given.
pub(crate) fn client(
    ca_pem: &[u8],
    identity_pem: Option<&[u8]>,
) -> Result<reqwest::Client, reqwest::Error> {
    let roots = reqwest::Certificate::from_pem_bundle(ca_pem)?;
    let mut builder = reqwest::Client::builder()
        .tls_certs_only(roots)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("ambient-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = identity_pem {
        builder = builder.identity(reqwest::Identity::from_pem(pem)?);
    }
    builder.build()
}

/// `POST /hosting/enroll` with a client that has no certificate yet: the join token is the
/// only credential. Tries each server in turn until one answers.
pub(crate) async fn enroll(
    client: &reqwest::Client,
    servers: &[String],
    request: &EnrollRequest,
) -> Result<IssuedHostCertificate, CallError> {
    let api = ServerApi::new(servers.to_vec(), client.clone());
    let response = api
        .send_to_any(|client, base_url| {
            client.post(format!("{base_url}/hosting/enroll")).timeout(CALL_TIMEOUT).json(request)
        })
        .await?;
    check_status(response).await?.json().await.map_err(CallError::Decode)
}

impl ServerApi {
    /// The API of `servers` (at least one), calling the first one first.
    pub(crate) fn new(servers: Vec<String>, client: reqwest::Client) -> Self {
        assert!(!servers.is_empty(), "an agent knows at least one server");
        ServerApi { servers, current: AtomicUsize::new(0), client: RwLock::new(client) }
    }

    /// Makes every later call use `client` (a renewed certificate).
    pub(crate) fn replace_client(&self, client: reqwest::Client) {
        *self.client.write().unwrap_or_else(PoisonError::into_inner) = client;
    }

    /// `POST /hosting/renew` with a CSR for a new key.
    pub(crate) async fn renew(&self, csr_pem: String) -> Result<IssuedHostCertificate, CallError> {
        let request = RenewRequest { csr: csr_pem };
        self.call(|client, base_url| {
            client.post(format!("{base_url}/hosting/renew")).timeout(CALL_TIMEOUT).json(&request)
        })
        .await
    }

    /// `GET /hosting/assignments?version=V&wait=25`: the next state after `version` (at once
    /// when the server's state differs, else when it changes or the wait ends).
    pub(crate) async fn assignments(&self, version: &str) -> Result<Assignments, CallError> {
        let wait = WATCH_WAIT_SECS.to_string();
        self.call(|client, base_url| {
            client
                .get(format!("{base_url}/hosting/assignments"))
                .query(&[("version", version), ("wait", wait.as_str())])
                .timeout(WATCH_TIMEOUT)
        })
        .await
    }

    /// `POST /hosting/status`.
    pub(crate) async fn report_status(&self, status: &HostStatus) -> Result<(), CallError> {
        let response = self
            .send_to_any(|client, base_url| {
                client.post(format!("{base_url}/hosting/status")).timeout(CALL_TIMEOUT).json(status)
            })
            .await?;
        check_status(response).await.map(drop)
    }

    /// `POST /hosting/token`.
    pub(crate) async fn token(&self, request: &TokenRequest) -> Result<IssuedToken, CallError> {
        self.call(|client, base_url| {
            client.post(format!("{base_url}/hosting/token")).timeout(CALL_TIMEOUT).json(request)
        })
        .await
    }

    /// The servers, in the configured order.
    pub(crate) fn servers(&self) -> &[String] {
        &self.servers
    }

    async fn call<T: DeserializeOwned>(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        let response = self.send_to_any(build).await?;
        check_status(response).await?.json().await.map_err(CallError::Decode)
    }

    /// Sends the request `build` makes to the server that answered last, then to each other
    /// server in turn while the answer is no answer at all or 502, 503 or 504. Returns the
    /// first other answer, or the last failure.
    async fn send_to_any(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CallError> {
        let client = self.client.read().unwrap_or_else(PoisonError::into_inner).clone();
        let first = self.current.load(Ordering::Relaxed) % self.servers.len();
        let mut failure = None;
        for attempt in 0..self.servers.len() {
            let index = (first + attempt) % self.servers.len();
            let server = &self.servers[index];
            let outcome = build(&client, server).send().await;
            let error = match outcome {
                Ok(response) if !is_unavailable(response.status()) => {
                    if index != first {
                        self.current.store(index, Ordering::Relaxed);
                        tracing::info!(%server, "switched to another server");
                    }
                    return Ok(response);
                }
                Ok(response) => CallError::ServerFailed { status: response.status().as_u16() },
                Err(error) => CallError::Transport(error),
            };
            if self.servers.len() > 1 {
                tracing::warn!(%server, %error, "server did not answer; trying the next one");
            }
            failure = Some(error);
        }
        Err(failure.expect("the loop ran at least once"))
    }
}

/// Answers that mean "this server cannot serve now, another might".
fn is_unavailable(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

impl CallError {
    /// The server no longer accepts this host's certificate (revoked, or unknown).
    pub(crate) fn is_unauthorized(&self) -> bool {
        matches!(self, CallError::Refused { status: 401 | 403, .. })
    }
}

async fn check_status(response: reqwest::Response) -> Result<reqwest::Response, CallError> {
    let status = response.status();
    if status.is_success() {
        Ok(response)
    } else if status.is_client_error() {
        let refusal = response.json::<TokenRefusal>().await.ok();
        Err(CallError::Refused { status: status.as_u16(), refusal })
    } else {
        Err(CallError::ServerFailed { status: status.as_u16() })
    }
}

/// Pauses between retries of a failing call: 1 s, 2 s, 4 s, ... up to a maximum, each
/// shortened by a random share of up to half ("equal jitter"), so agents that lost their server
/// at the same moment do not all return at the same moment.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        Backoff { next: Duration::from_secs(1).min(max), max }
    }

    /// The pause before the next attempt: between half the nominal pause and all of it.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.nominal_delay();
        let random = u16::from_le_bytes(crypto::random::random_array::<2>());
        delay / 2 + (delay / 2).mul_f64(f64::from(random) / f64::from(u16::MAX))
    }

    /// The pause without jitter, advancing the schedule.
    fn nominal_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the shortest pause, after a success.
    pub(crate) fn reset(&mut self) {
        self.next = Duration::from_secs(1).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(10));
        let delays: Vec<u64> = (0..6).map(|_| backoff.nominal_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        backoff.reset();
        assert_eq!(backoff.nominal_delay().as_secs(), 1);
    }

    #[test]
    fn backoff_jitter_keeps_at_least_half_the_pause() {
        let mut backoff = Backoff::new(Duration::from_secs(8));
        for nominal in [1000, 2000, 4000, 8000, 8000] {
            let delay = backoff.next_delay().as_millis();
            assert!((nominal / 2..=nominal).contains(&delay), "{delay} ms for {nominal} ms");
        }
    }
}
