//! Hosts: each host's state, its agent's certificate expiry and last contact, the resources
//! placed on it, the faults injected on the host and on each of its resources
//! (docs/flavours.md), a join token for a new host (shown once), and revocation.
//!
//! API calls: `GET /hosting/hosts` (which carries `faults` and `resourceFaults`),
//! `PUT /hosting/hosts/{name}` (a join token), `POST /hosting/hosts/{name}/revoke`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use crate::html::{self, Nav, link};
use crate::pages::{NoticeQuery, notice_text};
use crate::session::Session;
use crate::web::{App, Ctx, Form, see_other};

/// `GET /console/hosts`.
pub async fn list(
    State(app): State<App>,
    session: Session,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let hosts = match ctx.list("/hosting/hosts").await {
        Ok(hosts) => hosts,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        p.muted {
            "Each host runs an agent that serves the metadata endpoint to the resources placed on it. "
            "Agents enroll once with a join token and then authenticate with a client certificate they renew at half-life. "
            "Faults injected for testing clients (" code { "ambient host fault set" } ") apply to a resource, or to every resource of its host that has none of its own."
        }
        div.table-wrap {
            table #hosts {
                thead { tr { th { "Host" } th { "State" } th { "Certificate expires" } th { "Last contact" } th { "Resources" } th { "Faults" } th { span.sr { "Actions" } } } }
                tbody {
                    @for host in &hosts {
                        @let name = html::text(host, "/name");
                        @let state = html::text(host, "/state");
                        tr {
                            td { strong { (name) } }
                            td {
                                @match state {
                                    "active" => span.badge.ok { "Active" },
                                    "revoked" => span.badge.bad { "Revoked" },
                                    _ => span.badge.warn { "Pending" },
                                }
                            }
                            td { (host["certificateExpiresOn"].as_str().map_or_else(html::dash, |at| html! { (html::api_time(at)) })) }
                            td { (host["lastContact"].as_str().map_or_else(html::dash, |at| html! { (html::api_time(at)) })) }
                            td {
                                ul.plain {
                                    @for resource in host["resources"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                                        li {
                                            a href=(link("/resource", &[("id", resource)])) { (resource.rsplit('/').next().unwrap_or(resource)) }
                                            @let own = fault_summary(&host["resourceFaults"][resource]);
                                            @if !own.is_empty() {
                                                " " span.badge.warn.fault title="Faults injected on this resource" { (own.join(", ")) }
                                            }
                                        }
                                    }
                                }
                            }
                            td {
                                @let faults = fault_summary(&host["faults"]);
                                @if faults.is_empty() {
                                    (html::dash())
                                } @else {
                                    span.badge.warn.fault title="Faults injected on every resource of this host without faults of its own" { (faults.join(", ")) }
                                }
                            }
                            td.actions {
                                @if state != "revoked" {
                                    form.inline method="post" action=(link("/hosts/revoke", &[])) data-confirm=(format!("Revoke host {name}? Its agent gets no more tokens.")) {
                                        (html::csrf_field(&ctx.session))
                                        input type="hidden" name="name" value=(name);
                                        button.btn-secondary type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if hosts.is_empty() { p.empty { "No hosts." } }
        }
        h2 { "Add a host" }
        form.row.card method="post" action=(link("/hosts/join", &[])) {
            (html::csrf_field(&ctx.session))
            div.field {
                label for="h-name" { "Host name" }
                input #h-name type="text" name="name" required pattern="[a-z0-9][a-z0-9-]{0,62}" spellcheck="false" autocomplete="off";
                span.hint { "Lower-case letters, digits and '-'." }
            }
            button type="submit" { "Create join token" }
        }
    };
    ctx.page(Nav::Hosts, "Hosts", body)
}

/// The faults of one `Faults` body, in words, in the order the agent applies them; empty when
/// there are none (or the value is not an object).
pub(crate) fn fault_summary(faults: &Value) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(ms) = faults["latencyMs"].as_u64().filter(|ms| *ms > 0) {
        parts.push(format!("latency {ms} ms"));
    }
    if faults["noAnswer"].as_bool() == Some(true) {
        parts.push("no answer".to_owned());
    }
    if faults["imdsUnreachable"].as_bool() == Some(true) {
        parts.push("IMDS unreachable (403)".to_owned());
    }
    for error in faults["errors"].as_array().into_iter().flatten() {
        if let (Some(status), Some(percent)) = (error["status"].as_u64(), error["percent"].as_u64())
        {
            parts.push(format!("{percent} % {status}"));
        }
    }
    if let Some(secs) = faults["retryAfterSecs"].as_u64() {
        parts.push(format!("Retry-After {secs} s"));
    }
    if let Some(secs) = faults["tokenLifetimeSecs"].as_i64() {
        parts.push(format!("tokens live {secs} s"));
    }
    if let Some(secs) = faults["clockOffsetSecs"].as_i64().filter(|secs| *secs != 0) {
        parts.push(format!("clock {secs:+} s"));
    }
    parts
}

/// `POST /console/hosts/join`: a one-time join token, shown once.
pub async fn join(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Ctx::new(app, session);
    let form = Form::parse(&body);
    if let Err(response) = ctx.check_form(&headers, &form) {
        return *response;
    }
    let name = form.text("name");
    let path = format!("/hosting/hosts/{}", client::encode(name));
    let created = match ctx.send(reqwest::Method::PUT, &path, None).await {
        Ok(created) => created,
        Err(error) => return ctx.failed(&error, &link("/hosts", &[])),
    };
    let token = html::text(&created, "/joinToken");
    let command = format!(
        "ambient agent --server {} --ca-bundle ca.pem --data-dir /var/lib/ambient-agent --join-token {token}",
        ctx.app.public_url
    );
    let body = html! {
        div.warning { "The join token is shown once and works once, until " (html::api_time(html::text(&created, "/joinTokenExpiresOn"))) "." }
        (html::facts(&[
            ("Host", html! { (name) }),
            ("Join token", html::id_text(token)),
        ]))
        h2 { "On the new host" }
        p { "Copy the server's " code { "ca.pem" } " from its data directory, then start the agent:" }
        pre.json tabindex="0" { (command) }
        p { button.copy type="button" data-copy=(command) hidden { "Copy" } }
        p { a href=(link("/hosts", &[])) { "Back to hosts" } }
    };
    ctx.page(Nav::Hosts, &format!("Join token for {name}"), body)
}

/// `POST /console/hosts/revoke`.
pub async fn revoke(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Ctx::new(app, session);
    let form = Form::parse(&body);
    if let Err(response) = ctx.check_form(&headers, &form) {
        return *response;
    }
    let path = format!("/hosting/hosts/{}/revoke", client::encode(form.text("name")));
    match ctx.send(reqwest::Method::POST, &path, None).await {
        Ok(_) => see_other(&link("/hosts", &[("notice", "revoked")])),
        Err(error) => ctx.failed(&error, &link("/hosts", &[])),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use serde_json::json;

    use crate::pages::hosts::fault_summary;

    #[track_caller]
    fn check(faults: serde_json::Value, expect: Expect) {
        expect.assert_eq(&fault_summary(&faults).join(", "));
    }

    #[test]
    fn faults_read_as_words() {
        check(json!(null), expect![""]);
        check(json!({}), expect![""]);
        check(json!({"latencyMs": 0, "clockOffsetSecs": 0}), expect![""]);
        check(
            json!({"latencyMs": 500, "noAnswer": true, "imdsUnreachable": true}),
            expect!["latency 500 ms, no answer, IMDS unreachable (403)"],
        );
        check(
            json!({"errors": [{"status": 429, "percent": 30}, {"status": 503, "percent": 5}], "retryAfterSecs": 1}),
            expect!["30 % 429, 5 % 503, Retry-After 1 s"],
        );
        check(
            json!({"tokenLifetimeSecs": 60, "clockOffsetSecs": -300}),
            expect!["tokens live 60 s, clock -300 s"],
        );
        check(json!({"clockOffsetSecs": 30}), expect!["clock +30 s"]);
    }
}
