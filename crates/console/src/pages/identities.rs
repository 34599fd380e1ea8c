//! Managed identities: every user-assigned identity with its client id, principal id and
//! tenant, the resources it is attached to, and its federated credentials (add, remove).
//!
//! API calls: `GET /subscriptions/{s}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`,
//! `GET /subscriptions/{s}/resources` (attachments), `GET {identity}/federatedIdentityCredentials`,
//! `PUT` and `DELETE {identity}/federatedIdentityCredentials/{name}`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::ResourceId;
use maud::html;
use serde_json::{Value, json};

use crate::html::{self, Nav, link};
use crate::pages::resources::{self, UAMI_TYPE};
use crate::pages::{NoticeQuery, notice_text};
use crate::session::Session;
use crate::web::{API_MANAGED_IDENTITY, App, Ctx, Form, arm_path, see_other};

/// The audience a federated credential gets unless told otherwise (Entra's default).
const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// `GET /console/identities`.
pub async fn list(
    State(app): State<App>,
    session: Session,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let subscription = match ctx.subscription_scope() {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let identities_path =
        format!("{subscription}/providers/{UAMI_TYPE}?api-version={API_MANAGED_IDENTITY}");
    let (identities, all) =
        tokio::join!(ctx.list(&identities_path), resources::all_resources(&ctx),);
    let identities = match identities {
        Ok(identities) => identities,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let all = all.unwrap_or_default();
    let mut federated = Vec::new();
    for identity in &identities {
        let id = html::text(identity, "/id");
        federated.push(
            ctx.list(&arm_path(
                &format!("{id}/federatedIdentityCredentials"),
                API_MANAGED_IDENTITY,
            ))
            .await,
        );
    }
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        p.muted {
            "User-assigned managed identities. System-assigned ones live on their resources' Identity "
            "pages; every managed identity is listed under "
            a href=(link("/apps", &[("type", "managed")])) { "Enterprise applications" } "."
        }
        div.toolbar { a.btn href=(format!("{}#create", link("/resources", &[]))) { "+ Create" } }
        @if identities.is_empty() { p.empty.card { "No user-assigned identity yet." } }
        @for (identity, credentials) in identities.iter().zip(&federated) {
            @let id = html::text(identity, "/id");
            @let name = html::text(identity, "/name");
            @let properties = &identity["properties"];
            @let attached: Vec<&Value> = all.iter().filter(|resource| {
                resource.pointer("/identity/userAssignedIdentities").and_then(Value::as_object)
                    .is_some_and(|users| users.keys().any(|key| key.eq_ignore_ascii_case(id)))
            }).collect();
            section.card id=(name) aria-labelledby=(format!("h-{name}")) {
                h2 id=(format!("h-{name}")) { a href=(link("/resource", &[("id", id)])) { (name) } }
                (html::facts(&[
                    ("Client id", html::id_text(html::text(properties, "/clientId"))),
                    ("Principal (object) id", html::id_text(html::text(properties, "/principalId"))),
                    ("Tenant", html::id_text(html::text(properties, "/tenantId"))),
                    ("Resource group", html! { (ResourceId::parse(id).ok().and_then(|id| id.resource_group().map(str::to_owned)).unwrap_or_default()) }),
                    ("Attached to", html! {
                        @if attached.is_empty() { span.muted { "no resource" } }
                        @else {
                            ul.plain { @for resource in &attached {
                                li { a href=(link("/resource/identity", &[("id", html::text(resource, "/id")), ("tab", "user")])) { (html::text(resource, "/name")) } " " span.muted { "(" (resources::friendly_type(resource)) ")" } }
                            } }
                        }
                    }),
                ]))
                h3 { "Federated credentials" }
                @match credentials {
                    Ok(credentials) => {
                        div.table-wrap {
                            table {
                                thead { tr { th { "Name" } th { "Issuer" } th { "Subject" } th { "Audiences" } th { span.sr { "Actions" } } } }
                                tbody {
                                    @for credential in credentials {
                                        tr {
                                            td { (html::text(credential, "/name")) }
                                            td { code { (html::text(credential, "/properties/issuer")) } }
                                            td { code { (html::text(credential, "/properties/subject")) } }
                                            td { (credential["properties"]["audiences"].as_array().map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                            td.actions {
                                                form.inline method="post" action=(link("/identities/federated/remove", &[])) data-confirm="Remove this federated credential?" {
                                                    (html::csrf_field(&ctx.session))
                                                    input type="hidden" name="id" value=(html::text(credential, "/id"));
                                                    button.btn-secondary type="submit" { "Remove" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            @if credentials.is_empty() { p.empty { "None: only resources the identity is attached to can use it." } }
                        }
                    }
                    Err(error) => (html::api_error(error)),
                }
                details {
                    summary { "Add a federated credential" }
                    form.stack method="post" action=(link("/identities/federated/add", &[])) {
                        (html::csrf_field(&ctx.session))
                        input type="hidden" name="identity" value=(id);
                        div.field { label for=(format!("fc-name-{name}")) { "Name" } input id=(format!("fc-name-{name}")) type="text" name="name" required spellcheck="false"; }
                        div.field { label for=(format!("fc-issuer-{name}")) { "Issuer" } input id=(format!("fc-issuer-{name}")) type="text" name="issuer" required placeholder="https://token.actions.githubusercontent.com" spellcheck="false"; }
                        div.field { label for=(format!("fc-subject-{name}")) { "Subject" } input id=(format!("fc-subject-{name}")) type="text" name="subject" required placeholder="repo:org/repo:ref:refs/heads/main" spellcheck="false"; }
                        div.field { label for=(format!("fc-aud-{name}")) { "Audience" } input id=(format!("fc-aud-{name}")) type="text" name="audience" value=(DEFAULT_AUDIENCE) spellcheck="false"; }
                        div { button type="submit" { "Add" } }
                    }
                }
            }
        }
    };
    ctx.page(Nav::Identities, "Managed identities", body)
}

/// `POST /console/identities/federated/add`.
pub async fn add_federated(
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
    let id =
        format!("{}/federatedIdentityCredentials/{}", form.text("identity"), form.text("name"));
    let body = json!({"properties": {
        "issuer": form.text("issuer"),
        "subject": form.text("subject"),
        "audiences": [form.get("audience").unwrap_or(DEFAULT_AUDIENCE)],
    }});
    match ctx.send(reqwest::Method::PUT, &arm_path(&id, API_MANAGED_IDENTITY), Some(&body)).await {
        Ok(_) => see_other(&link("/identities", &[("notice", "added")])),
        Err(error) => ctx.failed(&error, &link("/identities", &[])),
    }
}

/// `POST /console/identities/federated/remove`.
pub async fn remove_federated(
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
    match ctx
        .send(reqwest::Method::DELETE, &arm_path(form.text("id"), API_MANAGED_IDENTITY), None)
        .await
    {
        Ok(_) => see_other(&link("/identities", &[("notice", "removed")])),
        Err(error) => ctx.failed(&error, &link("/identities", &[])),
    }
}
