//! The sign-in log: token requests, successful or not, written in batches by a background task
//! and read back as Microsoft Graph `signIn` objects.
//!
//! The log is bounded whatever the traffic (issue 17):
//!
//! - every field is bounded ([`SignInEvent::bounded`], run by [`SignInLog::record`] before the
//!   event is queued): ids that are not GUIDs, text longer than
//!   [`domain::limits::LOG_TEXT_CHARS_MAX`] and control characters are replaced by a preview, a
//!   marker and a digest of the whole;
//! - identical successful sign-ins (same principal, client, resource, address, outcome) within
//!   [`domain::limits::SIGN_IN_SUCCESS_WINDOW_SECS`], and failed ones from one caller for one
//!   reason within [`domain::limits::SIGN_IN_FAILURE_WINDOW_SECS`], are one event with a count
//!   (`signInCount`) and the time of the last one (`lastSignInDateTime`); a caller that varies
//!   what it sends gets at most [`domain::limits::LOG_EVENTS_PER_CALLER_PER_WINDOW_MAX`] events
//!   per window and a summary event (`summary: true`) for the rest ([`domain::aggregate`]);
//! - the server's background job deletes events past their retention and beyond the size cap
//!   (`store::Store::prune_events`).
//!
//! [`SignInLog::record`] bounds the event and puts it on a bounded channel (waiting when it is
//! full, never dropping it). The writer task counts events into aggregates in memory: a new
//! aggregate is written within [`BATCH_WINDOW_MILLIS`], the counts of written ones every
//! [`COUNT_FLUSH_MILLIS`], each batch with one `Store::apply` of upserts keyed by the
//! aggregate, so several nodes (or a restart) count into the same rows. The stored body is the
//! first event's Graph JSON; listing adds the count and the last time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::UnixTime;
use domain::aggregate::{AggregationPolicy, Aggregator, Placement};
use domain::limits::{LOG_ID_PREVIEW_CHARS, LOG_TEXT_CHARS_MAX, RESOURCE_ID_CHARS_MAX};
use serde_json::{Value, json};
use store::{EventAggregate, EventFilter, NewEventRecord, Store, Write};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::{Error, Result};

