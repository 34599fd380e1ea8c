//! Resource groups and resources: lists with filters, one resource's overview with the tabs
//! of its blades, creating (VM, web app, function app, user-assigned identity, key vault) and
//! deleting.
//!
//! API calls: `GET /subscriptions/{s}/resourcegroups`, `PUT /subscriptions/{s}/resourcegroups/{g}`,
//! `GET /subscriptions/{s}/resources`, `GET {id}`, `PUT {id}`, `DELETE {id}`, and for a compute
//! resource `GET /hosting/faults?resourceId=` (its injected faults; left out for callers who may
//! not read hosts).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use domain::ResourceId;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::html::{self, Nav, link};
use crate::pages::notice_text;
use crate::session::Session;
use crate::web::{self, API_RESOURCES, App, Ctx, Form, arm_path, see_other};

/// A kind of resource the console creates.
pub struct Kind {
    pub key: &'static str,
    pub label: &'static str,
    pub resource_type: &'static str,
    /// The ARM `kind` field, for the kinds of `Microsoft.Web/sites`.
    pub kind_field: Option<&'static str>,
    /// Runs workloads on a host and can hold managed identities.
    pub compute: bool,
}

pub const KINDS: &[Kind] = &[
    Kind {
        key: "vm",
        label: "Virtual machine",
        resource_type: "Microsoft.Compute/virtualMachines",
        kind_field: None,
        compute: true,
    },
    Kind {
        key: "webapp",
        label: "Web app",
        resource_type: "Microsoft.Web/sites",
        kind_field: Some("app"),
        compute: true,
    },
    Kind {
        key: "functionapp",
        label: "Function app",
        resource_type: "Microsoft.Web/sites",
        kind_field: Some("functionapp"),
        compute: true,
    },
    Kind {
        key: "identity",
        label: "Managed identity (user-assigned)",
        resource_type: "Microsoft.ManagedIdentity/userAssignedIdentities",
        kind_field: None,
        compute: false,
    },
    Kind {
        key: "vault",
        label: "Key vault",
        resource_type: "Microsoft.KeyVault/vaults",
        kind_field: None,
        compute: false,
    },
];

/// The compute types of the server (they hold identities and run on hosts).
const COMPUTE_TYPES: &[&str] = &[
    "microsoft.compute/virtualmachines",
    "microsoft.compute/virtualmachinescalesets",
    "microsoft.web/sites",
    "microsoft.containerinstance/containergroups",
    "microsoft.containerservice/managedclusters",
    "microsoft.logic/workflows",
    "microsoft.storage/storageaccounts",
];

pub const UAMI_TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
pub const VAULT_TYPE: &str = "Microsoft.KeyVault/vaults";

/// True for a type that holds managed identities.
pub fn is_compute(resource_type: &str) -> bool {
    COMPUTE_TYPES.contains(&resource_type.to_ascii_lowercase().as_str())
}

/// What a resource is, in words.
pub fn friendly_type(resource: &Value) -> String {
    let resource_type = html::text(resource, "/type");
    let kind = html::text(resource, "/kind").to_ascii_lowercase();
    match resource_type.to_ascii_lowercase().as_str() {
        "microsoft.compute/virtualmachines" => "Virtual machine".to_owned(),
        "microsoft.web/sites" if kind.contains("functionapp") => "Function app".to_owned(),
        "microsoft.web/sites" => "Web app".to_owned(),
        "microsoft.managedidentity/userassignedidentities" => "Managed identity".to_owned(),
        "microsoft.keyvault/vaults" => "Key vault".to_owned(),
        "microsoft.resources/resourcegroups" => "Resource group".to_owned(),
        _ => resource_type.to_owned(),
    }
}

/// The tabs of a resource's blades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Identity,
    Access,
    Secrets,
}

/// The tab bar of a resource (or a group, or the subscription: only Overview and IAM).
pub fn tabs(id: &str, resource_type: &str, active: Tab) -> Markup {
    let lower = resource_type.to_ascii_lowercase();
    let mut items: Vec<(Tab, String, &str)> = Vec::new();
    let parsed = ResourceId::parse(id).ok();
    let is_subscription = parsed.as_ref().is_some_and(ResourceId::is_subscription);
    if !is_subscription {
        items.push((Tab::Overview, link("/resource", &[("id", id)]), "Overview"));
    }
    if is_compute(&lower) {
        items.push((Tab::Identity, link("/resource/identity", &[("id", id)]), "Identity"));
    }
    items.push((Tab::Access, link("/iam", &[("scope", id)]), "Access control (IAM)"));
    if lower == VAULT_TYPE.to_ascii_lowercase() {
        items.push((Tab::Secrets, link("/vault", &[("id", id)]), "Secrets"));
    }
    html! {
        nav.tabs aria-label="Resource" {
            @for (tab, href, label) in &items {
                a href=(href) aria-current=[(*tab == active).then_some("page")] { (label) }
            }
        }
    }
}

