//! Sign-in and sign-out.
//!
//! Sign-in trades a service principal's client secret (or a certificate with its private key)
//! for access tokens at this server's token endpoint, for the management audience (control
//! plane), for Graph (the directory) and for Key Vault. The credential is used for those three
//! requests and dropped; only the tokens are kept, sealed in the session cookies.
//!
//! API calls: `POST /{tenant}/oauth2/v2.0/token` (three times), `GET
//! /v1.0/servicePrincipals/{oid}` (the display name), `GET /subscriptions`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use domain::Secret;
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::ApiError;
use crate::html::{self, link};
use crate::jwt;
use crate::multipart;
use crate::session::{self, Principal, SESSION_SECS_MAX, SIGNIN_COOKIE, SIGNIN_FORM_SECS, Session};
use crate::web::{API_SUBSCRIPTIONS, App, Form, IntoHtml, see_other};

/// The scope whose tokens the control plane accepts.
pub const MANAGEMENT_SCOPE: &str = client::MANAGEMENT_SCOPE;
/// The scope whose tokens the directory accepts.
pub const GRAPH_SCOPE: &str = client::GRAPH_SCOPE;
/// The scope of Key Vault tokens.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// Largest certificate file accepted.
const CERTIFICATE_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    reason: Option<String>,
}

/// What the sign-in form sent.
#[derive(Debug, Default)]
struct Credentials {
    csrf: String,
    next: String,
    tenant: String,
    client_id: String,
    secret: Option<Secret<String>>,
    certificate: Option<Secret<Vec<u8>>>,
}