/// Capacity of the channel between [`SignInLog::record`] and the writer task.
pub(crate) const CHANNEL_CAPACITY: usize = 4096;
/// How long a new aggregate waits in memory before it is written (with whatever else is due).
pub(crate) const BATCH_WINDOW_MILLIS: u64 = 50;
/// How often the counts of aggregates already written are added to the store.
pub(crate) const COUNT_FLUSH_MILLIS: u64 = 1000;
/// Attempts at writing one batch before it is given up (and logged as lost).
const WRITE_ATTEMPTS_MAX: u32 = 5;
/// Wait before the first retry; doubled for each further one.
const RETRY_BACKOFF_MILLIS: u64 = 100;
/// Why a summary event stands for several sign-ins.
const CALLER_SUMMARY_REASON: &str = "Further distinct sign-ins of this caller in this window, counted together (the log keeps a bounded number per caller).";
const SHARED_SUMMARY_REASON: &str = "Sign-ins of further callers in this window, counted together (the log tells a bounded number of callers apart).";

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

    /// The event with every field bounded for the log: ids that are not GUIDs and addresses
    /// that are not IP addresses are replaced by a marked preview, resource ids that do not
    /// parse and text over [`LOG_TEXT_CHARS_MAX`] characters (or with control characters) by a
    /// marked prefix; each marker carries the length and a SHA-256 prefix of the whole value, so
    /// equal values stay recognisable.
    pub fn bounded(self) -> SignInEvent {
        let bounded = SignInEvent {
            id: bounded_id(&self.id),
            created: self.created,
            tenant_id: bounded_text(&self.tenant_id),
            principal_id: self.principal_id.as_deref().map(bounded_id),
            app_id: self.app_id.as_deref().map(bounded_id),
            principal_display_name: self.principal_display_name.as_deref().map(bounded_resource_id),
            principal_type: bounded_text(&self.principal_type),
            credential_type: bounded_text(&self.credential_type),
            resource: self.resource.as_deref().map(bounded_text),
            success: self.success,
            error_code: self.error_code,
            failure_reason: self.failure_reason.as_deref().map(bounded_text),
            client_ip: self.client_ip.as_deref().map(bounded_address),
            correlation_id: self.correlation_id.as_deref().map(bounded_text),
            host_id: self.host_id.as_deref().map(bounded_text),
            compute_resource_id: self.compute_resource_id.as_deref().map(bounded_resource_id),
            endpoint: self.endpoint.as_deref().map(bounded_text),
        };
        // Postcondition: nothing unbounded reaches the store.
        for field in bounded.text_fields() {
            assert!(field.chars().count() <= RESOURCE_ID_CHARS_MAX, "a log field is bounded");
            assert!(!field.chars().any(char::is_control), "a log field has no control characters");
        }
        bounded
    }

    /// The event as a Microsoft Graph `signIn` object, plus Ambient's own members
    /// (`credentialType`, `principalType`, `hostId`, `computeResourceId`, `endpoint`, and
    /// `signInCount`, `lastSignInDateTime` and `summary` for aggregated events).
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
            "signInCount": 1,
            "lastSignInDateTime": rfc3339(self.created),
            "summary": false,
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

    fn text_fields(&self) -> impl Iterator<Item = &str> {
        [&self.id, &self.tenant_id, &self.principal_type, &self.credential_type]
            .into_iter()
            .map(String::as_str)
            .chain(
                [
                    &self.principal_id,
                    &self.app_id,
                    &self.principal_display_name,
                    &self.resource,
                    &self.failure_reason,
                    &self.client_ip,
                    &self.correlation_id,
                    &self.host_id,
                    &self.compute_resource_id,
                    &self.endpoint,
                ]
                .into_iter()
                .filter_map(Option::as_deref),
            )
    }

    /// Who the event's caller is, and what makes two events of that caller the same: the
    /// aggregation's group and key. Successes are grouped by principal, host and address;
    /// failures by host and address (a failing caller is not known to be anyone).
    fn caller_and_key(&self) -> (String, String) {
        let address = address_group(self.client_ip.as_deref());
        let host = self.host_id.as_deref().unwrap_or_default();
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        if self.success {
            let who =
                self.principal_id.as_ref().or(self.app_id.as_ref()).cloned().unwrap_or_default();
            let caller = format!("ok\0{}\0{who}\0{host}\0{address}", self.tenant_id);
            let key = format!(
                "{caller}\0{}\0{}\0{}\0{}\0{}\0{}",
                text(&self.app_id),
                text(&self.resource),
                self.credential_type,
                self.principal_type,
                text(&self.endpoint),
                text(&self.compute_resource_id),
            );
            (caller, key)
        } else {
            let caller = format!("failed\0{}\0{host}\0{address}", self.tenant_id);
            let key = format!(
                "{caller}\0{}\0{}\0{}\0{}\0{}\0{}\0{}",
                text(&self.app_id),
                self.error_code.unwrap_or(0),
                text(&self.failure_reason),
                self.credential_type,
                text(&self.endpoint),
                text(&self.compute_resource_id),
                text(&self.resource),
            );
            (caller, key)
        }
    }

    /// The event standing for a caller's further sign-ins: what varies between them is dropped.
    fn into_summary(mut self, shared: bool) -> SignInEvent {
        self.resource = None;
        self.compute_resource_id = None;
        self.correlation_id = None;
        if shared || !self.success {
            self.principal_id = None;
            self.app_id = None;
            self.principal_display_name = None;
        }
        if shared {
            self.client_ip = None;
            self.host_id = None;
        }
        let reason = if shared { SHARED_SUMMARY_REASON } else { CALLER_SUMMARY_REASON };
        if !self.success {
            self.failure_reason = Some(reason.to_owned());
        }
        self
    }
}

impl SignInLog {
    /// Starts the writer task on the current Tokio runtime and returns a handle on it.
    ///
    /// Panics when called outside a Tokio runtime (it spawns the writer task).
    pub fn start(store: Arc<dyn Store>) -> SignInLog {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(Writer::new(store).run(receiver));
        SignInLog { sender }
    }

    /// Bounds the event ([`SignInEvent::bounded`]) and queues it. Waits while the channel is
    /// full (backpressure); never drops the event unless the writer task is gone, which is
    /// logged.
    pub async fn record(&self, event: SignInEvent) {
        let event = event.bounded();
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
    /// `signIn` objects with their `signInCount` and `lastSignInDateTime`. `principal` matches
    /// an object id or an app id; `since` keeps events created at or after it.
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
                let mut body: Value = serde_json::from_str(&row.body)
                    .map_err(|_| Error::CorruptEvent(row.event_id.clone()))?;
                let Some(object) = body.as_object_mut() else {
                    return Err(Error::CorruptEvent(row.event_id));
                };
                object.insert("signInCount".to_owned(), json!(row.event_count));
                object.insert(
                    "lastSignInDateTime".to_owned(),
                    json!(rfc3339(UnixTime::from_millis(row.last_timestamp.max(row.timestamp)))),
                );
                Ok(body)
            })
            .collect()
    }
}

