//! Hosts: each host's state, its agent's certificate expiry and last contact, the resources
//! placed on it, a join token for a new host (shown once), and revocation.
//!
//! API calls: `GET /hosting/hosts`, `PUT /hosting/hosts/{name}` (a join token),
//! `POST /hosting/hosts/{name}/revoke`.

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
            "Agents enroll once with a join token and then authenticate with a client certificate they renew at half-life."
        }
        div.table-wrap {
            table #hosts {
                thead { tr { th { "Host" } th { "State" } th { "Certificate expires" } th { "Last contact" } th { "Resources" } th { span.sr { "Actions" } } } }
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
                                        li { a href=(link("/resource", &[("id", resource)])) { (resource.rsplit('/').next().unwrap_or(resource)) } }
                                    }
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
