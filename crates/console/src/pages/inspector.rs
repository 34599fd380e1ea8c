//! The token inspector: paste a token, see its header and claims decoded and checked against
//! this deployment (signature with the published keys, issuer, audience, lifetime), and what
//! its principal may do here. The pasted token is only decoded: it is never sent anywhere, and
//! the lookups of its principal's role assignments use the signed-in session's own token.
//!
//! API calls: `GET /{tenant}/v2.0/.well-known/openid-configuration` and
//! `/{tenant}/.well-known/openid-configuration` (issuers), `GET /{tenant}/discovery/v2.0/keys`,
//! `GET /subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId
//! eq '...'`, `.../roleDefinitions`, `GET /v1.0/servicePrincipals`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use crate::access;
use crate::html::{self, Nav, link};
use crate::jwt::{self, Expectations, Signature};
use crate::pages::iam::Directory;
use crate::session::Session;
use crate::web::{API_AUTHORIZATION, App, Ctx, Form};

/// `GET /console/inspector`.
pub async fn show(State(app): State<App>, session: Session) -> Response {
    let ctx = Ctx::new(app, session);
    let body = form(&ctx.session, "");
    ctx.page(Nav::Inspector, "Token inspector", body)
}

fn form(session: &Session, token: &str) -> Markup {
    html! {
        p.muted {
            "Paste an access token (a JWT) to decode it and check it against this deployment. "
            "The token is not stored or sent anywhere."
        }
        form.stack method="post" action=(link("/inspector", &[])) {
            (html::csrf_field(session))
            div.field {
                label for="token" { "Token" }
                textarea #token name="token" required spellcheck="false" autocomplete="off" { (token) }
            }
            div { button type="submit" { "Inspect" } }
        }
    }
}

/// The audiences this server accepts, with the surface that accepts each.
fn audiences(app: &App) -> Vec<(String, &'static str)> {
    let suffix = &app.dns_suffix;
    let port = app
        .public_url
        .rsplit_once(':')
        .map(|(_, port)| port.to_owned())
        .filter(|port| port.chars().all(|c| c.is_ascii_digit()));
    let vault_host = match port.as_deref() {
        Some("443") | None => format!("vault.{suffix}"),
        Some(port) => format!("vault.{suffix}:{port}"),
    };
    let arm = "the control plane";
    let graph = "the directory";
    vec![
        (format!("https://management.{suffix}/"), arm),
        ("https://management.azure.com/".to_owned(), arm),
        ("https://management.core.windows.net/".to_owned(), arm),
        (format!("https://graph.{suffix}"), graph),
        ("https://graph.microsoft.com".to_owned(), graph),
        (format!("{}/", app.public_url.trim_end_matches('/')), graph),
        (format!("https://{vault_host}"), "Key Vault"),
        ("https://vault.azure.net".to_owned(), "Key Vault"),
    ]
}

/// `POST /console/inspector`.
pub async fn inspect(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = Ctx::new(app.clone(), session);
    let form_data = Form::parse(&body);
    if let Err(response) = ctx.check_form(&headers, &form_data) {
        return *response;
    }
    let text = form_data.text("token");
    let decoded = match jwt::decode(text) {
        Ok(decoded) => decoded,
        Err(message) => {
            let body = html! { (html::error_text(&format!("This is not a JWT: {message}."))) (form(&ctx.session, text)) };
            return ctx.page(Nav::Inspector, "Token inspector", body);
        }
    };
    let tenant = client::encode(&app.tenant_id);
    let v2_path = format!("/{tenant}/v2.0/.well-known/openid-configuration");
    let v1_path = format!("/{tenant}/.well-known/openid-configuration");
    let keys_path = format!("/{tenant}/discovery/v2.0/keys");
    let (v2, v1, keys) = tokio::join!(
        app.api.get_public(&v2_path),
        app.api.get_public(&v1_path),
        app.api.get_public(&keys_path),
    );
    let issuers: Vec<String> = [&v2, &v1]
        .iter()
        .filter_map(|doc| doc.as_ref().ok())
        .map(|doc| html::text(doc, "/issuer").to_owned())
        .filter(|issuer| !issuer.is_empty())
        .collect();
    let signature = match &keys {
        Ok(keys) => Some(jwt::verify(&decoded, keys)),
        Err(_) => None,
    };
    let audiences = audiences(&app);
    let checks = jwt::checks(
        &decoded,
        &Expectations {
            issuers: &issuers,
            audiences: &audiences,
            now: app.now(),
            leeway: domain::limits::CLOCK_LEEWAY_SECS,
        },
    );
    let object_id = decoded.claims["oid"].as_str().unwrap_or_default().to_ascii_lowercase();
    let permissions = if object_id.is_empty() {
        html! {}
    } else {
        principal_access(&ctx, &object_id).await
    };
    let all_passed = matches!(signature, Some(Signature::Valid { .. }))
        && checks.iter().all(|check| check.passed);
    let body = html! {
        @if all_passed {
            p.notice role="status" { "This token is valid here now." }
        } @else {
            div.error role="alert" { "This token would be refused here." }
        }
        div.table-wrap {
            table #checks {
                thead { tr { th { "Check" } th { "Result" } th { "Detail" } } }
                tbody {
                    tr {
                        td { "Signature" }
                        @match &signature {
                            Some(Signature::Valid { kid }) => { td { span.badge.ok { "Pass" } } td { "RS256, signed by published key " code { (kid) } } }
                            Some(Signature::UnknownKey(kid)) => { td { span.badge.bad { "Fail" } } td { "No published key has kid " code { (kid) } " (another issuer's token, or a key retired long ago)" } }
                            Some(Signature::UnsupportedAlgorithm(alg)) => { td { span.badge.bad { "Fail" } } td { "Algorithm " code { (alg) } " is not accepted; tokens here are RS256" } }
                            Some(Signature::Invalid { kid }) => { td { span.badge.bad { "Fail" } } td { "The signature does not verify with key " code { (kid) } ": the token was altered" } }
                            None => { td { span.badge.warn { "Unknown" } } td { "The signing keys could not be read" } }
                        }
                    }
                    @for check in &checks {
                        tr {
                            td { (check.name) }
                            td { @if check.passed { span.badge.ok { "Pass" } } @else { span.badge.bad { "Fail" } } }
                            td { (check.detail) }
                        }
                    }
                }
            }
        }
        h2 { "Claims" }
        (claims_table(&decoded.claims))
        (permissions)
        div.cards {
            div { h2 { "Header" } (html::json_block(&decoded.header)) }
            div { h2 { "Payload" } (html::json_block(&decoded.claims)) }
        }
        h2 { "Inspect another token" }
        (form(&ctx.session, ""))
    };
    ctx.page(Nav::Inspector, "Token inspector", body)
}

