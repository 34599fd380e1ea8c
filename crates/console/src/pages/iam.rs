//! Access control (IAM) on any scope: role assignments here and inherited, adding (a role
//! picker with descriptions, an assignee picker with managed identities and applications) and
//! removing; Check access (a principal's effective actions and data actions here, and where
//! each comes from); and the role definitions, built-in and custom.
//!
//! API calls: `GET {scope}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope()`
//! (or `principalId eq '...'` for Check access), `GET {scope}/providers/Microsoft.Authorization/
//! roleDefinitions`, `GET /v1.0/servicePrincipals`, `PUT` and `DELETE` of a role assignment.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::ResourceId;
use maud::{Markup, html};
use rbac::{ActionKind, Decision};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::{self, Assignment, Role};
use crate::api::ApiError;
use crate::html::{self, Nav, link};
use crate::pages::notice_text;
use crate::pages::resources::{self, Tab};
use crate::session::Session;
use crate::web::{API_AUTHORIZATION, App, Ctx, Form, arm_path, see_other};

#[derive(Debug, Default, Deserialize)]
pub struct ScopeQuery {
    scope: Option<String>,
    principal: Option<String>,
    action: Option<String>,
    kind: Option<String>,
    notice: Option<String>,
}

/// The directory's service principals, by object id.
pub struct Directory(Vec<Value>);

impl Directory {
    pub async fn load(ctx: &Ctx) -> Result<Directory, ApiError> {
        ctx.list("/v1.0/servicePrincipals").await.map(Directory)
    }

    pub fn find(&self, object_id: &str) -> Option<&Value> {
        self.0.iter().find(|principal| html::text(principal, "/id").eq_ignore_ascii_case(object_id))
    }

    /// A principal's name, with what it is.
    pub fn describe(&self, object_id: &str) -> Markup {
        match self.find(object_id) {
            Some(principal) => html! {
                strong { (html::text(principal, "/displayName")) }
                " "
                span.muted.small { (principal_kind(principal)) }
                br;
                span.small { (html::id_text(object_id)) }
            },
            None => html! { span.muted { "Unknown principal " } (html::id_text(object_id)) },
        }
    }

    /// An assignee picker: managed identities, then applications.
    pub fn picker(&self, name: &str, id: &str, selected: Option<&str>, required: bool) -> Markup {
        let (managed, apps): (Vec<&Value>, Vec<&Value>) = self
            .0
            .iter()
            .partition(|principal| principal["servicePrincipalType"] == "ManagedIdentity");
        let option = |principal: &&Value| {
            let object_id = html::text(principal, "/id");
            html! {
                option value=(object_id) selected[selected.is_some_and(|s| s.eq_ignore_ascii_case(object_id))] {
                    (html::text(principal, "/displayName")) " — " (object_id)
                }
            }
        };
        html! {
            select id=(id) name=(name) required[required] {
                option value="" { "Choose a principal" }
                optgroup label="Managed identities" { @for principal in &managed { (option(principal)) } }
                optgroup label="Applications" { @for principal in &apps { (option(principal)) } }
            }
        }
    }
}

/// "Managed identity" or "Application".
pub fn principal_kind(principal: &Value) -> &'static str {
    if principal["servicePrincipalType"] == "ManagedIdentity" {
        "Managed identity"
    } else {
        "Application"
    }
}

/// `{scope}/providers/Microsoft.Authorization/{what}` as a request path.
fn authorization_path(scope: &str, what: &str, filter: Option<&str>) -> String {
    let prefix = if scope == "/" { "" } else { scope.trim_end_matches('/') };
    let mut path =
        arm_path(&format!("{prefix}/providers/Microsoft.Authorization/{what}"), API_AUTHORIZATION);
    if let Some(filter) = filter {
        path.push_str("&$filter=");
        path.push_str(&client::encode(filter));
    }
    path
}

async fn roles_at(ctx: &Ctx, scope: &str) -> Result<Vec<Role>, ApiError> {
    Ok(access::roles_from_json(
        &ctx.list(&authorization_path(scope, "roleDefinitions", None)).await?,
    ))
}

