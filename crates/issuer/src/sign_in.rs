//! The sign-in log: one event per token request, successful or not, written in batches by a
//! background task and read back as Microsoft Graph `signIn` objects.
//!
//! [`SignInLog::record`] puts the event on a bounded channel (waiting when it is full, never
//! dropping it); the writer task takes up to [`BATCH_EVENTS_MAX`] events or whatever arrived
//! within [`BATCH_WINDOW_MILLIS`], and stores them with one `Store::apply`. The stored body is
//! the Graph JSON, so listing is parsing.

use std::time::Duration;

use domain::UnixTime;
use serde_json::{Value, json};
use store::{EventFilter, NewEventRecord, Store, Write};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// Capacity of the channel between [`SignInLog::record`] and the writer task.
pub(crate) const CHANNEL_CAPACITY: usize = 4096;
/// Most events written by one `apply`.
pub(crate) const BATCH_EVENTS_MAX: usize = 256;
/// How long the writer collects a batch after its first event.
pub(crate) const BATCH_WINDOW_MILLIS: u64 = 50;
/// Attempts at writing one batch before it is given up (and logged as lost).
const WRITE_ATTEMPTS_MAX: u32 = 5;
/// Wait before the first retry; doubled for each further one.
const RETRY_BACKOFF_MILLIS: u64 = 100;

/// One sign-in: a token request and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInEvent {
    /// A GUID for the event.
    pub id: String,
    /// When the request was answered.
    pub created: UnixTime,
    /// The tenant the token was requested from.
    pub tenant_id: String,
    /// The principal's object id, when it is known.
    pub principal_id: Option<String>,
    /// The client's app id, as presented.
    pub app_id: Option<String>,
    /// The principal's display name, when it is known.
    pub principal_display_name: Option<String>,
    /// `ServicePrincipal` or `ManagedIdentity`.
    pub principal_type: String,
    /// `clientSecret`, `clientCertificate`, `federatedCredential` or `managedIdentity`.
    pub credential_type: String,
    /// The requested audience.
    pub resource: Option<String>,
    /// Whether a token was issued.
    pub success: bool,
    /// The AADSTS code of a failure.
    pub error_code: Option<u32>,
    /// Why the request failed, as told to the client.
    pub failure_reason: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// The request's `client-request-id`, or the id the server gave it.
    pub correlation_id: Option<String>,
    /// The agent's host, for metadata-endpoint requests.
    pub host_id: Option<String>,
    /// The ARM id of the compute resource the request came from.
    pub compute_resource_id: Option<String>,
    /// Which endpoint answered: `token`, `imds` or `appService`.
    pub endpoint: Option<String>,
}

/// A handle on the sign-in log writer. Cheap to clone; the writer stops once every handle is
/// dropped and the channel is drained.
#[derive(Clone, Debug)]
pub struct SignInLog {
    sender: mpsc::Sender<Command>,
}

/// What the writer task receives.
enum Command {
    Record(Box<SignInEvent>),
    /// Answer once every event received before this command is written.
    Flush(oneshot::Sender<()>),
}

impl SignInEvent {
    /// A successful sign-in with a fresh random id and every optional field empty.
    pub fn new(
        created: UnixTime,
        tenant_id: impl Into<String>,
        principal_type: impl Into<String>,
        credential_type: impl Into<String>,
    ) -> Self {
        SignInEvent {
            id: domain::Guid::new_random().to_string(),
            created,
            tenant_id: tenant_id.into(),
            principal_id: None,
            app_id: None,
            principal_display_name: None,
            principal_type: principal_type.into(),
            credential_type: credential_type.into(),
            resource: None,
            success: true,
            error_code: None,
            failure_reason: None,
            client_ip: None,
            correlation_id: None,
            host_id: None,
            compute_resource_id: None,
            endpoint: None,
        }
    }

    /// The event as a Microsoft Graph `signIn` object, plus Ambient's own members
    /// (`credentialType`, `principalType`, `hostId`, `computeResourceId`, `endpoint`).
    pub fn to_graph_json(&self) -> Value {
        json!({
            "id": self.id,
            "createdDateTime": rfc3339(self.created),
            "appId": self.app_id,
            "appDisplayName": self.principal_display_name,
            "servicePrincipalId": self.principal_id,
            "servicePrincipalName": self.principal_display_name,
            "resourceDisplayName": self.resource,
            "resourceId": self.resource,
            "ipAddress": self.client_ip,
            "correlationId": self.correlation_id,
            "status": {
                "errorCode": if self.success { 0 } else { self.error_code.unwrap_or(0) },
                "failureReason": self.failure_reason,
            },
            "credentialType": self.credential_type,
            "principalType": self.principal_type,
            "hostId": self.host_id,
            "computeResourceId": self.compute_resource_id,
            "endpoint": self.endpoint,
        })
    }

