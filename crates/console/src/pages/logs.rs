//! The activity log (control-plane writes of the subscription) and the sign-in logs (every
//! token the token service issued or refused), newest first, with filters by time, caller,
//! operation and status, and a detail view of one event.
//!
//! API calls: `GET /subscriptions/{s}/providers/microsoft.insights/eventtypes/management/values
//! ?$filter=eventTimestamp ge ...` (following `nextLink`), `GET /v1.0/auditLogs/signIns
//! ?$filter=createdDateTime ge ...&$top=1000` (paged by time: the API has no `nextLink` here),
//! `GET /v1.0/servicePrincipals` (callers' names).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{ApiError, PAGES_MAX};
use crate::html::{self, Nav, link};
use crate::session::Session;
use crate::web::{API_INSIGHTS, App, Ctx};

/// Events shown at most on one page.
const SHOWN_MAX: usize = 500;
/// The sign-in API's page size.
const SIGN_IN_PAGE: usize = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    since: Option<String>,
    caller: Option<String>,
    operation: Option<String>,
    status: Option<String>,
    group: Option<String>,
    resource: Option<String>,
    id: Option<String>,
    time: Option<String>,
}

/// The time windows offered, as (query value, seconds, label).
const WINDOWS: &[(&str, i64, &str)] = &[
    ("1h", 3600, "Last hour"),
    ("24h", 86_400, "Last 24 hours"),
    ("7d", 7 * 86_400, "Last 7 days"),
    ("30d", 30 * 86_400, "Last 30 days"),
];

fn window_secs(since: Option<&str>) -> i64 {
    WINDOWS.iter().find(|(key, _, _)| Some(*key) == since).map_or(86_400, |(_, secs, _)| *secs)
}

fn window_select(since: Option<&str>) -> Markup {
    let since = since.unwrap_or("24h");
    html! {
        div.field {
            label for="l-since" { "Time span" }
            select #l-since name="since" {
                @for (key, _, label) in WINDOWS { option value=(key) selected[*key == since] { (label) } }
            }
        }
    }
}

/// Principals' display names by app id and by object id.
async fn names(ctx: &Ctx) -> HashMap<String, String> {
    let mut names = HashMap::new();
    if let Ok(principals) = ctx.list("/v1.0/servicePrincipals").await {
        for principal in principals {
            let name = html::text(&principal, "/displayName").to_owned();
            names.insert(html::text(&principal, "/appId").to_ascii_lowercase(), name.clone());
            names.insert(html::text(&principal, "/id").to_ascii_lowercase(), name);
        }
    }
    names
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(&needle.to_ascii_lowercase())
}

/// Activity events of the subscription since `since` (Unix seconds), oldest first as the API
/// gives them.
async fn activity_events(
    ctx: &Ctx,
    subscription: &str,
    filter: &str,
) -> Result<Vec<Value>, ApiError> {
    ctx.list(&format!(
        "{subscription}/providers/microsoft.insights/eventtypes/management/values?api-version={API_INSIGHTS}&$filter={}",
        client::encode(filter)
    ))
    .await
}