/// `GET /console/signin`.
pub async fn show(
    State(app): State<App>,
    existing: Option<Session>,
    Query(query): Query<SignInQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if existing.is_some() {
        return see_other(&next);
    }
    let message = match query.reason.as_deref() {
        Some("expired") => Some("Your session ended. Sign in again."),
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    form_page(&app, StatusCode::OK, &next, &app.tenant_id, "", message, None)
}

/// `POST /console/signin`.
pub async fn submit(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let credentials = match read_form(&headers, &body) {
        Ok(credentials) => credentials,
        Err(message) => {
            return form_page(
                &app,
                StatusCode::BAD_REQUEST,
                &html::link("/", &[]),
                &app.tenant_id,
                "",
                None,
                Some(&message),
            );
        }
    };
    let next = safe_next(Some(&credentials.next));
    let tenant = if credentials.tenant.is_empty() {
        app.tenant_id.clone()
    } else {
        credentials.tenant.clone()
    };
    let retry = |status: StatusCode, message: &str| {
        form_page(&app, status, &next, &tenant, &credentials.client_id, None, Some(message))
    };
    let cookie = session::cookie_value(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if let Err(error) =
        session::check_form(&headers, &app.public_url, &cookie, Some(&credentials.csrf))
    {
        return retry(StatusCode::FORBIDDEN, &error.to_string());
    }
    if credentials.client_id.is_empty() {
        return retry(StatusCode::BAD_REQUEST, "Enter the client id (application id).");
    }
    let method = match (&credentials.secret, &credentials.certificate) {
        (Some(secret), None) => Method::Secret(secret),
        (None, Some(pem)) => {
            match certificate_credential(&app, &tenant, &credentials.client_id, pem) {
                Ok(credential) => Method::Certificate(Box::new(credential)),
                Err(message) => return retry(StatusCode::BAD_REQUEST, &message),
            }
        }
        (Some(_), Some(_)) => {
            return retry(
                StatusCode::BAD_REQUEST,
                "Give either a client secret or a certificate, not both.",
            );
        }
        (None, None) => {
            return retry(StatusCode::BAD_REQUEST, "Give a client secret or a certificate file.");
        }
    };
    let management = match token(&app, &tenant, &credentials.client_id, &method, MANAGEMENT_SCOPE)
        .await
    {
        Ok(token) => token,
        Err(error) => {
            tracing::info!(client_id = %credentials.client_id, %error, "console sign-in refused");
            return retry(StatusCode::UNAUTHORIZED, &format!("Sign-in failed. {error}"));
        }
    };
    // Key Vault and Graph tokens are optional: a principal may be refused them and still use
    // the rest.
    let vault = token(&app, &tenant, &credentials.client_id, &method, VAULT_SCOPE).await.ok();
    let graph = token(&app, &tenant, &credentials.client_id, &method, GRAPH_SCOPE).await.ok();
    drop(method);
    let session = match new_session(&app, &tenant, management, vault, graph).await {
        Ok(session) => session,
        Err(message) => return retry(StatusCode::BAD_GATEWAY, &message),
    };
    tracing::info!(
        principal = %session.principal.object_id,
        app_id = %session.principal.app_id,
        "console sign-in"
    );
    let mut response = see_other(&next);
    let cookies = app.sessions.set_cookies(&session, app.now());
    let headers = response.headers_mut();
    for cookie in cookies.into_iter().chain([session::cookie(SIGNIN_COOKIE, "", 0)]) {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /console/signout`.
pub async fn sign_out(
    State(app): State<App>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = crate::web::Ctx::new(app.clone(), session);
    if let Err(response) = ctx.check_form(&headers, &Form::parse(&body)) {
        return *response;
    }
    app.sessions.sign_out(&ctx.session, app.now());
    tracing::info!(principal = %ctx.session.principal.object_id, "console sign-out");
    let mut response = see_other(&link("/signin", &[("reason", "signed-out")]));
    for cookie in session::clear_cookies() {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

enum Method<'a> {
    Secret(&'a Secret<String>),
    Certificate(Box<identity::ClientCertificateCredential>),
}

/// A certificate credential whose assertions name this server's public token endpoint.
fn certificate_credential(
    app: &App,
    tenant: &str,
    client_id: &str,
    pem: &Secret<Vec<u8>>,
) -> Result<identity::ClientCertificateCredential, String> {
    let options = identity::ClientCertificateCredentialOptions {
        client_options: identity::ClientOptions {
            authority_host: app.public_url.clone(),
            ..identity::ClientOptions::default()
        },
        send_certificate_chain: false,
    };
    identity::ClientCertificateCredential::new(tenant, client_id, pem.expose(), options)
        .map_err(|error| format!("The certificate file cannot be used: {error}"))
}

async fn token(
    app: &App,
    tenant: &str,
    client_id: &str,
    method: &Method<'_>,
    scope: &str,
) -> Result<(String, i64), ApiError> {
    match method {
        Method::Secret(secret) => {
            app.api
                .token(
                    tenant,
                    scope,
                    &[("client_id", client_id), ("client_secret", secret.expose())],
                )
                .await
        }
        Method::Certificate(credential) => {
            let assertion = credential.client_assertion().map_err(|error| {
                ApiError::Transport(format!("sign the client assertion: {error}"))
            })?;
            app.api
                .token(
                    tenant,
                    scope,
                    &[
                        ("client_id", client_id),
                        (
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                        ),
                        ("client_assertion", assertion.expose()),
                    ],
                )
                .await
        }
    }
}

async fn new_session(
    app: &App,
    tenant: &str,
    management: (String, i64),
    vault: Option<(String, i64)>,
    graph: Option<(String, i64)>,
) -> Result<Session, String> {
    let now = app.now();
    let claims = jwt::claims_unverified(&management.0).unwrap_or_default();
    let object_id = claims["oid"].as_str().unwrap_or_default().to_owned();
    let app_id = claims["appid"].as_str().or(claims["azp"].as_str()).unwrap_or_default().to_owned();
    let token_expires = |token: &(String, i64)| {
        jwt::claims_unverified(&token.0)
            .and_then(|claims| claims["exp"].as_i64())
            .unwrap_or(now + token.1)
    };
    let mut expires = (now + SESSION_SECS_MAX).min(token_expires(&management));
    for token in [&vault, &graph].into_iter().flatten() {
        expires = expires.min(token_expires(token));
    }
    let path = format!("/v1.0/servicePrincipals/{}", client::encode(&object_id));
    let display_name = match &graph {
        Some(graph) => match app.api.get(&graph.0, &path).await {
            Ok(principal) => principal["displayName"].as_str().unwrap_or(&app_id).to_owned(),
            Err(_) => app_id.clone(),
        },
        None => app_id.clone(),
    };
    let subscriptions = app
        .api
        .list(&management.0, &format!("/subscriptions?api-version={API_SUBSCRIPTIONS}"))
        .await
        .map_err(|error| format!("Signed in, but the subscriptions could not be read: {error}"))?;
    let subscription = subscriptions
        .first()
        .and_then(|subscription| subscription["subscriptionId"].as_str())
        .map(str::to_owned);
    Ok(Session {
        id: session::random_token(),
        csrf: session::random_token(),
        expires,
        tenant: tenant.to_owned(),
        subscription,
        principal: Principal { object_id, app_id, display_name },
        management_token: Secret::new(management.0),
        vault_token: vault.map(|vault| Secret::new(vault.0)),
        graph_token: graph.map(|graph| Secret::new(graph.0)),
    })
}

/// Reads the sign-in form, multipart (with the certificate file) or urlencoded.
fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<Credentials, String> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let mut credentials = Credentials::default();
    let mut set = |name: &str, value: Vec<u8>| -> Result<(), String> {
        let text = || String::from_utf8_lossy(&value).trim().to_owned();
        match name {
            "csrf" => credentials.csrf = text(),
            "next" => credentials.next = text(),
            "tenant" => credentials.tenant = text(),
            "client_id" => credentials.client_id = text(),
            "client_secret" if !value.is_empty() => {
                credentials.secret = Some(Secret::new(String::from_utf8_lossy(&value).into_owned()))
            }
            "certificate" if !value.is_empty() => {
                if value.len() > CERTIFICATE_BYTES_MAX {
                    return Err("The certificate file is too large.".to_owned());
                }
                credentials.certificate = Some(Secret::new(value));
            }
            _ => {}
        }
        Ok(())
    };
    if let Some(boundary) = multipart::boundary(content_type) {
        let parts = multipart::parse(body, &boundary).ok_or("The form could not be read.")?;
        for part in parts {
            set(&part.name, part.body)?;
        }
    } else {
        for (name, value) in form_urlencoded::parse(body) {
            set(&name, value.into_owned().into_bytes())?;
        }
    }
    Ok(credentials)
}

/// Where to go after sign-in: a console path only, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if (next == html::BASE || next.starts_with(&format!("{}/", html::BASE)))
                && !next.contains("//")
                && !next.contains('\\') =>
        {
            next.to_owned()
        }
        _ => link("/", &[]),
    }
}

fn form_page(
    app: &App,
    status: StatusCode,
    next: &str,
    tenant: &str,
    client_id: &str,
    message: Option<&str>,
    error: Option<&str>,
) -> Response {
    let token = session::random_token();
    let body = sign_in_form(&token, next, tenant, client_id, message, error, &app.tenant_id);
    let mut response = (status, html::bare_page("Sign in", body)).into_response_html();
    if let Ok(value) =
        HeaderValue::from_str(&session::cookie(SIGNIN_COOKIE, &token, SIGNIN_FORM_SECS))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn sign_in_form(
    token: &str,
    next: &str,
    tenant: &str,
    client_id: &str,
    message: Option<&str>,
    error: Option<&str>,
    home_tenant: &str,
) -> Markup {
    html! {
        (html::notice(message))
        @if let Some(error) = error { (html::error_text(error)) }
        p.muted {
            "Sign in as a service principal. After a first start, the admin's client id and "
            "secret are in " code { "admin.json" } " in the data directory."
        }
        form.stack.card method="post" action=(link("/signin", &[])) enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="next" value=(next);
            div.field {
                label for="tenant" { "Tenant" }
                input #tenant type="text" name="tenant" value=(tenant) autocomplete="off" spellcheck="false";
                @if tenant != home_tenant { span.hint { "This deployment's tenant is " code { (home_tenant) } } }
            }
            div.field {
                label for="client_id" { "Client id (application id)" }
                input #client_id type="text" name="client_id" value=(client_id) required autocomplete="username" spellcheck="false" autofocus;
            }
            div.field {
                label for="client_secret" { "Client secret" }
                input #client_secret type="password" name="client_secret" autocomplete="current-password";
            }
            div.field {
                label for="certificate" { "or a certificate file " span.hint { "(PEM with the certificate and its private key)" } }
                input #certificate type="file" name="certificate" accept=".pem,.crt,.key,application/x-pem-file";
            }
            div { button type="submit" { "Sign in" } }
        }
        p.small.muted {
            "The secret or key is used once to get tokens and is not kept. The session lasts as long "
            "as its tokens (at most an hour)."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/console/resources?x=1")), "/console/resources?x=1");
        assert_eq!(safe_next(Some("/console")), "/console");
        assert_eq!(safe_next(Some("https://evil.example/")), "/console/");
        assert_eq!(safe_next(Some("/console//evil.example")), "/console/");
        assert_eq!(safe_next(Some("/consoleevil")), "/console/");
        assert_eq!(safe_next(Some("/subscriptions")), "/console/");
        assert_eq!(safe_next(None), "/console/");
    }

    #[test]
    fn the_form_reads_urlencoded_and_multipart_bodies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let form = read_form(&headers, b"csrf=t&client_id=+abc+&client_secret=s%20x&certificate=")
            .unwrap();
        assert_eq!(form.client_id, "abc");
        assert_eq!(form.secret.as_ref().map(|s| s.expose().as_str()), Some("s x"));
        assert!(form.certificate.is_none());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=B"),
        );
        let body = b"--B\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\nid\r\n--B\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"a.pem\"\r\n\r\nPEM\r\n--B--\r\n";
        let form = read_form(&headers, body).unwrap();
        assert_eq!(form.client_id, "id");
        assert_eq!(form.certificate.as_ref().map(|c| c.expose().as_slice()), Some(&b"PEM"[..]));
    }
}