/// A one-line summary of an identity block: badges for system and user identities.
pub fn identity_badges(resource: &Value) -> Markup {
    let kind = html::text(resource, "/identity/type").to_ascii_lowercase();
    let users = resource
        .pointer("/identity/userAssignedIdentities")
        .and_then(Value::as_object)
        .map_or(0, |map| map.len());
    html! {
        @if kind.contains("systemassigned") { span.badge.ok { "System" } " " }
        @if users > 0 { span.badge.ok { (users) " user" } }
        @if !kind.contains("systemassigned") && users == 0 { span.muted { "None" } }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    group: Option<String>,
    notice: Option<String>,
}

/// Every resource of the subscription (groups and federated credentials left out).
pub async fn all_resources(ctx: &Ctx) -> Result<Vec<Value>, crate::api::ApiError> {
    let Some(subscription) = &ctx.session.subscription else { return Ok(Vec::new()) };
    let resources = ctx
        .list(&format!(
            "/subscriptions/{}/resources?api-version={API_RESOURCES}&$top=1000",
            client::encode(subscription)
        ))
        .await?;
    Ok(resources
        .into_iter()
        .filter(|resource| {
            let kind = html::text(resource, "/type").to_ascii_lowercase();
            kind != "microsoft.resources/resourcegroups"
                && !kind.ends_with("/federatedidentitycredentials")
        })
        .collect())
}

async fn groups_of(ctx: &Ctx, subscription: &str) -> Result<Vec<Value>, crate::api::ApiError> {
    ctx.list(&format!("{subscription}/resourcegroups?api-version={API_RESOURCES}")).await
}

/// `GET /console/groups`.
pub async fn groups(
    State(app): State<App>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let subscription = match ctx.subscription_scope() {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let (groups, resources) = tokio::join!(groups_of(&ctx, &subscription), all_resources(&ctx));
    let groups = match groups {
        Ok(groups) => groups,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let resources = resources.unwrap_or_default();
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        div.toolbar {
            a.btn.btn-secondary href=(link("/iam", &[("scope", &subscription)])) { "Subscription access control (IAM)" }
        }
        (html::table_filter("groups", "Filter groups"))
        div.table-wrap {
            table #groups {
                thead { tr { th { "Name" } th { "Location" } th { "Resources" } th { span.sr { "Actions" } } } }
                tbody {
                    @for group in &groups {
                        @let name = html::text(group, "/name");
                        @let count = resources.iter().filter(|r| r["id"].as_str().and_then(|id| ResourceId::parse(id).ok()).and_then(|id| id.resource_group().map(|g| g.eq_ignore_ascii_case(name))).unwrap_or(false)).count();
                        tr {
                            td.nowrap { a href=(link("/resource", &[("id", html::text(group, "/id"))])) { (name) } }
                            td { (html::text(group, "/location")) }
                            td { a href=(link("/resources", &[("group", name)])) { (count) } }
                            td.actions { a href=(link("/resource/delete", &[("id", html::text(group, "/id"))])) { "Delete" } }
                        }
                    }
                }
            }
            @if groups.is_empty() { p.empty { "No resource groups yet." } }
        }
        h2 { "Create a resource group" }
        form.row.card method="post" action=(link("/groups/create", &[])) {
            (html::csrf_field(&ctx.session))
            div.field { label for="group-name" { "Name" } input #group-name type="text" name="name" required spellcheck="false"; }
            div.field { label for="group-location" { "Location" } input #group-location type="text" name="location" value="local"; }
            button type="submit" { "Create" }
        }
    };
    ctx.page(Nav::Groups, "Resource groups", body)
}

/// `POST /console/groups/create`.
pub async fn create_group(
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
    let subscription = match ctx.subscription_scope() {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let id = format!("{subscription}/resourceGroups/{}", form.text("name"));
    let body = json!({"location": form.get("location").unwrap_or("local")});
    match ctx.send(reqwest::Method::PUT, &arm_path(&id, API_RESOURCES), Some(&body)).await {
        Ok(_) => see_other(&link("/groups", &[("notice", "created")])),
        Err(error) => ctx.failed(&error, &link("/groups", &[])),
    }
}

/// `GET /console/resources`.
pub async fn list(
    State(app): State<App>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let subscription = match ctx.subscription_scope() {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let (resources, groups) = tokio::join!(all_resources(&ctx), groups_of(&ctx, &subscription));
    let resources = match resources {
        Ok(resources) => resources,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let groups = groups.unwrap_or_default();
    let kind = query.kind.as_deref().unwrap_or_default();
    let name = query.name.as_deref().unwrap_or_default().trim().to_ascii_lowercase();
    let group = query.group.as_deref().unwrap_or_default();
    let shown: Vec<&Value> = resources
        .iter()
        .filter(|resource| kind.is_empty() || kind_matches(kind, resource))
        .filter(|resource| {
            name.is_empty() || html::text(resource, "/name").to_ascii_lowercase().contains(&name)
        })
        .filter(|resource| {
            group.is_empty()
                || resource["id"].as_str().and_then(|id| ResourceId::parse(id).ok()).is_some_and(
                    |id| id.resource_group().is_some_and(|g| g.eq_ignore_ascii_case(group)),
                )
        })
        .collect();
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        form.row method="get" action=(link("/resources", &[])) role="search" {
            div.field {
                label for="f-type" { "Type" }
                select #f-type name="type" {
                    option value="" selected[kind.is_empty()] { "All types" }
                    @for item in KINDS {
                        option value=(item.key) selected[kind == item.key] { (item.label) }
                    }
                    option value="other" selected[kind == "other"] { "Other types" }
                }
            }
            div.field {
                label for="f-group" { "Resource group" }
                select #f-group name="group" {
                    option value="" { "All groups" }
                    @for item in &groups {
                        @let group_name = html::text(item, "/name");
                        option value=(group_name) selected[group.eq_ignore_ascii_case(group_name)] { (group_name) }
                    }
                }
            }
            div.field {
                label for="f-name" { "Name contains" }
                input #f-name type="search" name="name" value=(query.name.as_deref().unwrap_or_default());
            }
            button type="submit" { "Filter" }
        }
        div.table-wrap {
            table #resources {
                thead { tr { th { "Name" } th { "Type" } th { "Resource group" } th { "Location" } th { "Identities" } } }
                tbody {
                    @for resource in &shown {
                        @let id = html::text(resource, "/id");
                        tr {
                            td.nowrap { a href=(link("/resource", &[("id", id)])) { (html::text(resource, "/name")) } }
                            td { (friendly_type(resource)) }
                            td { (ResourceId::parse(id).ok().and_then(|id| id.resource_group().map(str::to_owned)).unwrap_or_default()) }
                            td { (html::text(resource, "/location")) }
                            td { @if is_compute(html::text(resource, "/type")) { (identity_badges(resource)) } @else { (html::dash()) } }
                        }
                    }
                }
            }
            @if shown.is_empty() { p.empty { "No resources match." } }
        }
        h2 #create { "Create a resource" }
        (create_form(&ctx.session, &groups, group))
    };
    ctx.page(Nav::Resources, "All resources", body)
}

fn kind_matches(key: &str, resource: &Value) -> bool {
    let resource_type = html::text(resource, "/type");
    let kind = html::text(resource, "/kind").to_ascii_lowercase();
    match KINDS.iter().find(|item| item.key == key) {
        Some(item) if item.key == "functionapp" => {
            resource_type.eq_ignore_ascii_case(item.resource_type) && kind.contains("functionapp")
        }
        Some(item) if item.key == "webapp" => {
            resource_type.eq_ignore_ascii_case(item.resource_type) && !kind.contains("functionapp")
        }
        Some(item) => resource_type.eq_ignore_ascii_case(item.resource_type),
        None => !KINDS.iter().any(|item| resource_type.eq_ignore_ascii_case(item.resource_type)),
    }
}

fn create_form(session: &Session, groups: &[Value], selected_group: &str) -> Markup {
    html! {
        form.stack.card method="post" action=(link("/resources/create", &[])) {
            (html::csrf_field(session))
            div.field {
                label for="c-kind" { "Type" }
                select #c-kind name="kind" required {
                    @for item in KINDS { option value=(item.key) { (item.label) } }
                }
            }
            div.field {
                label for="c-group" { "Resource group" }
                select #c-group name="group" required {
                    @for item in groups {
                        @let group_name = html::text(item, "/name");
                        option value=(group_name) selected[selected_group.eq_ignore_ascii_case(group_name)] { (group_name) }
                    }
                }
                @if groups.is_empty() { span.hint { "Create a " a href=(link("/groups", &[])) { "resource group" } " first." } }
            }
            div.field {
                label for="c-name" { "Name" }
                input #c-name type="text" name="name" required spellcheck="false" autocomplete="off";
                span.hint { "Letters, digits, '-', '_', '.', '(' and ')'. Key vault names: 3 to 24 letters, digits and '-'." }
            }
            div.field {
                label for="c-location" { "Location" }
                input #c-location type="text" name="location" value="local";
            }
            div.field {
                label for="c-host" { "Host " span.hint { "(virtual machines, web and function apps: where the workload runs)" } }
                input #c-host type="text" name="host" value="local" spellcheck="false";
            }
            div { button type="submit" { "Create" } }
        }
    }
}