/// `GET /console/activity`.
pub async fn activity(
    State(app): State<App>,
    session: Session,
    Query(query): Query<LogQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let subscription = match ctx.subscription_scope() {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let since = ctx.app.now() - window_secs(query.since.as_deref());
    let mut filter = format!("eventTimestamp ge '{}'", html::rfc3339(since));
    if let Some(group) = query.group.as_deref().filter(|group| !group.is_empty()) {
        filter.push_str(&format!(" and resourceGroupName eq '{}'", group.replace('\'', "''")));
    }
    let (events, names) = tokio::join!(activity_events(&ctx, &subscription, &filter), names(&ctx));
    let events = match events {
        Ok(events) => events,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let caller_name = |event: &Value| {
        let app_id = html::text(event, "/caller").to_ascii_lowercase();
        names.get(&app_id).cloned().unwrap_or_else(|| html::text(event, "/caller").to_owned())
    };
    let caller = query.caller.as_deref().unwrap_or_default().trim();
    let operation = query.operation.as_deref().unwrap_or_default().trim();
    let status = query.status.as_deref().unwrap_or_default();
    let shown: Vec<&Value> = events
        .iter()
        .rev()
        .filter(|event| {
            caller.is_empty()
                || contains(html::text(event, "/caller"), caller)
                || contains(html::text(event, "/claims/oid"), caller)
                || contains(&caller_name(event), caller)
        })
        .filter(|event| {
            operation.is_empty() || contains(html::text(event, "/operationName/value"), operation)
        })
        .filter(|event| {
            status.is_empty() || html::text(event, "/status/value").eq_ignore_ascii_case(status)
        })
        .take(SHOWN_MAX)
        .collect();
    let body = html! {
        p.muted { "Writes to the subscription's resources and role assignments, newest first." }
        form.row method="get" action=(link("/activity", &[])) role="search" {
            (window_select(query.since.as_deref()))
            div.field { label for="l-caller" { "Event initiated by" } input #l-caller type="search" name="caller" value=(caller); }
            div.field { label for="l-operation" { "Operation" } input #l-operation type="search" name="operation" value=(operation) placeholder="virtualMachines/write"; }
            div.field {
                label for="l-status" { "Status" }
                select #l-status name="status" {
                    option value="" selected[status.is_empty()] { "All" }
                    @for value in ["Succeeded", "Failed", "Started"] { option value=(value) selected[status == value] { (value) } }
                }
            }
            div.field { label for="l-group" { "Resource group" } input #l-group type="search" name="group" value=(query.group.as_deref().unwrap_or_default()); }
            button type="submit" { "Apply" }
        }
        p.muted.small { (shown.len()) " of " (events.len()) " events" }
        div.table-wrap {
            table #activity {
                thead { tr { th { "Time (UTC)" } th { "Operation" } th { "Status" } th { "Resource" } th { "Event initiated by" } } }
                tbody {
                    @for event in &shown {
                        tr {
                            td.time { a href=(link("/activity/event", &[("id", html::text(event, "/eventDataId")), ("time", html::text(event, "/eventTimestamp"))])) { (short_time(html::text(event, "/eventTimestamp"))) } }
                            td {
                                (operation_label(html::text(event, "/operationName/value")))
                                br;
                                code.small.muted { (html::text(event, "/operationName/value")) }
                            }
                            td { (status_badge(html::text(event, "/status/value"))) }
                            td { (resource_label(html::text(event, "/resourceId"))) }
                            td { (caller_name(event)) }
                        }
                    }
                }
            }
            @if shown.is_empty() { p.empty { "No events match." } }
        }
    };
    ctx.page(Nav::Activity, "Activity log", body)
}

/// `2025-01-31 12:00:00`: a time in a table whose header says UTC.
fn short_time(text: &str) -> String {
    html::api_time(text).trim_end_matches(" UTC").to_owned()
}

/// An operation in words: `Microsoft.Compute/virtualMachines/write` is "Create or update
/// virtual machine".
fn operation_label(operation: &str) -> String {
    let parts: Vec<&str> = operation.split('/').collect();
    let Some((verb, rest)) = parts.split_last() else { return operation.to_owned() };
    let (verb, rest) = if *verb == "action" && rest.len() > 2 {
        (rest[rest.len() - 1], &rest[..rest.len() - 1])
    } else {
        (*verb, rest)
    };
    let noun = match rest.last().map(|kind| kind.to_ascii_lowercase()).as_deref() {
        Some("virtualmachines") => "virtual machine".to_owned(),
        Some("virtualmachinescalesets") => "scale set".to_owned(),
        Some("sites") => "web or function app".to_owned(),
        Some("userassignedidentities") => "user-assigned identity".to_owned(),
        Some("federatedidentitycredentials") => "federated credential".to_owned(),
        Some("vaults") => "key vault".to_owned(),
        Some("roleassignments") => "role assignment".to_owned(),
        Some("roledefinitions") => "role definition".to_owned(),
        Some("resourcegroups") => "resource group".to_owned(),
        Some(other) => other.to_owned(),
        None => String::new(),
    };
    match verb {
        "write" => format!("Create or update {noun}"),
        "delete" => format!("Delete {noun}"),
        "read" => format!("Read {noun}"),
        other => format!("{other} ({noun})"),
    }
}

/// A resource in a few words: its name, or for a role assignment the scope it was made at.
fn resource_label(id: &str) -> String {
    let lower = id.to_ascii_lowercase();
    if let Some(at) = lower.find("/providers/microsoft.authorization/roleassignments/") {
        let scope = &id[..at];
        let name = if scope.is_empty() { "/" } else { scope.rsplit('/').next().unwrap_or(scope) };
        return format!("role assignment on {name}");
    }
    id.rsplit('/').next().unwrap_or_default().to_owned()
}

fn status_badge(status: &str) -> Markup {
    match status {
        "Succeeded" | "Success" => html! { span.badge.ok { (status) } },
        "Failed" | "Failure" => html! { span.badge.bad { (status) } },
        _ => html! { span.badge { (status) } },
    }
}

/// A window of a few seconds around an event's time, as (since, until) Unix seconds.
fn around(time: &str) -> Option<(i64, i64)> {
    html::parse_time(time).map(|secs| (secs - 1, secs + 2))
}

/// `GET /console/activity/event?id=&time=`.
pub async fn activity_event(
    State(app): State<App>,
    session: Session,
    Query(query): Query<LogQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let subscription = match ctx.subscription_scope() {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let back = link("/activity", &[]);
    let id = query.id.unwrap_or_default();
    let Some((since, until)) = around(query.time.as_deref().unwrap_or_default()) else {
        return ctx.error_page(
            axum::http::StatusCode::BAD_REQUEST,
            "No such event",
            html::error_text("The link has no valid time."),
        );
    };
    let filter = format!(
        "eventTimestamp ge '{}' and eventTimestamp le '{}'",
        html::rfc3339(since),
        html::rfc3339(until)
    );
    let events = match activity_events(&ctx, &subscription, &filter).await {
        Ok(events) => events,
        Err(error) => return ctx.failed(&error, &back),
    };
    let Some(event) = events.iter().find(|event| html::text(event, "/eventDataId") == id) else {
        return ctx.error_page(axum::http::StatusCode::NOT_FOUND, "No such event", html! { (html::error_text("The event was not found.")) p { a href=(back) { "Activity log" } } });
    };
    let correlation = html::text(event, "/correlationId");
    let related: Vec<&Value> =
        events.iter().filter(|other| html::text(other, "/correlationId") == correlation).collect();
    let body = html! {
        p { a href=(back) { "Activity log" } }
        div.card {
            (html::facts(&[
                ("Operation", html! { code { (html::text(event, "/operationName/value")) } }),
                ("Status", status_badge(html::text(event, "/status/value"))),
                ("Time", html! { (html::api_time(html::text(event, "/eventTimestamp"))) }),
                ("Resource", html! { a href=(link("/resource", &[("id", html::text(event, "/resourceId"))])) { (html::text(event, "/resourceId")) } }),
                ("Caller (app id)", html::id_text(html::text(event, "/caller"))),
                ("Caller (object id)", html::id_text(html::text(event, "/claims/oid"))),
                ("Client address", html::or_dash(html::text(event, "/httpRequest/clientIpAddress"))),
                ("Correlation id", html::id_text(correlation)),
            ]))
        }
        @if related.len() > 1 {
            h2 { "Events of the same operation" }
            ul { @for other in &related {
                li { a href=(link("/activity/event", &[("id", html::text(other, "/eventDataId")), ("time", html::text(other, "/eventTimestamp"))])) { (html::text(other, "/eventName/localizedValue")) ": " (html::text(other, "/status/value")) } }
            } }
        }
        h2 { "JSON" }
        (html::json_block(event))
    };
    ctx.page(Nav::Activity, "Activity event", body)
}

/// Sign-in events since `since`, newest first: the API answers the oldest 1000 of a window, so
/// full pages move the window's start to the newest event seen.
pub async fn sign_in_events(
    ctx: &Ctx,
    since: i64,
    until: Option<i64>,
    principal: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let mut events: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut start = html::rfc3339(since);
    for _ in 0..PAGES_MAX {
        let mut filter = format!("createdDateTime ge {start}");
        if let Some(principal) = principal {
            filter.push_str(&format!(" and appId eq '{}'", principal.replace('\'', "''")));
        }
        let page = ctx
            .list(&format!(
                "/v1.0/auditLogs/signIns?$filter={}&$top={SIGN_IN_PAGE}",
                client::encode(&filter)
            ))
            .await?;
        let full = page.len() >= SIGN_IN_PAGE;
        let newest = page.last().map(|event| html::text(event, "/createdDateTime").to_owned());
        for event in page {
            if seen.insert(html::text(&event, "/id").to_owned()) {
                events.push(event);
            }
        }
        match newest {
            Some(newest) if full && newest != start => start = newest,
            _ => break,
        }
    }
    if let Some(until) = until {
        events.retain(|event| {
            html::parse_time(html::text(event, "/createdDateTime")).is_some_and(|at| at <= until)
        });
    }
    events.reverse();
    Ok(events)
}

fn sign_in_ok(event: &Value) -> bool {
    event["status"]["errorCode"].as_i64().unwrap_or(0) == 0
}

/// `GET /console/signins`.
pub async fn sign_ins(
    State(app): State<App>,
    session: Session,
    Query(query): Query<LogQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let since = ctx.app.now() - window_secs(query.since.as_deref());
    let caller = query.caller.as_deref().unwrap_or_default().trim();
    let looks_like_id =
        caller.len() == 36 && caller.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let events = match sign_in_events(&ctx, since, None, looks_like_id.then_some(caller)).await {
        Ok(events) => events,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let status = query.status.as_deref().unwrap_or_default();
    let resource = query.resource.as_deref().unwrap_or_default().trim();
    let kind = query.operation.as_deref().unwrap_or_default();
    let shown: Vec<&Value> = events
        .iter()
        .filter(|event| {
            caller.is_empty()
                || looks_like_id
                || contains(html::text(event, "/appDisplayName"), caller)
        })
        .filter(|event| match status {
            "success" => sign_in_ok(event),
            "failure" => !sign_in_ok(event),
            _ => true,
        })
        .filter(|event| resource.is_empty() || contains(html::text(event, "/resourceId"), resource))
        .filter(|event| {
            kind.is_empty() || html::text(event, "/principalType").eq_ignore_ascii_case(kind)
        })
        .take(SHOWN_MAX)
        .collect();
    let body = html! {
        p.muted { "Every token request the token service answered, newest first: service principals' and managed identities'." }
        form.row method="get" action=(link("/signins", &[])) role="search" {
            (window_select(query.since.as_deref()))
            div.field { label for="s-caller" { "Application name or app id" } input #s-caller type="search" name="caller" value=(caller); }
            div.field {
                label for="s-kind" { "Principal type" }
                select #s-kind name="operation" {
                    option value="" selected[kind.is_empty()] { "All" }
                    option value="ManagedIdentity" selected[kind == "ManagedIdentity"] { "Managed identities" }
                    option value="ServicePrincipal" selected[kind == "ServicePrincipal"] { "Service principals" }
                }
            }
            div.field { label for="s-resource" { "Resource (audience)" } input #s-resource type="search" name="resource" value=(resource); }
            div.field {
                label for="s-status" { "Status" }
                select #s-status name="status" {
                    option value="" selected[status.is_empty()] { "All" }
                    option value="success" selected[status == "success"] { "Success" }
                    option value="failure" selected[status == "failure"] { "Failure" }
                }
            }
            button type="submit" { "Apply" }
        }
        p.muted.small { (shown.len()) " of " (events.len()) " sign-ins" }
        div.table-wrap {
            table #signins {
                thead { tr { th { "Time (UTC)" } th { "Application" } th { "Type" } th { "Resource" } th { "Status" } th { "Credential" } } }
                tbody {
                    @for event in &shown {
                        tr {
                            td.time { a href=(link("/signins/event", &[("id", html::text(event, "/id")), ("time", html::text(event, "/createdDateTime"))])) { (short_time(html::text(event, "/createdDateTime"))) } }
                            td { (html::text(event, "/appDisplayName")) br; span.small.muted { (html::text(event, "/appId")) } }
                            td { (html::text(event, "/principalType")) }
                            td { code { (html::text(event, "/resourceId")) } }
                            td { @if sign_in_ok(event) { span.badge.ok { "Success" } } @else { span.badge.bad { "Failure" } } }
                            td { (html::or_dash(html::text(event, "/credentialType"))) }
                        }
                    }
                }
            }
            @if shown.is_empty() { p.empty { "No sign-ins match." } }
        }
    };
    ctx.page(Nav::SignIns, "Sign-in logs", body)
}

/// `GET /console/signins/event?id=&time=`.
pub async fn sign_in_event(
    State(app): State<App>,
    session: Session,
    Query(query): Query<LogQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let back = link("/signins", &[]);
    let id = query.id.unwrap_or_default();
    let Some((since, until)) = around(query.time.as_deref().unwrap_or_default()) else {
        return ctx.error_page(
            axum::http::StatusCode::BAD_REQUEST,
            "No such event",
            html::error_text("The link has no valid time."),
        );
    };
    let events = match sign_in_events(&ctx, since, Some(until), None).await {
        Ok(events) => events,
        Err(error) => return ctx.failed(&error, &back),
    };
    let Some(event) = events.iter().find(|event| html::text(event, "/id") == id) else {
        return ctx.error_page(axum::http::StatusCode::NOT_FOUND, "No such event", html! { (html::error_text("The sign-in was not found.")) p { a href=(back) { "Sign-in logs" } } });
    };
    let compute = html::text(event, "/computeResourceId");
    let body = html! {
        p { a href=(back) { "Sign-in logs" } }
        div.card {
            (html::facts(&[
                ("Time", html! { (html::api_time(html::text(event, "/createdDateTime"))) }),
                ("Status", if sign_in_ok(event) { html! { span.badge.ok { "Success" } } } else { html! { span.badge.bad { "Failure" } " " (html::text(event, "/status/failureReason")) } }),
                ("Application", html! { (html::text(event, "/appDisplayName")) }),
                ("App id", html::id_text(html::text(event, "/appId"))),
                ("Service principal id", html::id_text(html::text(event, "/servicePrincipalId"))),
                ("Principal type", html::or_dash(html::text(event, "/principalType"))),
                ("Resource (audience)", html! { code { (html::text(event, "/resourceId")) } }),
                ("Credential", html::or_dash(html::text(event, "/credentialType"))),
                ("Client address", html::or_dash(html::text(event, "/ipAddress"))),
                ("Host", html::or_dash(html::text(event, "/hostId"))),
                ("Compute resource", if compute.is_empty() { html::dash() } else { html! { a href=(link("/resource", &[("id", compute)])) { (compute) } } }),
                ("Endpoint", html::or_dash(html::text(event, "/endpoint"))),
                ("Correlation id", html::id_text(html::text(event, "/correlationId"))),
            ]))
        }
        h2 { "JSON" }
        (html::json_block(event))
    };
    ctx.page(Nav::SignIns, "Sign-in", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_default_to_a_day() {
        assert_eq!(window_secs(None), 86_400);
        assert_eq!(window_secs(Some("1h")), 3600);
        assert_eq!(window_secs(Some("forever")), 86_400);
        assert_eq!(around("1970-01-01T00:01:00Z"), Some((59, 62)));
        assert_eq!(around("yesterday"), None);
    }

    #[test]
    fn operations_read_as_words() {
        assert_eq!(
            operation_label("Microsoft.Compute/virtualMachines/write"),
            "Create or update virtual machine"
        );
        assert_eq!(
            operation_label("Microsoft.Authorization/roleAssignments/delete"),
            "Delete role assignment"
        );
        assert_eq!(
            operation_label("Microsoft.Resources/subscriptions/resourceGroups/write"),
            "Create or update resource group"
        );
        assert_eq!(
            operation_label("Microsoft.Compute/virtualMachines/start/action"),
            "start (virtual machine)"
        );
    }

    #[test]
    fn role_assignments_are_named_by_their_scope() {
        assert_eq!(
            resource_label(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/g"
            ),
            "role assignment on rg"
        );
        assert_eq!(
            resource_label("/providers/Microsoft.Authorization/roleAssignments/g"),
            "role assignment on /"
        );
        assert_eq!(
            resource_label(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
            ),
            "vm"
        );
    }
}
