//! Enterprise applications: every service principal of the directory, filterable by
//! application type (managed identities, applications), with its object id, app id and, for a
//! managed identity, the resource it belongs to.
//!
//! API calls: `GET /v1.0/servicePrincipals`.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use crate::html::{self, Nav, link};
use crate::pages::iam::principal_kind;
use crate::session::Session;
use crate::web::{App, Ctx};

#[derive(Debug, Default, Deserialize)]
pub struct AppsQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
}

/// What kind of resource an id names, in words (`virtual machine`, `user-assigned identity`).
fn kind_of(id: &str) -> String {
    let parsed = domain::ResourceId::parse(id).ok();
    let resource_type = parsed
        .as_ref()
        .and_then(|id| id.resource_type().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    match resource_type.as_str() {
        "microsoft.compute/virtualmachines" => "virtual machine".to_owned(),
        "microsoft.compute/virtualmachinescalesets" => "scale set".to_owned(),
        "microsoft.web/sites" => "web or function app".to_owned(),
        "microsoft.managedidentity/userassignedidentities" => "user-assigned identity".to_owned(),
        other => other.rsplit('/').next().unwrap_or_default().to_owned(),
    }
}

/// `GET /console/apps?type=managed|applications&name=`.
pub async fn list(
    State(app): State<App>,
    session: Session,
    Query(query): Query<AppsQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let principals = match ctx.list("/v1.0/servicePrincipals").await {
        Ok(principals) => principals,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let kind = query.kind.as_deref().unwrap_or_default();
    let name = query.name.as_deref().unwrap_or_default().trim().to_ascii_lowercase();
    let mut shown: Vec<&Value> = principals
        .iter()
        .filter(|principal| match kind {
            "managed" => principal["servicePrincipalType"] == "ManagedIdentity",
            "applications" => principal["servicePrincipalType"] != "ManagedIdentity",
            _ => true,
        })
        .filter(|principal| {
            name.is_empty()
                || html::text(principal, "/displayName").to_ascii_lowercase().contains(&name)
                || html::text(principal, "/appId").contains(&name)
                || html::text(principal, "/id").contains(&name)
        })
        .collect();
    shown.sort_by_key(|principal| html::text(principal, "/displayName").to_ascii_lowercase());
    let body = html! {
        form.row method="get" action=(link("/apps", &[])) role="search" {
            div.field {
                label for="a-type" { "Application type" }
                select #a-type name="type" data-autosubmit {
                    option value="" selected[kind.is_empty()] { "All applications" }
                    option value="managed" selected[kind == "managed"] { "Managed Identities" }
                    option value="applications" selected[kind == "applications"] { "Applications" }
                }
            }
            div.field {
                label for="a-name" { "Name or id" }
                input #a-name type="search" name="name" value=(query.name.as_deref().unwrap_or_default());
            }
            button type="submit" { "Apply" }
        }
        p.muted.small { (shown.len()) " of " (principals.len()) " service principals" }
        div.table-wrap {
            table #apps {
                thead { tr { th { "Name" } th { "Application type" } th { "Object id" } th { "Application (client) id" } th { "Belongs to" } } }
                tbody {
                    @for principal in &shown {
                        @let resource = principal["alternativeNames"].as_array().and_then(|names| names.iter().filter_map(Value::as_str).find(|name| name.starts_with("/subscriptions/")));
                        tr {
                            td.nowrap { (html::text(principal, "/displayName")) }
                            td { (principal_kind(principal)) }
                            td { (html::id_text(html::text(principal, "/id"))) }
                            td { (html::id_text(html::text(principal, "/appId"))) }
                            td {
                                @match resource {
                                    Some(resource) => {
                                        a href=(link("/resource", &[("id", resource)])) { (resource.rsplit('/').next().unwrap_or(resource)) }
                                        " " span.muted.small { (kind_of(resource)) }
                                    }
                                    None => (html::dash()),
                                }
                            }
                        }
                    }
                }
            }
            @if shown.is_empty() { p.empty { "No application matches." } }
        }
    };
    ctx.page(Nav::Apps, "Enterprise applications", body)
}
