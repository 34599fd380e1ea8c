//! A compute resource's Identity page, with the portal's two tabs: System assigned (status,
//! object id, a confirmation that says what turning it on or off does) and User assigned (the
//! attached identities, `+ Add` from a picker, Remove).
//!
//! API calls: `GET {resource}`, `GET /subscriptions/{s}/providers/Microsoft.ManagedIdentity/
//! userAssignedIdentities`, `PATCH {resource}` with an `identity` block.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::ResourceId;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::html::{self, Nav, link};
use crate::pages::notice_text;
use crate::pages::resources::{self, Tab, UAMI_TYPE};
use crate::session::Session;
use crate::web::{self, API_MANAGED_IDENTITY, App, Ctx, Form, arm_path, see_other};

#[derive(Debug, Default, Deserialize)]
pub struct IdentityQuery {
    id: Option<String>,
    tab: Option<String>,
    notice: Option<String>,
}

/// What a resource's identity block holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identities {
    pub system_principal: Option<String>,
    pub system: bool,
    /// User-assigned identity ids, with their client and principal ids.
    pub users: Vec<(String, String, String)>,
}

impl Identities {
    pub fn of(resource: &Value) -> Identities {
        let block = &resource["identity"];
        let kind = block["type"].as_str().unwrap_or_default().to_ascii_lowercase();
        let users = block["userAssignedIdentities"]
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(id, details)| {
                        (
                            id.clone(),
                            html::text(details, "/clientId").to_owned(),
                            html::text(details, "/principalId").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Identities {
            system: kind.contains("systemassigned"),
            system_principal: block["principalId"].as_str().map(str::to_owned),
            users,
        }
    }
}

/// The identity `type` for these flags.
pub fn type_string(system: bool, user: bool) -> &'static str {
    match (system, user) {
        (false, false) => "None",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (true, true) => "SystemAssigned, UserAssigned",
    }
}

/// `GET /console/resource/identity?id=&tab=`.
pub async fn show(
    State(app): State<App>,
    session: Session,
    Query(query): Query<IdentityQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let id = match ctx.resource_id(query.id.as_deref().unwrap_or_default()) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let resource = match ctx.get(&arm_path(&id, web::api_version_for(&id))).await {
        Ok(resource) => resource,
        Err(error) => return ctx.failed(&error, &link("/resources", &[])),
    };
    let identities = Identities::of(&resource);
    let user_tab = query.tab.as_deref() == Some("user");
    let name = html::text(&resource, "/name").to_owned();
    let content = if user_tab {
        let available = match ctx.subscription_scope() {
            Ok(subscription) => {
                ctx.list(&format!(
                    "{subscription}/providers/{UAMI_TYPE}?api-version={API_MANAGED_IDENTITY}"
                ))
                .await
            }
            Err(_) => Ok(Vec::new()),
        };
        user_tab_body(&ctx.session, &id, &identities, available)
    } else {
        system_tab_body(&ctx.session, &id, &identities)
    };
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        (resources::tabs(&id, html::text(&resource, "/type"), Tab::Identity))
        nav.tabs aria-label="Identity type" {
            a href=(link("/resource/identity", &[("id", &id)])) aria-current=[(!user_tab).then_some("page")] { "System assigned" }
            a href=(link("/resource/identity", &[("id", &id), ("tab", "user")])) aria-current=[user_tab.then_some("page")] { "User assigned" }
        }
        (content)
    };
    ctx.page(Nav::Resources, &format!("{name} · Identity"), body)
}