/// `POST /console/resources/create`.
pub async fn create(
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
    let subscription = match ctx.subscription_scope() {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let back = link("/resources", &[]);
    let Some(kind) = KINDS.iter().find(|item| Some(item.key) == form.get("kind")) else {
        return ctx.error_page(
            StatusCode::BAD_REQUEST,
            "That did not work",
            html::error_text("Choose a type."),
        );
    };
    let (Some(group), Some(name)) = (form.get("group"), form.get("name")) else {
        return ctx.error_page(
            StatusCode::BAD_REQUEST,
            "That did not work",
            html::error_text("Choose a resource group and a name."),
        );
    };
    let id =
        format!("{subscription}/resourceGroups/{group}/providers/{}/{name}", kind.resource_type);
    let body = create_body(
        kind,
        form.get("location").unwrap_or("local"),
        form.get("host").unwrap_or("local"),
        &ctx.app.tenant_id,
    );
    match ctx
        .send(reqwest::Method::PUT, &arm_path(&id, web::api_version_for(&id)), Some(&body))
        .await
    {
        Ok(created) => {
            let id = created["id"].as_str().unwrap_or(&id).to_owned();
            see_other(&link("/resource", &[("id", &id), ("notice", "created")]))
        }
        Err(error) => ctx.failed(&error, &back),
    }
}

/// The PUT body that creates a resource of `kind`.
pub fn create_body(kind: &Kind, location: &str, host: &str, tenant: &str) -> Value {
    let mut body = json!({"location": location});
    if let Some(field) = kind.kind_field {
        body["kind"] = json!(field);
    }
    if kind.compute {
        body["properties"] = json!({"hostId": host});
    }
    if kind.resource_type == VAULT_TYPE {
        body["properties"] = json!({
            "tenantId": tenant,
            "sku": {"family": "A", "name": "standard"},
            "enableRbacAuthorization": true,
        });
    }
    body
}

#[derive(Debug, Default, Deserialize)]
pub struct IdQuery {
    pub id: Option<String>,
    pub notice: Option<String>,
}

/// `GET /console/resource?id=`: a resource's (or group's) overview.
pub async fn show(
    State(app): State<App>,
    session: Session,
    Query(query): Query<IdQuery>,
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
    let parsed = ResourceId::parse(&id).ok();
    let resource_type = html::text(&resource, "/type");
    let is_group = parsed.as_ref().is_some_and(ResourceId::is_resource_group);
    let group =
        parsed.as_ref().and_then(|id| id.resource_group().map(str::to_owned)).unwrap_or_default();
    let name = html::text(&resource, "/name").to_owned();
    let properties = &resource["properties"];
    let mut rows: Vec<(&str, Markup)> = vec![
        ("Type", html! { (friendly_type(&resource)) " " span.muted.small { (resource_type) } }),
        ("Resource id", html::id_text(html::text(&resource, "/id"))),
        ("Location", html::or_dash(html::text(&resource, "/location"))),
    ];
    if !is_group {
        rows.push((
            "Resource group",
            html! { a href=(link("/resources", &[("group", &group)])) { (group) } },
        ));
    }
    if is_compute(resource_type) {
        rows.push((
            "Host",
            html! { a href=(link("/hosts", &[])) { (html::text(properties, "/hostId")) } },
        ));
        rows.push(("Identities", identity_badges(&resource)));
        if let Some(vm_id) = properties["vmId"].as_str() {
            rows.push(("VM id", html::id_text(vm_id)));
        }
        let path = format!("/hosting/faults?resourceId={}", client::encode(&id));
        if let Ok(faults) = ctx.get(&path).await {
            let faults = crate::pages::hosts::fault_summary(&faults);
            if !faults.is_empty() {
                rows.push((
                    "Injected faults",
                    html! { span.badge.warn.fault #faults { (faults.join(", ")) } },
                ));
            }
        }
    }
    if resource_type.eq_ignore_ascii_case(UAMI_TYPE) {
        rows.push(("Client id", html::id_text(html::text(properties, "/clientId"))));
        rows.push(("Principal (object) id", html::id_text(html::text(properties, "/principalId"))));
        rows.push(("Tenant", html::id_text(html::text(properties, "/tenantId"))));
    }
    if resource_type.eq_ignore_ascii_case(VAULT_TYPE) {
        rows.push(("Vault URI", html::id_text(html::text(properties, "/vaultUri"))));
        rows.push((
            "Soft-delete retention",
            html! { (properties["softDeleteRetentionInDays"].as_i64().unwrap_or(0)) " days" },
        ));
    }
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        (tabs(&id, resource_type, Tab::Overview))
        div.card { (html::facts(&rows)) }
        @if is_group {
            p { a.btn.btn-secondary href=(link("/resources", &[("group", &name)])) { "Resources in this group" } }
        }
        @if resource_type.eq_ignore_ascii_case(UAMI_TYPE) {
            p { a.btn.btn-secondary href=(format!("{}#{}", link("/identities", &[]), name)) { "Attached resources and federated credentials" } }
        }
        details {
            summary { "JSON" }
            (html::json_block(&resource))
        }
        h2 { "Delete" }
        p { a.btn.btn-danger href=(link("/resource/delete", &[("id", &id)])) { "Delete " (name) "…" } }
    };
    ctx.page(if is_group { Nav::Groups } else { Nav::Resources }, &name, body)
}

/// `GET /console/resource/delete?id=`: what deleting will do, and the button.
pub async fn confirm_delete(
    State(app): State<App>,
    session: Session,
    Query(query): Query<IdQuery>,
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
    let name = html::text(&resource, "/name");
    let resource_type = html::text(&resource, "/type");
    let consequence = if ResourceId::parse(&id).is_ok_and(|id| id.is_resource_group()) {
        "Every resource in the group is deleted with it, and the system-assigned identities of those resources."
    } else if resource_type.eq_ignore_ascii_case(UAMI_TYPE) {
        "The identity is detached from every resource that uses it, and its principal is deleted from the directory."
    } else if is_compute(resource_type) {
        "If it has a system-assigned identity, that principal is deleted from the directory; role assignments naming it stop working."
    } else if resource_type.eq_ignore_ascii_case(VAULT_TYPE) {
        "The vault and its secrets are deleted."
    } else {
        "The resource is deleted."
    };
    let body = html! {
        div.warning { p { strong { "Delete " (friendly_type(&resource)) " " (name) "?" } } p { (consequence) } }
        form.inline method="post" action=(link("/resource/delete", &[])) {
            (html::csrf_field(&ctx.session))
            input type="hidden" name="id" value=(id);
            button.btn-danger type="submit" { "Delete" }
        }
        " "
        a.btn.btn-secondary href=(link("/resource", &[("id", &id)])) { "Cancel" }
    };
    ctx.page(Nav::Resources, &format!("Delete {name}"), body)
}

/// `POST /console/resource/delete`.
pub async fn delete(
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
    let id = id.as_str();
    let is_group = ResourceId::parse(id).is_ok_and(|id| id.is_resource_group());
    match ctx.send(reqwest::Method::DELETE, &arm_path(id, web::api_version_for(id)), None).await {
        Ok(_) if is_group => see_other(&link("/groups", &[("notice", "deleted")])),
        Ok(_) => see_other(&link("/resources", &[("notice", "deleted")])),
        Err(error) => ctx.failed(&error, &link("/resource", &[("id", id)])),
    }
}
