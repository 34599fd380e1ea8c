//! The overview: the tenant, the subscription, the issuer and its signing keys (with rotation),
//! the server's health, and the tokens issued in the last hour.
//!
//! API calls: `GET /{tenant}/v2.0/.well-known/openid-configuration`, `GET /healthz`,
//! `GET /readyz`, `GET /v1.0/ambient/signingKeys`,
//! `GET /v1.0/auditLogs/signIns?$filter=createdDateTime ge ...`; the rotate button
//! `POST /v1.0/ambient/signingKeys/rotate`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use serde_json::{Value, json};

use crate::html::{self, Nav, link};
use crate::pages::{NoticeQuery, notice_text};
use crate::session::Session;
use crate::web::{App, Ctx, Form, see_other};

/// `GET /console/`.
pub async fn show(
    State(app): State<App>,
    session: Session,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let ctx = Ctx::new(app.clone(), session);
    let tenant = client::encode(&app.tenant_id);
    let discovery_path = format!("/{tenant}/v2.0/.well-known/openid-configuration");
    let (discovery, healthz, readyz, keys, sign_ins) = tokio::join!(
        app.api.get_public(&discovery_path),
        app.api.get_public("/healthz"),
        app.api.get_public("/readyz"),
        ctx.get("/v1.0/ambient/signingKeys"),
        crate::pages::logs::sign_in_events(&ctx, app.now() - 3600, None, None),
    );
    let issuer =
        discovery.as_ref().map(|doc| html::text(doc, "/issuer").to_owned()).unwrap_or_default();
    let health = |result: &Result<Value, crate::api::ApiError>| match result {
        Ok(body) if body["status"] == "ok" => html! {
            span.badge.ok { "OK" } " " span.muted { (html::text(body, "/detail")) }
        },
        Ok(body) => html! { span.badge.bad { (html::text(body, "/status")) } },
        Err(error) => {
            html! { span.badge.bad { "Unavailable" } " " span.muted { (error.to_string()) } }
        }
    };
    let principal = &ctx.session.principal;
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        div.cards {
            div.card {
                h2 { "Tokens issued, last hour" }
                @match &sign_ins {
                    Ok(events) => {
                        @let failed = events.iter().filter(|event| event["status"]["errorCode"].as_i64().unwrap_or(0) != 0).count();
                        @let managed = events.iter().filter(|event| event["principalType"] == "ManagedIdentity").count();
                        p.stat { (events.len() - failed) }
                        p.muted {
                            (managed) " for managed identities, " (failed) " refused. "
                            a href=(link("/signins", &[("since", "1h")])) { "Sign-in logs" }
                        }
                    }
                    Err(error) => (html::api_error(error)),
                }
            }
            div.card {
                h2 { "Health" }
                (html::facts(&[("Server", health(&healthz)), ("Database", health(&readyz))]))
            }
            div.card {
                h2 { "Signed in as" }
                p { strong { (principal.display_name) } }
                p.small.muted { "Session ends " (html::time_text(ctx.session.expires)) }
            }
        }
        div.card {
            h2 { "Deployment" }
            (html::facts(&[
                ("Tenant", html::id_text(&app.tenant_id)),
                ("Subscription", match &ctx.session.subscription {
                    Some(id) => html::id_text(id),
                    None => html! { span.muted { "none visible to you" } },
                }),
                ("Issuer", html::id_text(&issuer)),
                ("Server URL", html! { code { (app.public_url) } }),
                ("Key Vault names", html! { code { "{name}.vault." (app.dns_suffix) } }),
            ]))
        }
        h2 { "Signing keys" }
        p.muted {
            "Published in the JWKS before they sign, and kept until the last token they signed "
            "expires. Keys rotate on schedule; rotate now after a suspected leak."
        }
        @match &keys {
            Ok(keys) => {
                @let keys = keys["keys"].as_array().cloned().unwrap_or_default();
                div.table-wrap {
                    table {
                        thead { tr { th { "Key id (kid)" } th { "Type" } th { "Use" } th { "SHA-1 thumbprint (x5t)" } } }
                        tbody {
                            @for key in &keys {
                                tr {
                                    td { (html::id_text(html::text(key, "/kid"))) }
                                    td { (html::text(key, "/kty")) " " (html::text(key, "/alg")) }
                                    td { (html::text(key, "/use")) }
                                    td { code { (html::text(key, "/x5t")) } }
                                }
                            }
                        }
                    }
                }
                form.row method="post" action=(link("/keys/rotate", &[])) data-confirm="Publish a new signing key now?" {
                    (html::csrf_field(&ctx.session))
                    div.field {
                        label for="activate" { "New key signs" }
                        select #activate name="activate_in_seconds" {
                            option value="0" { "at once" }
                            option value="3600" { "in one hour" }
                            option value="86400" { "in one day" }
                        }
                    }
                    button type="submit" { "Rotate signing key" }
                }
            }
            Err(error) => (html::api_error(error)),
        }
    };
    ctx.page(Nav::Overview, "Overview", body)
}

/// `POST /console/keys/rotate`.
pub async fn rotate(
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
    let activate: i64 = form.text("activate_in_seconds").parse().unwrap_or(0);
    let body = json!({"activateInSeconds": activate});
    match ctx.send(reqwest::Method::POST, "/v1.0/ambient/signingKeys/rotate", Some(&body)).await {
        Ok(_) => see_other(&link("/", &[("notice", "rotated")])),
        Err(error) => ctx.failed(&error, &link("/", &[])),
    }
}