/// The scope asked for, or the subscription.
fn scope_of(ctx: &Ctx, asked: Option<&str>) -> Result<ResourceId, Box<Response>> {
    let text = match asked.filter(|scope| !scope.trim().is_empty()) {
        Some(scope) => scope.trim().to_owned(),
        None => ctx.subscription_scope()?,
    };
    ResourceId::parse(&text).map_err(|error| {
        Box::new(ctx.error_page(
            axum::http::StatusCode::BAD_REQUEST,
            "Not a scope",
            html::error_text(&format!("{text} is not a scope: {error}")),
        ))
    })
}

/// Links to the IAM page of each scope from the root down to `scope`.
fn breadcrumb(scope: &ResourceId, page: &str) -> Markup {
    // `/providers/{namespace}` ends an even number of segments but is no scope.
    let ancestors: Vec<String> = scope
        .ancestors_and_self()
        .into_iter()
        .filter(|key| key.rsplit('/').nth(1) != Some("providers"))
        .collect();
    html! {
        p.small {
            "Scope: "
            @for (index, ancestor) in ancestors.iter().enumerate() {
                @if index > 0 { " / " }
                @let original = original_case(scope, ancestor);
                @let label = if ancestor == "/" { "Root (tenant)".to_owned() } else { original.rsplit('/').next().unwrap_or(&original).to_owned() };
                @if index + 1 == ancestors.len() { strong { (label) } }
                @else { a href=(link(page, &[("scope", &original)])) { (label) } }
            }
        }
    }
}

/// The prefix of `scope` as created that has the lower-cased key `key`.
fn original_case(scope: &ResourceId, key: &str) -> String {
    if key == "/" {
        return "/".to_owned();
    }
    scope.as_str().get(..key.len()).unwrap_or(key).to_owned()
}

fn scope_tabs(scope: &ResourceId) -> Markup {
    if scope.is_root() || scope.is_subscription() {
        return html! {};
    }
    let resource_type = scope.resource_type().unwrap_or("Microsoft.Resources/resourceGroups");
    resources::tabs(scope.as_str(), resource_type, Tab::Access)
}