/// An aggregate counted in memory: the first event's record, and what is not written yet.
struct Pending {
    /// `count` and `last_timestamp` are what the store has not been told yet.
    aggregate: EventAggregate,
    /// Whether the store has the row (so only counts remain to add).
    stored: bool,
    /// When the aggregate's window ends (milliseconds): later events count elsewhere.
    window_end: i64,
    /// The order the aggregate began in: new rows are appended in this order, so the log's
    /// sequence follows the order events were recorded.
    order: u64,
}

/// The writer task's state: the aggregators that decide where events are counted, and the
/// counts not yet written.
struct Writer {
    store: Arc<dyn Store>,
    successes: Aggregator,
    failures: Aggregator,
    pending: HashMap<String, Pending>,
    /// When the oldest aggregate not yet in the store arrived.
    new_since: Option<Instant>,
    /// When the counts of stored aggregates are next written.
    counts_due: Instant,
    /// The newest event time seen (milliseconds).
    newest: i64,
    /// Aggregates begun so far (the next one's `order`).
    begun: u64,
}

impl Writer {
    fn new(store: Arc<dyn Store>) -> Writer {
        let policy = |window_secs: i64| AggregationPolicy {
            window_millis: window_secs * 1000,
            per_caller_max: domain::limits::LOG_EVENTS_PER_CALLER_PER_WINDOW_MAX,
            callers_max: domain::limits::LOG_CALLERS_PER_WINDOW_MAX,
        };
        Writer {
            store,
            successes: Aggregator::new(policy(domain::limits::SIGN_IN_SUCCESS_WINDOW_SECS)),
            failures: Aggregator::new(policy(domain::limits::SIGN_IN_FAILURE_WINDOW_SECS)),
            pending: HashMap::new(),
            new_since: None,
            counts_due: Instant::now(),
            newest: i64::MIN,
            begun: 0,
        }
    }