fn system_tab_body(session: &Session, id: &str, identities: &Identities) -> Markup {
    let subscription = ResourceId::parse(id)
        .ok()
        .and_then(|id| id.subscription_id().map(|s| format!("/subscriptions/{s}")))
        .unwrap_or_default();
    html! {
        p.muted {
            "A system assigned managed identity is restricted to one per resource and is tied to "
            "the lifecycle of this resource. Grant it roles to let code on the resource reach "
            "other resources without any secret."
        }
        form.card.stack method="post" action=(link("/resource/identity/system", &[])) {
            (html::csrf_field(session))
            input type="hidden" name="id" value=(id);
            fieldset {
                legend { "Status" }
                label.choice { input type="radio" name="status" value="off" checked[!identities.system]; span { "Off" } }
                label.choice { input type="radio" name="status" value="on" checked[identities.system]; span { "On" } }
            }
            div { button type="submit" { "Save" } }
        }
        @if let Some(principal) = &identities.system_principal {
            div.card {
                (html::facts(&[("Object (principal) id", html::id_text(principal))]))
                p {
                    "Permissions: "
                    a href=(link("/iam/check", &[("scope", &subscription), ("principal", principal)])) { "Azure role assignments" }
                }
            }
        }
    }
}

fn user_tab_body(
    session: &Session,
    id: &str,
    identities: &Identities,
    available: Result<Vec<Value>, crate::api::ApiError>,
) -> Markup {
    let attached: Vec<String> =
        identities.users.iter().map(|(user, _, _)| user.to_ascii_lowercase()).collect();
    html! {
        p.muted {
            "User assigned managed identities are resources of their own: one can be attached to "
            "several resources, and it lives on when they are deleted."
        }
        div.table-wrap {
            table #user-identities {
                thead { tr { th { "Name" } th { "Resource group" } th { "Client id" } th { "Object (principal) id" } th { span.sr { "Actions" } } } }
                tbody {
                    @for (user, client_id, principal_id) in &identities.users {
                        @let parsed = ResourceId::parse(user).ok();
                        tr {
                            td.nowrap { a href=(link("/resource", &[("id", user)])) { (parsed.as_ref().and_then(ResourceId::name).unwrap_or(user)) } }
                            td { (parsed.as_ref().and_then(ResourceId::resource_group).unwrap_or_default()) }
                            td { (html::id_text(client_id)) }
                            td { (html::id_text(principal_id)) }
                            td.actions {
                                form.inline method="post" action=(link("/resource/identity/user/remove", &[])) data-confirm="Remove this identity from the resource?" {
                                    (html::csrf_field(session))
                                    input type="hidden" name="id" value=(id);
                                    input type="hidden" name="identity" value=(user);
                                    button.btn-secondary type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            @if identities.users.is_empty() { p.empty { "No user assigned identity is attached." } }
        }
        h2 { "+ Add" }
        @match available {
            Ok(all) => {
                @let choices: Vec<&Value> = all.iter().filter(|uami| !attached.contains(&html::text(uami, "/id").to_ascii_lowercase())).collect();
                @if choices.is_empty() {
                    p.muted { "No other user assigned identity exists. " a href=(format!("{}#create", link("/resources", &[]))) { "Create one" } "." }
                } @else {
                    form.row.card method="post" action=(link("/resource/identity/user/add", &[])) {
                        (html::csrf_field(session))
                        input type="hidden" name="id" value=(id);
                        div.field {
                            label for="add-identity" { "User assigned managed identity" }
                            select #add-identity name="identity" required {
                                @for uami in &choices {
                                    option value=(html::text(uami, "/id")) {
                                        (html::text(uami, "/name")) " (" (ResourceId::parse(html::text(uami, "/id")).ok().and_then(|id| id.resource_group().map(str::to_owned)).unwrap_or_default()) ")"
                                    }
                                }
                            }
                        }
                        button type="submit" { "Add" }
                    }
                }
            }
            Err(error) => (html::api_error(&error)),
        }
    }
}

/// `POST /console/resource/identity/system`: with `confirm=yes` applies, else asks.
pub async fn system(
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
    let id = match ctx.resource_id(form.text("id")) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let back = link("/resource/identity", &[("id", &id)]);
    let resource = match ctx.get(&arm_path(&id, web::api_version_for(&id))).await {
        Ok(resource) => resource,
        Err(error) => return ctx.failed(&error, &back),
    };
    let current = Identities::of(&resource);
    let wanted = form.get("status") == Some("on");
    if wanted == current.system {
        return see_other(&back);
    }
    let name = html::text(&resource, "/name").to_owned();
    if form.get("confirm") != Some("yes") {
        let body = html! {
            div.warning {
                @if wanted {
                    p { strong { "Enable system assigned managed identity?" } }
                    p {
                        (name) " will be registered with the directory: a service principal named "
                        strong { (name) } " appears under Enterprise applications. Code on the resource can "
                        "then get tokens for it; it may do nothing until you grant it roles."
                    }
                } @else {
                    p { strong { "Disable system assigned managed identity?" } }
                    p {
                        "The service principal " code { (current.system_principal.as_deref().unwrap_or_default()) }
                        " will be deleted from the directory. Role assignments naming it stop working, and "
                        "code on the resource that uses it can no longer get tokens."
                    }
                }
            }
            form.inline method="post" action=(link("/resource/identity/system", &[])) {
                (html::csrf_field(&ctx.session))
                input type="hidden" name="id" value=(id);
                input type="hidden" name="status" value=(if wanted { "on" } else { "off" });
                input type="hidden" name="confirm" value="yes";
                button type="submit" { "Yes" }
            }
            " "
            a.btn.btn-secondary href=(back) { "No" }
        };
        return ctx.page(Nav::Resources, &format!("{name} · Identity"), body);
    }
    let patch = json!({"identity": {"type": type_string(wanted, !current.users.is_empty())}});
    apply(&ctx, &id, &patch, &back).await
}

/// `POST /console/resource/identity/user/add`.
pub async fn add_user(
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
    let id = match ctx.resource_id(form.text("id")) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let back = link("/resource/identity", &[("id", &id), ("tab", "user")]);
    let resource = match ctx.get(&arm_path(&id, web::api_version_for(&id))).await {
        Ok(resource) => resource,
        Err(error) => return ctx.failed(&error, &back),
    };
    let current = Identities::of(&resource);
    let patch = json!({"identity": {
        "type": type_string(current.system, true),
        "userAssignedIdentities": {form.text("identity"): {}},
    }});
    apply(&ctx, &id, &patch, &format!("{back}&notice=added")).await
}

/// `POST /console/resource/identity/user/remove`.
pub async fn remove_user(
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
    let id = match ctx.resource_id(form.text("id")) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let back = link("/resource/identity", &[("id", &id), ("tab", "user")]);
    let patch = json!({"identity": {"userAssignedIdentities": {form.text("identity"): null}}});
    apply(&ctx, &id, &patch, &format!("{back}&notice=removed")).await
}

async fn apply(ctx: &Ctx, id: &str, patch: &Value, next: &str) -> Response {
    match ctx
        .send(reqwest::Method::PATCH, &arm_path(id, web::api_version_for(id)), Some(patch))
        .await
    {
        Ok(_) if next.contains("notice=") => see_other(next),
        Ok(_) => see_other(&format!("{next}&notice=saved")),
        Err(error) => ctx.failed(&error, next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_blocks_are_read() {
        let resource = json!({"identity": {
            "type": "SystemAssigned, UserAssigned",
            "principalId": "p0",
            "userAssignedIdentities": {"/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u": {"clientId": "c1", "principalId": "p1"}},
        }});
        let identities = Identities::of(&resource);
        assert!(identities.system);
        assert_eq!(identities.system_principal.as_deref(), Some("p0"));
        assert_eq!(identities.users[0].1, "c1");
        assert_eq!(
            Identities::of(&json!({})),
            Identities { system: false, system_principal: None, users: vec![] }
        );
        assert_eq!(type_string(true, true), "SystemAssigned, UserAssigned");
        assert_eq!(type_string(false, false), "None");
    }
}