    fn to_record(&self) -> NewEventRecord {
        NewEventRecord {
            event_id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            subscription_id: None,
            resource_group_key: None,
            resource_key: None,
            correlation_id: self.correlation_id.clone(),
            principal_id: self.principal_id.clone(),
            app_id: self.app_id.clone(),
            status: if self.success { "success" } else { "failure" }.to_owned(),
            timestamp: self.created.millis(),
            body: self.to_graph_json().to_string(),
        }
    }
}

impl SignInLog {
    /// Starts the writer task on the current Tokio runtime and returns a handle on it. Events
    /// are written in batches (one `apply` per up to 256 events, or per 50 ms), through a
    /// channel of capacity 4096.
    ///
    /// Panics when called outside a Tokio runtime (it spawns the writer task).
    pub fn start(store: std::sync::Arc<dyn Store>) -> SignInLog {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(write_batches(store, receiver));
        SignInLog { sender }
    }

    /// Queues an event. Waits while the channel is full (backpressure); never drops the event
    /// unless the writer task is gone, which is logged.
    pub async fn record(&self, event: SignInEvent) {
        if self.sender.send(Command::Record(Box::new(event))).await.is_err() {
            tracing::error!("sign-in log writer is gone; event lost");
        }
    }

    /// Waits until every event recorded before this call has been written (or given up after
    /// retries). For tests and shutdown.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Command::Flush(done)).await.is_err() {
            tracing::error!("sign-in log writer is gone; nothing to flush");
            return;
        }
        // An error means the writer stopped, which it does only after writing what it had.
        let _ = wait.await;
    }

    /// Events of `tenant_id`, oldest first, at most `limit` (1 to `PAGE_SIZE_MAX`), as Graph
    /// `signIn` objects. `principal` matches an object id or an app id; `since` keeps events
    /// created at or after it.
    pub async fn list(
        store: &dyn Store,
        tenant_id: &str,
        principal: Option<&str>,
        since: Option<UnixTime>,
        limit: i64,
    ) -> Result<Vec<Value>> {
        let page_size_max = i64::try_from(domain::limits::PAGE_SIZE_MAX).unwrap_or(i64::MAX);
        let filter = EventFilter {
            partition: tenant_id.to_owned(),
            since: since.map(UnixTime::millis),
            principal_id: principal.map(str::to_owned),
            limit: limit.clamp(1, page_size_max),
            ..EventFilter::default()
        };
        let rows = store.list_sign_in_events(&filter).await?;
        rows.into_iter()
            .map(|row| {
                serde_json::from_str(&row.body).map_err(|_| Error::CorruptEvent(row.event_id))
            })
            .collect()
    }
}

/// The writer task: collects batches and stores each with one `apply`, until every sender is
/// gone.
async fn write_batches(store: std::sync::Arc<dyn Store>, mut receiver: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(BATCH_EVENTS_MAX);
    let mut waiters = Vec::new();
    while let Some(first) = receiver.recv().await {
        let mut flush_now = take(first, &mut batch, &mut waiters);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(BATCH_WINDOW_MILLIS);
        while !flush_now && batch.len() < BATCH_EVENTS_MAX {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(command)) => flush_now = take(command, &mut batch, &mut waiters),
                Ok(None) | Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write_batch(store.as_ref(), std::mem::take(&mut batch)).await;
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// Adds a command to the batch; returns whether it asks to write now.
fn take(
    command: Command,
    batch: &mut Vec<SignInEvent>,
    waiters: &mut Vec<oneshot::Sender<()>>,
) -> bool {
    match command {
        Command::Record(event) => {
            batch.push(*event);
            false
        }
        Command::Flush(waiter) => {
            waiters.push(waiter);
            true
        }
    }
}

/// Stores one batch, retrying with backoff; after the last attempt the events are logged as
/// lost rather than blocking token issuance forever.
async fn write_batch(store: &dyn Store, batch: Vec<SignInEvent>) {
    assert!(batch.len() <= BATCH_EVENTS_MAX, "a batch has at most BATCH_EVENTS_MAX events");
    let writes: Vec<Write> =
        batch.iter().map(|event| Write::AppendSignInEvent(event.to_record())).collect();
    let mut backoff = Duration::from_millis(RETRY_BACKOFF_MILLIS);
    for attempt in 1..=WRITE_ATTEMPTS_MAX {
        match store.apply(writes.clone()).await {
            Ok(()) => return,
            Err(error) if attempt < WRITE_ATTEMPTS_MAX => {
                tracing::warn!(%error, attempt, events = batch.len(), "writing sign-in events failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(error) => {
                tracing::error!(%error, events = batch.len(), "writing sign-in events failed; events lost");
            }
        }
    }
}

/// RFC 3339 in UTC (`2024-01-01T00:00:00Z`, with a fraction only when there is one).
fn rfc3339(time: UnixTime) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(time.millis()) * 1_000_000)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        // Only years outside 0..=9999 fail; Graph has no way to say those either.
        .unwrap_or_else(|| time.millis().to_string())
}

#[cfg(test)]
mod tests;