    /// Takes commands until every sender is gone, writing what is due in between.
    async fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        loop {
            let command = match self.deadline() {
                Some(deadline) => match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(command) => command,
                    Err(_) => {
                        self.write_all().await;
                        continue;
                    }
                },
                None => receiver.recv().await,
            };
            match command {
                Some(Command::Record(event)) => {
                    self.add(*event);
                    if self.pending.len() >= domain::limits::LOG_PENDING_EVENTS_MAX {
                        self.write_all().await;
                        // The store has every row now; later events count into them by key.
                        self.pending.clear();
                    }
                }
                Some(Command::Flush(done)) => {
                    self.write_all().await;
                    let _ = done.send(());
                }
                None => {
                    self.write_all().await;
                    return;
                }
            }
        }
    }

    /// Counts one (bounded) event into its aggregate.
    fn add(&mut self, event: SignInEvent) {
        let time = event.created.millis();
        self.newest = self.newest.max(time);
        let (caller, key) = event.caller_and_key();
        let aggregator = if event.success { &mut self.successes } else { &mut self.failures };
        let window_millis = aggregator.policy().window_millis;
        let slot = aggregator.place(&caller, &key, event.created);
        let outcome = if event.success { "ok" } else { "failed" };
        let name = match slot.placement {
            Placement::Own => format!("own\0{key}"),
            Placement::CallerSummary => format!("summary\0{caller}"),
            Placement::SharedSummary => format!("summary\0{outcome}\0{}", event.tenant_id),
        };
        let aggregate_key = digest_hex(&format!("{name}\0{}", slot.window));
        if let Some(pending) = self.pending.get_mut(&aggregate_key) {
            pending.aggregate.count += 1;
            pending.aggregate.last_timestamp = pending.aggregate.last_timestamp.max(time);
            return;
        }
        let event = match slot.placement {
            Placement::Own => event,
            Placement::CallerSummary => event.into_summary(false),
            Placement::SharedSummary => event.into_summary(true),
        };
        let mut record = event.to_record();
        if slot.placement != Placement::Own {
            let mut body: Value = event.to_graph_json();
            body["summary"] = json!(true);
            record.body = body.to_string();
        }
        self.pending.insert(
            aggregate_key.clone(),
            Pending {
                aggregate: EventAggregate { record, aggregate_key, count: 1, last_timestamp: time },
                stored: false,
                window_end: (slot.window + 1).saturating_mul(window_millis),
                order: self.begun,
            },
        );
        self.begun += 1;
        self.new_since.get_or_insert_with(Instant::now);
    }

    /// When something is due: a new aggregate's batch window, or the next count flush.
    fn deadline(&self) -> Option<Instant> {
        let new = self.new_since.map(|since| since + Duration::from_millis(BATCH_WINDOW_MILLIS));
        let counts = self
            .pending
            .values()
            .any(|pending| pending.stored && pending.aggregate.count > 0)
            .then_some(self.counts_due);
        match (new, counts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Writes every count not yet written, in one transaction, and forgets aggregates whose
    /// window has ended.
    async fn write_all(&mut self) {
        let mut due: Vec<&Pending> =
            self.pending.values().filter(|pending| pending.aggregate.count > 0).collect();
        due.sort_unstable_by_key(|pending| pending.order);
        let writes: Vec<Write> = due
            .into_iter()
            .map(|pending| Write::AddToSignInAggregate(pending.aggregate.clone()))
            .collect();
        if !writes.is_empty() {
            write_batch(self.store.as_ref(), writes).await;
        }
        for pending in self.pending.values_mut() {
            if pending.aggregate.count > 0 {
                pending.aggregate.count = 0;
                pending.stored = true;
            }
        }
        let newest = self.newest;
        self.pending.retain(|_, pending| pending.window_end > newest);
        self.new_since = None;
        self.counts_due = Instant::now() + Duration::from_millis(COUNT_FLUSH_MILLIS);
    }
}

/// Stores one batch, retrying with backoff; after the last attempt the events are logged as
/// lost rather than blocking token issuance forever.
async fn write_batch(store: &dyn Store, writes: Vec<Write>) {
    assert!(
        writes.len() <= domain::limits::LOG_PENDING_EVENTS_MAX,
        "a batch has at most LOG_PENDING_EVENTS_MAX writes"
    );
    let mut backoff = Duration::from_millis(RETRY_BACKOFF_MILLIS);
    for attempt in 1..=WRITE_ATTEMPTS_MAX {
        match store.apply(writes.clone()).await {
            Ok(()) => return,
            Err(error) if attempt < WRITE_ATTEMPTS_MAX => {
                tracing::warn!(%error, attempt, events = writes.len(), "writing sign-in events failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(error) => {
                tracing::error!(%error, events = writes.len(), "writing sign-in events failed; events lost");
            }
        }
    }
}

/// The value if it is a GUID (canonical lower case), else a marked preview.
fn bounded_id(value: &str) -> String {
    match value.parse::<domain::Guid>() {
        Ok(guid) => guid.to_string(),
        Err(_) => marked(value, LOG_ID_PREVIEW_CHARS, "not a GUID"),
    }
}

/// The value if it is an IP address, else a marked preview.
fn bounded_address(value: &str) -> String {
    match value.parse::<IpAddr>() {
        Ok(address) => address.to_string(),
        Err(_) => marked(value, LOG_ID_PREVIEW_CHARS, "not an IP address"),
    }
}

/// The value if it is a resource id (at most `RESOURCE_ID_CHARS_MAX` characters), else bounded
/// as text.
fn bounded_resource_id(value: &str) -> String {
    match domain::ResourceId::parse(value) {
        Ok(id) if !value.chars().any(char::is_control) => id.as_str().to_owned(),
        _ => bounded_text(value),
    }
}

/// The text if it has at most [`LOG_TEXT_CHARS_MAX`] characters and no control characters,
/// else a marked prefix that fits in [`LOG_TEXT_CHARS_MAX`].
pub fn bounded_text(value: &str) -> String {
    if value.chars().count() <= LOG_TEXT_CHARS_MAX && !value.chars().any(char::is_control) {
        return value.to_owned();
    }
    marked(value, LOG_TEXT_CHARS_MAX - 64, "cut")
}

/// `{preview}…[{why}: {n} chars, sha256 {16 hex}]`: at most `preview_chars` characters of the
/// value without control characters, what was wrong, the length and a digest of the whole.
fn marked(value: &str, preview_chars: usize, why: &str) -> String {
    let preview: String = value.chars().filter(|c| !c.is_control()).take(preview_chars).collect();
    let digest = digest_hex(value);
    format!("{preview}…[{why}: {} chars, sha256 {}]", value.chars().count(), &digest[..16])
}

/// Lower-case hex of the SHA-256 of `text`.
fn digest_hex(text: &str) -> String {
    crypto::hash::sha256_hex(text.as_bytes())
}

/// The part of an address that names a caller: an IPv4 address, or an IPv6 address's /64
/// network (one host is usually given a whole /64). Anything else as it is.
fn address_group(address: Option<&str>) -> String {
    match address.map(str::parse::<IpAddr>) {
        Some(Ok(IpAddr::V6(v6))) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
        Some(Ok(IpAddr::V4(v4))) => v4.to_string(),
        _ => address.unwrap_or_default().to_owned(),
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
