//! Key vaults and their secrets: names, versions and attributes. A value is never fetched to
//! show a list or a version; it appears only after an explicit Reveal (a form, so a link or a
//! prefetch cannot trigger it), which is authorized by the data plane like any `getSecret` and
//! logged here with who asked.
//!
//! API calls: `GET /subscriptions/{s}/providers/Microsoft.KeyVault/vaults`, `GET {vault}`, and on
//! the vault's own host `GET /secrets`, `GET /secrets/{name}/versions`, `PUT /secrets/{name}`,
//! and (Reveal) `GET /secrets/{name}/{version}`, with the session's Key Vault token.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use domain::ResourceId;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiError, PAGES_MAX};
use crate::html::{self, Nav, link};
use crate::pages::notice_text;
use crate::pages::resources::{self, Tab, VAULT_TYPE};
use crate::session::Session;
use crate::web::{API_KEY_VAULT, API_SECRETS, App, Ctx, Form, arm_path, see_other};

#[derive(Debug, Default, Deserialize)]
pub struct VaultQuery {
    id: Option<String>,
    name: Option<String>,
    notice: Option<String>,
}

/// `GET /console/vaults`.
pub async fn list(State(app): State<App>, session: Session) -> Response {
    let ctx = Ctx::new(app, session);
    let subscription = match ctx.subscription_scope() {
        Ok(scope) => scope,
        Err(response) => return *response,
    };
    let vaults = match ctx
        .list(&format!("{subscription}/providers/{VAULT_TYPE}?api-version={API_KEY_VAULT}"))
        .await
    {
        Ok(vaults) => vaults,
        Err(error) => return ctx.failed(&error, &link("/", &[])),
    };
    let body = html! {
        div.toolbar { a.btn href=(format!("{}#create", link("/resources", &[]))) { "+ Create" } }
        div.table-wrap {
            table #vaults {
                thead { tr { th { "Name" } th { "Resource group" } th { "Vault URI" } } }
                tbody {
                    @for vault in &vaults {
                        @let id = html::text(vault, "/id");
                        tr {
                            td { a href=(link("/vault", &[("id", id)])) { (html::text(vault, "/name")) } }
                            td { (ResourceId::parse(id).ok().and_then(|id| id.resource_group().map(str::to_owned)).unwrap_or_default()) }
                            td { code { (html::text(vault, "/properties/vaultUri")) } }
                        }
                    }
                }
            }
            @if vaults.is_empty() { p.empty { "No key vault yet." } }
        }
    };
    ctx.page(Nav::Vaults, "Key vaults", body)
}

/// The vault resource and its data-plane URI (with a trailing slash).
async fn vault_of(ctx: &Ctx, id: &str) -> Result<(Value, String), ApiError> {
    let vault = ctx.get(&arm_path(id, API_KEY_VAULT)).await?;
    let mut uri = html::text(&vault, "/properties/vaultUri").to_owned();
    if !uri.ends_with('/') {
        uri.push('/');
    }
    Ok((vault, uri))
}

/// Every item of a data-plane list, following `nextLink`.
async fn vault_list(ctx: &Ctx, url: &str) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    let mut next = Some(url.to_owned());
    for _ in 0..PAGES_MAX {
        let Some(url) = next.take() else { break };
        let mut page = ctx.vault(reqwest::Method::GET, &url, None).await?;
        if let Some(Value::Array(values)) = page.get_mut("value").map(Value::take) {
            items.extend(values);
        }
        next = page.get("nextLink").and_then(Value::as_str).map(str::to_owned);
    }
    Ok(items)
}

/// The last segment of a Key Vault id (`https://v.vault.x/secrets/NAME[/VERSION]`).
fn secret_name(id: &str, versioned: bool) -> String {
    let mut segments = id.trim_end_matches('/').rsplit('/');
    if versioned {
        segments.next();
    }
    segments.next().unwrap_or_default().to_owned()
}

fn attribute_time(value: &Value, name: &str) -> Markup {
    match value["attributes"][name].as_i64() {
        Some(secs) => html! { (html::time_text(secs)) },
        None => html::dash(),
    }
}

