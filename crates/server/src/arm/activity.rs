//! The activity log: the one way a control-plane write is committed ([`commit`]: the change and
//! its `Started`/`Succeeded` events in one transaction; a refusal or failure leaves a `Failed`
//! event with the reason), and `GET .../eventtypes/management/values`, newest first.
//!
//! `Failed` events are flood-bounded (issue 17, `AppState::activity_bound`): the same caller's
//! refusals of one action on one scope for one reason within a window are one event whose
//! `properties.eventCount` counts them, and a caller varying its refused writes gets a bounded
//! number of events per window plus one summary. Messages are bounded like the sign-in log's.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::ResourceId;
use domain::aggregate::Placement;
use rbac::ActionKind;
use resources::activity::{self, Operation};
use serde_json::{Value, json};
use store::{EventFilter, Write};

use crate::arm::{Context, encode};
use crate::auth::denied;
use crate::error::ApiError;

const ACTIVITY_PAGE: i64 = 200;

/// What a write does when it goes ahead.
pub struct Outcome {
    /// The writes, applied in one transaction with the events. None: nothing changes (the
    /// operation is a no-op) and no event is recorded.
    pub writes: Vec<Write>,
    pub status: StatusCode,
    /// The answer's body (`None`: an empty body).
    pub body: Option<Value>,
}

/// Runs a control-plane write of `action` on `target`: authorizes it, plans it with `plan`,
/// and commits the writes with `Started` and `Succeeded` events in one transaction. A refusal
/// (403) or a failed plan or commit records a `Failed` event with the HTTP status and is
/// answered as usual.
pub async fn commit(
    context: &Context,
    target: &ResourceId,
    action: &str,
    plan: impl AsyncFnOnce() -> Result<Outcome, ApiError>,
) -> Result<Response, ApiError> {
    let state = &context.state;
    let subscription = target.subscription_id().unwrap_or_default().to_owned();
    let operation = Operation {
        tenant_id: &state.deployment.tenant_id,
        subscription_id: &subscription,
        resource_id: target,
        action,
        caller_object_id: &context.caller().object_id,
        caller_app_id: &context.caller().app_id,
        correlation_id: &context.ids.correlation_id,
        method: context.method.as_str(),
        client_ip: &context.client_ip,
    };
    let outcome = if context.grants.allows(action, ActionKind::Control, target) {
        plan().await
    } else {
        Err(denied("AuthorizationFailed", context.caller(), action, target))
    };
    let outcome = match outcome {
        Ok(outcome) if outcome.writes.is_empty() => Ok(outcome),
        Ok(mut outcome) => {
            let now = state.clock.now();
            let mut writes = Vec::with_capacity(outcome.writes.len() + 2);
            writes.push(Write::AppendActivityEvent(activity::event(
                &operation, "Started", None, now,
            )));
            writes.append(&mut outcome.writes);
            writes.push(Write::AppendActivityEvent(activity::event(
                &operation,
                "Succeeded",
                Some(outcome.status.as_u16()),
                now,
            )));
            match state.store.apply(writes).await {
                Ok(()) => {
                    state.changed();
                    Ok(outcome)
                }
                Err(store::Error::Conflict(_)) => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "The resource was changed by another request; retry.",
                )),
                Err(other) => Err(ApiError::from(other)),
            }
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(outcome) => Ok(match outcome.body {
            Some(body) => (outcome.status, Json(body)).into_response(),
            None => outcome.status.into_response(),
        }),
        Err(error) => {
            record_failure(context, target, action, &error).await;
            Err(error)
        }
    }
}

/// Records a refused or failed write as a `Failed` event with its status, code and (bounded)
/// message, counted into its flood-bounded aggregate ([`bounded_failure`]). A store failure is
/// logged, not returned: the caller's answer is the write's error.
pub async fn record_failure(
    context: &Context,
    target: &ResourceId,
    action: &str,
    error: &ApiError,
) {
    let state = &context.state;
    let subscription = target.subscription_id().unwrap_or_default().to_owned();
    let operation = Operation {
        tenant_id: &state.deployment.tenant_id,
        subscription_id: &subscription,
        resource_id: target,
        action,
        caller_object_id: &context.caller().object_id,
        caller_app_id: &context.caller().app_id,
        correlation_id: &context.ids.correlation_id,
        method: context.method.as_str(),
        client_ip: &context.client_ip,
    };
    let failed = activity::failed_event(
        &operation,
        error.status.as_u16(),
        error.code,
        &issuer::bounded_text(&error.message),
        state.clock.now(),
    );
    let write = Write::AddToActivityAggregate(bounded_failure(
        context,
        failed,
        target,
        action,
        (error.status.as_u16(), error.code),
    ));
    context.failure_recorded.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Err(log_error) = state.store.apply(vec![write]).await {
        tracing::warn!(%log_error, "could not record a failed operation");
    }
}