/// The claims people ask about, explained.
fn claims_table(claims: &Value) -> Markup {
    const KNOWN: &[(&str, &str)] = &[
        ("iss", "Issuer"),
        ("aud", "Audience"),
        ("sub", "Subject"),
        ("oid", "Object id of the principal"),
        ("appid", "Application (client) id (v1)"),
        ("azp", "Application (client) id (v2)"),
        ("tid", "Tenant"),
        ("idtyp", "Identity type"),
        ("xms_mirid", "Managed identity's resource"),
        ("iat", "Issued at"),
        ("nbf", "Not before"),
        ("exp", "Expires"),
    ];
    html! {
        div.table-wrap {
            table #claims {
                thead { tr { th { "Claim" } th { "Meaning" } th { "Value" } } }
                tbody {
                    @for (name, meaning) in KNOWN {
                        @if let Some(value) = claims.get(*name) {
                            tr {
                                td { code { (name) } }
                                td { (meaning) }
                                td {
                                    @match (value.as_i64(), matches!(*name, "iat" | "nbf" | "exp")) {
                                        (Some(secs), true) => { (html::time_text(secs)) " " span.muted.small { "(" (secs) ")" } }
                                        _ => code { (value.as_str().map_or_else(|| value.to_string(), str::to_owned)) },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The roles the token's principal holds in the subscription, read with the session's token.
async fn principal_access(ctx: &Ctx, object_id: &str) -> Markup {
    let Ok(subscription) = ctx.subscription_scope() else { return html! {} };
    let filter = client::encode(&format!("principalId eq '{}'", object_id.replace('\'', "''")));
    let assignments_path = format!(
        "{subscription}/providers/Microsoft.Authorization/roleAssignments?api-version={API_AUTHORIZATION}&$filter={filter}"
    );
    let roles_path = format!(
        "{subscription}/providers/Microsoft.Authorization/roleDefinitions?api-version={API_AUTHORIZATION}"
    );
    let (assignments, roles, directory) =
        tokio::join!(ctx.list(&assignments_path), ctx.list(&roles_path), Directory::load(ctx),);
    let roles = access::roles_from_json(&roles.unwrap_or_default());
    html! {
        h2 { "What it may do here" }
        @if let Ok(directory) = &directory { div.card { (directory.describe(object_id)) } }
        @match assignments {
            Ok(assignments) => {
                @let assignments = access::assignments_from_json(&assignments);
                @if assignments.is_empty() {
                    p.muted { "The principal holds no role in this subscription: the token authenticates it, but it may do nothing here." }
                } @else {
                    ul {
                        @for assignment in &assignments {
                            li {
                                strong { (access::find_role(&roles, &assignment.role).map_or_else(|| assignment.role.to_string(), |role| role.definition.role_name.clone())) }
                                " at "
                                a href=(link("/iam/check", &[("scope", assignment.scope.as_str()), ("principal", object_id)])) { code { (assignment.scope.as_str()) } }
                            }
                        }
                    }
                }
            }
            Err(error) => (html::api_error(&error)),
        }
    }
}