fn enabled_badge(value: &Value) -> Markup {
    if value["attributes"]["enabled"].as_bool().unwrap_or(true) {
        html! { span.badge.ok { "Enabled" } }
    } else {
        html! { span.badge.bad { "Disabled" } }
    }
}

/// `GET /console/vault?id=`: the vault's secrets.
pub async fn show(
    State(app): State<App>,
    session: Session,
    Query(query): Query<VaultQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let id = match ctx.resource_id(query.id.as_deref().unwrap_or_default()) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let (vault, uri) = match vault_of(&ctx, &id).await {
        Ok(found) => found,
        Err(error) => return ctx.failed(&error, &link("/vaults", &[])),
    };
    let secrets =
        vault_list(&ctx, &format!("{uri}secrets?api-version={API_SECRETS}&maxresults=25")).await;
    let name = html::text(&vault, "/name").to_owned();
    let body = html! {
        (html::notice(notice_text(query.notice.as_deref())))
        (resources::tabs(&id, VAULT_TYPE, Tab::Secrets))
        p.muted { "Vault URI " code { (uri) } ". Reading secrets needs a data role on the vault, such as Key Vault Secrets User or Officer." }
        @match &secrets {
            Ok(secrets) => {
                div.table-wrap {
                    table #secrets {
                        thead { tr { th { "Name" } th { "Status" } th { "Content type" } th { "Updated" } th { "Expires" } } }
                        tbody {
                            @for secret in secrets {
                                @let secret_name = secret_name(html::text(secret, "/id"), false);
                                tr {
                                    td { a href=(link("/vault/secret", &[("id", &id), ("name", &secret_name)])) { (secret_name) } }
                                    td { (enabled_badge(secret)) }
                                    td { (html::or_dash(html::text(secret, "/contentType"))) }
                                    td { (attribute_time(secret, "updated")) }
                                    td { (attribute_time(secret, "exp")) }
                                }
                            }
                        }
                    }
                    @if secrets.is_empty() { p.empty { "No secrets." } }
                }
            }
            Err(error) => (html::api_error(error)),
        }
        details {
            summary { "+ Generate/Import a secret" }
            form.stack method="post" action=(link("/vault/secret/set", &[])) {
                (html::csrf_field(&ctx.session))
                input type="hidden" name="id" value=(id);
                div.field { label for="s-name" { "Name" } input #s-name type="text" name="name" required spellcheck="false" autocomplete="off"; }
                div.field { label for="s-value" { "Secret value" } input #s-value type="password" name="value" required autocomplete="new-password"; }
                div.field { label for="s-type" { "Content type " span.hint { "(optional)" } } input #s-type type="text" name="content_type"; }
                div { button type="submit" { "Create" } }
            }
        }
    };
    ctx.page(Nav::Vaults, &format!("{name} · Secrets"), body)
}

/// `GET /console/vault/secret?id=&name=`: versions and attributes, values hidden.
pub async fn secret(
    State(app): State<App>,
    session: Session,
    Query(query): Query<VaultQuery>,
) -> Response {
    let ctx = Ctx::new(app, session);
    let id = match ctx.resource_id(query.id.as_deref().unwrap_or_default()) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let name = query.name.unwrap_or_default();
    let back = link("/vault", &[("id", &id)]);
    let (_, uri) = match vault_of(&ctx, &id).await {
        Ok(found) => found,
        Err(error) => return ctx.failed(&error, &back),
    };
    let versions = vault_list(
        &ctx,
        &format!(
            "{uri}secrets/{}/versions?api-version={API_SECRETS}&maxresults=25",
            client::encode(&name)
        ),
    )
    .await;
    let body = html! {
        (resources::tabs(&id, VAULT_TYPE, Tab::Secrets))
        p { a href=(back) { "All secrets" } }
        form.inline method="post" action=(link("/vault/reveal", &[])) {
            (html::csrf_field(&ctx.session))
            input type="hidden" name="id" value=(id);
            input type="hidden" name="name" value=(name);
            button type="submit" { "Reveal current value" }
        }
        h2 { "Versions" }
        @match &versions {
            Ok(versions) => {
                div.table-wrap {
                    table #versions {
                        thead { tr { th { "Version" } th { "Status" } th { "Created" } th { "Activation" } th { "Expiration" } th { span.sr { "Actions" } } } }
                        tbody {
                            @for version in versions {
                                @let version_id = secret_name(html::text(version, "/id"), false);
                                tr {
                                    td { code { (version_id) } }
                                    td { (enabled_badge(version)) }
                                    td { (attribute_time(version, "created")) }
                                    td { (attribute_time(version, "nbf")) }
                                    td { (attribute_time(version, "exp")) }
                                    td.actions {
                                        form.inline method="post" action=(link("/vault/reveal", &[])) {
                                            (html::csrf_field(&ctx.session))
                                            input type="hidden" name="id" value=(id);
                                            input type="hidden" name="name" value=(name);
                                            input type="hidden" name="version" value=(version_id);
                                            button.btn-secondary type="submit" aria-label=(format!("Reveal version {version_id}")) { "Reveal" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Err(error) => (html::api_error(error)),
        }
    };
    ctx.page(Nav::Vaults, &format!("{name} · Secret"), body)
}

/// `POST /console/vault/reveal`: reads one value with the session's own Key Vault token.
pub async fn reveal(
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
    let name = form.text("name");
    let version = form.text("version");
    let back = link("/vault/secret", &[("id", id), ("name", name)]);
    let (_, uri) = match vault_of(&ctx, id).await {
        Ok(found) => found,
        Err(error) => return ctx.failed(&error, &back),
    };
    let mut url = format!("{uri}secrets/{}", client::encode(name));
    if !version.is_empty() {
        url.push('/');
        url.push_str(&client::encode(version));
    }
    url.push_str(&format!("?api-version={API_SECRETS}"));
    let result = ctx.vault(reqwest::Method::GET, &url, None).await;
    tracing::info!(
        principal = %ctx.session.principal.object_id,
        vault = %id,
        secret = %name,
        version = %version,
        allowed = result.is_ok(),
        "console: secret value revealed on request"
    );
    let secret = match result {
        Ok(secret) => secret,
        Err(error) => return ctx.failed(&error, &back),
    };
    let value = html::text(&secret, "/value");
    let body = html! {
        (resources::tabs(id, VAULT_TYPE, Tab::Secrets))
        div.warning { "This value is shown once, on this page only. It is not kept by the console." }
        (html::facts(&[
            ("Secret", html! { (name) }),
            ("Version", html! { code { (secret_name(html::text(&secret, "/id"), false)) } }),
            ("Content type", html::or_dash(html::text(&secret, "/contentType"))),
        ]))
        h2 { "Value" }
        p.secret-value #secret-value { code { (value) } }
        p { button.copy type="button" data-copy=(value) hidden { "Copy" } }
        p { a href=(back) { "Back to the secret" } }
    };
    ctx.page(Nav::Vaults, &format!("{name} · Value"), body)
}

/// `POST /console/vault/secret/set`: a new version of a secret.
pub async fn set_secret(
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
    let back = link("/vault", &[("id", id)]);
    let (_, uri) = match vault_of(&ctx, id).await {
        Ok(found) => found,
        Err(error) => return ctx.failed(&error, &back),
    };
    let mut body = json!({"value": form.raw("value")});
    if let Some(content_type) = form.get("content_type") {
        body["contentType"] = json!(content_type);
    }
    let url =
        format!("{uri}secrets/{}?api-version={API_SECRETS}", client::encode(form.text("name")));
    match ctx.vault(reqwest::Method::PUT, &url, Some(&body)).await {
        Ok(_) => see_other(&link("/vault", &[("id", id), ("notice", "secret-set")])),
        Err(error) => ctx.failed(&error, &back),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_come_from_ids() {
        assert_eq!(secret_name("https://v.vault.x:8443/secrets/db", false), "db");
        assert_eq!(secret_name("https://v.vault.x:8443/secrets/db/abc", false), "abc");
        assert_eq!(secret_name("https://v.vault.x:8443/secrets/db/abc", true), "db");
    }
}