/// `GET /console/iam?scope=`.
pub async fn show(
    State(app): State<App>,
    session: Session,
    Query(query): Query<ScopeQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let scope = match scope_of(&ctx, query.scope.as_deref()) {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let assignments_path = authorization_path(scope.as_str(), "roleAssignments", Some("atScope()"));
    let (assignments, roles, directory) = tokio::join!(
        ctx.list(&assignments_path),
        roles_at(&ctx, scope.as_str()),
        Directory::load(&ctx),
    );
    let assignments = match assignments {
        Ok(assignments) => access::assignments_from_json(&assignments),
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let roles = roles.unwrap_or_default();
    let directory = directory.unwrap_or(Directory(Vec::new()));
    let mut rows: Vec<&Assignment> = assignments.iter().collect();
    rows.sort_by_key(|assignment| {
        (std::cmp::Reverse(assignment.scope.key().len()), assignment.role.to_string())
    });
    let title = match scope.name() {
        Some(name) if !scope.is_subscription() => format!("{name} · Access control (IAM)"),
        _ => "Access control (IAM)".to_owned(),
    };
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        (scope_tabs(&scope))
        (breadcrumb(&scope, "/iam"))
        div.card {
            h2 { "Check access" }
            p.muted { "Review what a principal may do at this scope, and which role assignment gives it." }
            form.row method="get" action=(link("/iam/check", &[])) {
                input type="hidden" name="scope" value=(scope.as_str());
                div.field { label for="check-principal" { "Principal" } (directory.picker("principal", "check-principal", None, true)) }
                button type="submit" { "Check access" }
            }
        }
        h2 { "Role assignments" }
        p.muted { "Assignments at this scope and inherited from the scopes above it." }
        (html::table_filter("assignments", "Filter assignments"))
        div.table-wrap {
            table #assignments {
                thead { tr { th { "Role" } th { "Principal" } th { "Scope" } th { span.sr { "Actions" } } } }
                tbody {
                    @for assignment in &rows {
                        @let here = assignment.scope == scope;
                        tr {
                            td { (access::find_role(&roles, &assignment.role).map_or_else(|| assignment.role.to_string(), |role| role.definition.role_name.clone())) }
                            td { (directory.describe(&assignment.principal_id)) }
                            td {
                                @if here { "This resource" }
                                @else {
                                    "Inherited from "
                                    a href=(link("/iam", &[("scope", assignment.scope.as_str())])) { (scope_label(&assignment.scope)) }
                                }
                            }
                            td.actions {
                                @if here {
                                    form.inline method="post" action=(link("/iam/remove", &[])) data-confirm="Remove this role assignment?" {
                                        (html::csrf_field(&ctx.session))
                                        input type="hidden" name="id" value=(assignment.id);
                                        input type="hidden" name="scope" value=(scope.as_str());
                                        button.btn-secondary type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if rows.is_empty() { p.empty { "No role assignment applies here." } }
        }
        h2 #add { "Add role assignment" }
        form.stack.card method="post" action=(link("/iam/assign", &[])) {
            (html::csrf_field(&ctx.session))
            input type="hidden" name="scope" value=(scope.as_str());
            fieldset {
                legend { "Role" }
                (html::table_filter("role-choices", "Search roles"))
                div.choices {
                    table #role-choices { tbody {
                        @for role in roles.iter().filter(|role| role.definition.is_assignable_at(&scope)) {
                            tr { td {
                                label.choice {
                                    input type="radio" name="role" value=(role.id) required;
                                    span {
                                        strong { (role.definition.role_name) }
                                        @if role.definition.role_type == rbac::RoleType::Custom { " " span.badge { "Custom" } }
                                        br;
                                        span.hint { (role.definition.description) }
                                    }
                                }
                            } }
                        }
                    } }
                }
            }
            div.field {
                label for="assignee" { "Assign access to" }
                (directory.picker("principal", "assignee", None, false))
                span.hint { "Managed identities are listed first; an application is a service principal with its own credentials." }
            }
            div.field {
                label for="assignee-id" { "or its object id " span.hint { "(when the directory cannot be listed)" } }
                input #assignee-id type="text" name="principal_id" spellcheck="false" autocomplete="off";
            }
            div { button type="submit" { "Review + assign" } }
        }
    };
    ctx.page(Nav::Access, &title, body)
}

/// A scope in a few words: its name and what it is.
fn scope_label(scope: &ResourceId) -> String {
    if scope.is_root() {
        "the root (tenant)".to_owned()
    } else if scope.is_subscription() {
        format!("subscription {}", scope.subscription_id().unwrap_or_default())
    } else if scope.is_resource_group() {
        format!("resource group {}", scope.resource_group().unwrap_or_default())
    } else {
        scope.name().unwrap_or(scope.as_str()).to_owned()
    }
}

/// `POST /console/iam/assign`.
pub async fn assign(
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
    let scope = form.text("scope");
    let back = link("/iam", &[("scope", scope)]);
    let principal = form.get("principal").or(form.get("principal_id"));
    let (Some(role), Some(principal)) = (form.get("role"), principal) else {
        return ctx.error_page(
            axum::http::StatusCode::BAD_REQUEST,
            "That did not work",
            html! {
                (html::error_text("Choose a role and a principal."))
                p { a href=(back) { "Go back" } }
            },
        );
    };
    let name = uuid::Uuid::new_v4().to_string();
    let path = authorization_path(scope, &format!("roleAssignments/{name}"), None);
    let body = json!({"properties": {
        "roleDefinitionId": role,
        "principalId": principal,
        "principalType": "ServicePrincipal",
    }});
    match ctx.send(reqwest::Method::PUT, &path, Some(&body)).await {
        Ok(_) => see_other(&link("/iam", &[("scope", scope), ("notice", "assigned")])),
        Err(error) => ctx.failed(&error, &back),
    }
}

/// `POST /console/iam/remove`.
pub async fn remove(
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
    let scope = form.text("scope");
    match ctx
        .send(reqwest::Method::DELETE, &arm_path(form.text("id"), API_AUTHORIZATION), None)
        .await
    {
        Ok(_) => see_other(&link("/iam", &[("scope", scope), ("notice", "unassigned")])),
        Err(error) => ctx.failed(&error, &link("/iam", &[("scope", scope)])),
    }
}

/// `GET /console/iam/check?scope=&principal=&action=&kind=`.
pub async fn check(
    State(app): State<App>,
    session: Session,
    Query(query): Query<ScopeQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let scope = match scope_of(&ctx, query.scope.as_deref()) {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let principal = query.principal.as_deref().unwrap_or_default().trim().to_ascii_lowercase();
    let filter = format!("principalId eq '{}'", principal.replace('\'', "''"));
    let (directory, roles) = tokio::join!(Directory::load(&ctx), roles_at(&ctx, scope.as_str()));
    let directory = directory.unwrap_or(Directory(Vec::new()));
    let roles = roles.unwrap_or_default();
    let assignments = if principal.is_empty() {
        Ok(Vec::new())
    } else {
        ctx.list(&authorization_path(scope.as_str(), "roleAssignments", Some(&filter)))
            .await
            .map(|values| access::assignments_from_json(&values))
    };
    let picker = html! {
        form.row.card method="get" action=(link("/iam/check", &[])) {
            div.field { label for="c-principal" { "Principal" } (directory.picker("principal", "c-principal", Some(&principal), true)) }
            div.field { label for="c-scope" { "Scope" } input #c-scope type="text" name="scope" value=(scope.as_str()) size="60" spellcheck="false"; }
            button type="submit" { "Check access" }
        }
    };
    let result = match (&assignments, principal.is_empty()) {
        (_, true) => html! { p.muted { "Choose a principal." } },
        (Err(error), false) => html::api_error(error),
        (Ok(assignments), false) => {
            check_result(&scope, &principal, assignments, &roles, &directory, &query)
        }
    };
    let body = html! {
        (scope_tabs(&scope))
        (breadcrumb(&scope, "/iam/check"))
        (picker)
        (result)
    };
    ctx.page(Nav::Access, "Check access", body)
}

fn check_result(
    scope: &ResourceId,
    principal: &str,
    assignments: &[Assignment],
    roles: &[Role],
    directory: &Directory,
    query: &ScopeQuery,
) -> Markup {
    let contributions = access::contributions(principal, scope, assignments, roles);
    let below: Vec<&Assignment> = assignments
        .iter()
        .filter(|assignment| assignment.scope != *scope && assignment.scope.is_within(scope))
        .collect();
    let mut typical = access::typical_actions(scope);
    let asked = query.action.as_deref().map(str::trim).filter(|action| !action.is_empty());
    let asked_kind =
        if query.kind.as_deref() == Some("data") { ActionKind::Data } else { ActionKind::Control };
    if let Some(action) = asked {
        typical.insert(0, (action.to_owned(), asked_kind));
    }
    let role_name = |id: &domain::Guid| {
        access::find_role(roles, id)
            .map_or_else(|| id.to_string(), |role| role.definition.role_name.clone())
    };
    html! {
        div.card { (directory.describe(principal)) }
        h2 { "Role assignments that apply here" }
        div.table-wrap {
            table #contributions {
                thead { tr { th { "Role" } th { "Assigned at" } } }
                tbody {
                    @for contribution in &contributions {
                        tr {
                            td { (contribution.role.definition.role_name) }
                            td {
                                @if contribution.inherited { "Inherited from " }
                                a href=(link("/iam", &[("scope", contribution.assignment.scope.as_str())])) { (scope_label(&contribution.assignment.scope)) }
                            }
                        }
                    }
                }
            }
            @if contributions.is_empty() { p.empty { "None: this principal may do nothing here." } }
        }
        @if !below.is_empty() {
            h3 { "Also assigned below this scope" }
            ul {
                @for assignment in &below {
                    li {
                        (role_name(&assignment.role)) " on "
                        a href=(link("/iam/check", &[("scope", assignment.scope.as_str()), ("principal", principal)])) { (scope_label(&assignment.scope)) }
                    }
                }
            }
        }
        h2 { "Decisions" }
        form.row method="get" action=(link("/iam/check", &[])) {
            input type="hidden" name="scope" value=(scope.as_str());
            input type="hidden" name="principal" value=(principal);
            div.field { label for="t-action" { "Test an action" } input #t-action type="text" name="action" size="55" value=(asked.unwrap_or_default()) placeholder="Microsoft.KeyVault/vaults/secrets/getSecret/action" spellcheck="false"; }
            div.field {
                label for="t-kind" { "Kind" }
                select #t-kind name="kind" {
                    option value="control" selected[asked_kind == ActionKind::Control] { "Action (control plane)" }
                    option value="data" selected[asked_kind == ActionKind::Data] { "Data action" }
                }
            }
            button type="submit" { "Test" }
        }
        div.table-wrap {
            table #decisions {
                thead { tr { th { "Action" } th { "Kind" } th { "Decision" } } }
                tbody {
                    @for (action, kind) in &typical {
                        tr {
                            td { code { (action) } }
                            td { (if *kind == ActionKind::Data { "Data action" } else { "Action" }) }
                            td {
                                @match access::decide(&contributions, action, *kind, scope) {
                                    Decision::Allowed { role, scope: at } => {
                                        span.badge.ok { "Allowed" } " by " (role_name(&role)) " at " code { (at) }
                                    }
                                    Decision::Denied => { span.badge.bad { "Denied" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Effective permissions here" }
        p.muted { "The union of these roles' permissions; \"not\" patterns subtract within their own role only." }
        @for contribution in &contributions {
            details open[contributions.len() <= 3] {
                summary { (contribution.role.definition.role_name) " " span.muted.small { "at " (scope_label(&contribution.assignment.scope)) } }
                (permissions(&contribution.role.definition))
            }
        }
    }
}

/// A role's permission blocks as lists.
fn permissions(role: &rbac::RoleDefinition) -> Markup {
    let list = |label: &str, patterns: &[String]| {
        html! {
            @if !patterns.is_empty() {
                div { span.small.muted { (label) } ul.patterns { @for pattern in patterns { li { code { (pattern) } } } } }
            }
        }
    };
    html! {
        @for block in &role.permissions {
            (list("Actions", &block.actions))
            (list("Not actions", &block.not_actions))
            (list("Data actions", &block.data_actions))
            (list("Not data actions", &block.not_data_actions))
        }
    }
}

/// `GET /console/roles?scope=`: role definitions with their permissions.
pub async fn roles(
    State(app): State<App>,
    session: Session,
    Query(query): Query<ScopeQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let scope = match scope_of(&ctx, query.scope.as_deref()) {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let roles = match roles_at(&ctx, scope.as_str()).await {
        Ok(roles) => roles,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let kind = query.kind.as_deref().unwrap_or_default();
    let shown: Vec<&Role> = roles
        .iter()
        .filter(|role| match kind {
            "builtin" => role.definition.role_type == rbac::RoleType::BuiltIn,
            "custom" => role.definition.role_type == rbac::RoleType::Custom,
            _ => true,
        })
        .collect();
    let body = html! {
        form.row method="get" action=(link("/roles", &[])) {
            input type="hidden" name="scope" value=(scope.as_str());
            div.field {
                label for="r-kind" { "Type" }
                select #r-kind name="kind" data-autosubmit {
                    option value="" selected[kind.is_empty()] { "All roles" }
                    option value="builtin" selected[kind == "builtin"] { "Built-in roles" }
                    option value="custom" selected[kind == "custom"] { "Custom roles" }
                }
            }
            button type="submit" { "Show" }
        }
        (html::table_filter("roles", "Filter roles"))
        div.table-wrap {
            table #roles {
                thead { tr { th { "Role" } th { "Type" } th { "Permissions" } } }
                tbody {
                    @for role in &shown {
                        tr {
                            td { strong { (role.definition.role_name) } br; span.small.muted { (role.definition.description) } }
                            td { @if role.definition.role_type == rbac::RoleType::Custom { "Custom" } @else { "Built-in" } }
                            td {
                                details {
                                    summary { "Actions and data actions" }
                                    (permissions(&role.definition))
                                    p.small.muted { "Assignable at: " (role.definition.assignable_scopes.join(", ")) }
                                    p.small.muted { "Id: " code { (role.definition.id) } }
                                }
                            }
                        }
                    }
                }
            }
            @if shown.is_empty() { p.empty { "No role definitions." } }
        }
    };
    ctx.page(Nav::Roles, "Role definitions", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_paths_at_every_scope() {
        assert_eq!(
            authorization_path("/", "roleDefinitions", None),
            "/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01"
        );
        assert_eq!(
            authorization_path("/subscriptions/s", "roleAssignments", Some("atScope()")),
            "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope%28%29"
        );
    }

    #[test]
    fn breadcrumbs_keep_the_case_the_scope_was_written_in() {
        let scope = ResourceId::parse("/subscriptions/S1/resourceGroups/RG").unwrap();
        assert_eq!(original_case(&scope, "/subscriptions/s1"), "/subscriptions/S1");
        assert_eq!(original_case(&scope, "/"), "/");
        assert_eq!(scope_label(&scope), "resource group RG");
    }
}