/// The aggregate a `Failed` event is counted into: its own (same caller, subscription, action,
/// scope, status and code in this window), or its caller's summary once the caller has used up
/// its distinct events for the window.
fn bounded_failure(
    context: &Context,
    mut failed: store::NewEventRecord,
    target: &ResourceId,
    action: &str,
    (status, code): (u16, &str),
) -> store::EventAggregate {
    let now = context.state.clock.now();
    // The caller is the principal alone: varying the subscription in the path does not buy a
    // caller more distinct events.
    let caller = context.caller().object_id.clone();
    let key = format!(
        "{caller}\0{}\0{action}\0{}\0{status}\0{code}",
        target.subscription_id().unwrap_or_default().to_ascii_lowercase(),
        target.key()
    );
    let slot = context.state.activity_bound.place(&caller, &key, now);
    let name = match slot.placement {
        Placement::Own => format!("own\0{key}"),
        Placement::CallerSummary => format!("summary\0{caller}"),
        Placement::SharedSummary => "summary\0*".to_owned(),
    };
    if slot.placement != Placement::Own
        && let Ok(mut body) = serde_json::from_str::<Value>(&failed.body)
    {
        body["properties"]["eventSummary"] = json!(
            "Further refused or failed writes of this caller in this window, counted together (the log keeps a bounded number per caller)."
        );
        failed.body = body.to_string();
    }
    store::EventAggregate {
        record: failed,
        aggregate_key: crypto::hash::sha256_hex(format!("{name}\0{}", slot.window).as_bytes()),
        count: 1,
        last_timestamp: now.millis(),
    }
}

/// `GET /subscriptions/{s}/providers/microsoft.insights/eventtypes/management/values`, newest
/// first, filtered by time, group, correlation id, caller, operation and status.
pub async fn list(context: &Context, scope: &ResourceId) -> Result<Response, ApiError> {
    let subscription =
        scope.subscription_id().filter(|_| scope.is_subscription()).ok_or_else(|| {
            ApiError::bad_request("InvalidResourceId", "The activity log is read per subscription.")
        })?;
    context.grants.check("Microsoft.Insights/eventtypes/values/read", scope)?;
    let mut filter = EventFilter {
        partition: subscription.to_ascii_lowercase(),
        limit: ACTIVITY_PAGE,
        after_seq: 0,
        before_seq: context.query("$skiptoken").and_then(|token| token.parse().ok()),
        newest_first: true,
        ..EventFilter::default()
    };
    if let Some(text) = context.query("$filter") {
        for clause in text.split(" and ") {
            let clause = clause.trim();
            let bad = || {
                ApiError::bad_request(
                    "InvalidFilter",
                    format!("Unsupported $filter clause: {clause}"),
                )
            };
            if let Some(time) = clause.strip_prefix("eventTimestamp ge ") {
                filter.since = Some(activity::parse_time(time).ok_or_else(bad)?.millis());
            } else if let Some(time) = clause.strip_prefix("eventTimestamp le ") {
                filter.until = Some(activity::parse_time(time).ok_or_else(bad)?.millis());
            } else {
                let (field, value) = split_eq(clause).ok_or_else(bad)?;
                match field.as_str() {
                    "resourcegroupname" => {
                        filter.resource_group_key = Some(value.to_ascii_lowercase())
                    }
                    "correlationid" => filter.correlation_id = Some(value),
                    _ => return Err(bad()),
                }
            }
        }
    }
    let rows = context.state.store.list_activity_events(&filter).await?;
    let next = (rows.len() as i64 == ACTIVITY_PAGE)
        .then(|| rows.last().map(|row| row.seq.to_string()))
        .flatten();
    let value: Vec<Value> = rows
        .iter()
        .filter_map(|row| {
            let mut event: Value = serde_json::from_str(&row.body).ok()?;
            // An aggregated event says how many it stands for, as strings like Azure's
            // `properties`.
            if row.event_count > 1 && event["properties"].is_object() {
                event["properties"]["eventCount"] = json!(row.event_count.to_string());
                event["properties"]["lastEventTimestamp"] =
                    json!(activity::format_time(domain::UnixTime::from_millis(row.last_timestamp)));
            }
            Some(event)
        })
        .collect();
    let mut body = json!({"value": value});
    if let Some(token) = next {
        // Keep the filter on the next page.
        let mut link = context.next_link(&token);
        if let Some(text) = context.query("$filter") {
            link.push_str(&format!("&$filter={}", encode(text)));
        }
        body["nextLink"] = json!(link);
    }
    Ok(Json(body).into_response())
}

/// `field eq 'value'` → (lower-case field, value).
pub fn split_eq(filter: &str) -> Option<(String, String)> {
    let (field, value) = filter.split_once(" eq ")?;
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some((field.trim().to_ascii_lowercase(), value.replace("''", "'")))
}
