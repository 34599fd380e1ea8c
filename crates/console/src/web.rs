//! The console's plumbing: its state, the routes, the security headers every answer carries,
//! the session extractor (no session: off to the sign-in page), form checks, and the small
//! helpers handlers share to call the API and answer.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::Clock;
use maud::{Markup, html};
use serde_json::Value;

use crate::api::{Api, ApiError};
use crate::html;
use crate::session::{self, Session, SessionError, Sessions};
use crate::{ConsoleConfig, assets, pages};

/// The Content-Security-Policy of every answer: nothing inline, nothing from elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// api-versions sent per provider (the server accepts any; these are Azure's current ones).
pub const API_RESOURCES: &str = "2021-04-01";
pub const API_SUBSCRIPTIONS: &str = "2022-12-01";
pub const API_COMPUTE: &str = "2024-07-01";
pub const API_WEB: &str = "2023-12-01";
pub const API_MANAGED_IDENTITY: &str = "2024-11-30";
pub const API_KEY_VAULT: &str = "2023-07-01";
pub const API_AUTHORIZATION: &str = "2022-04-01";
pub const API_INSIGHTS: &str = "2015-04-01";
/// The Key Vault data plane's api-version.
pub const API_SECRETS: &str = "7.5";

/// Shared by every handler.
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub api: Api,
    pub public_url: String,
    pub tenant_id: String,
    pub dns_suffix: String,
    pub sessions: Sessions,
    pub clock: Arc<dyn Clock>,
}

impl std::ops::Deref for App {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(config: ConsoleConfig, clock: Arc<dyn Clock>) -> App {
        let api = Api::new(&config.public_url, config.local_addr, &config.ca_pem)
            .expect("the server's own CA is valid PEM");
        App(Arc::new(Inner {
            api,
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            tenant_id: config.tenant_id,
            dns_suffix: config.dns_suffix,
            sessions: Sessions::new(&config.key),
            clock,
        }))
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        self.clock.now().secs()
    }
}

pub fn router(config: ConsoleConfig) -> Router {
    routes(App::new(config, Arc::new(domain::SystemClock)))
}

pub fn routes(app: App) -> Router {
    Router::new()
        .route("/", get(pages::overview::show))
        .route("/keys/rotate", post(pages::overview::rotate))
        .route("/signin", get(pages::signin::show).post(pages::signin::submit))
        .route("/signout", post(pages::signin::sign_out))
        .route("/assets/{name}", get(assets::serve))
        .route("/groups", get(pages::resources::groups))
        .route("/groups/create", post(pages::resources::create_group))
        .route("/resources", get(pages::resources::list))
        .route("/resources/create", post(pages::resources::create))
        .route("/resource", get(pages::resources::show))
        .route(
            "/resource/delete",
            get(pages::resources::confirm_delete).post(pages::resources::delete),
        )
        .route("/resource/identity", get(pages::identity::show))
        .route("/resource/identity/system", post(pages::identity::system))
        .route("/resource/identity/user/add", post(pages::identity::add_user))
        .route("/resource/identity/user/remove", post(pages::identity::remove_user))
        .route("/identities", get(pages::identities::list))
        .route("/identities/federated/add", post(pages::identities::add_federated))
        .route("/identities/federated/remove", post(pages::identities::remove_federated))
        .route("/iam", get(pages::iam::show))
        .route("/iam/assign", post(pages::iam::assign))
        .route("/iam/remove", post(pages::iam::remove))
        .route("/iam/check", get(pages::iam::check))
        .route("/roles", get(pages::iam::roles))
        .route("/apps", get(pages::apps::list))
        .route("/vaults", get(pages::vault::list))
        .route("/vault", get(pages::vault::show))
        .route("/vault/secret", get(pages::vault::secret))
        .route("/vault/secret/set", post(pages::vault::set_secret))
        .route("/vault/reveal", post(pages::vault::reveal))
        .route("/activity", get(pages::logs::activity))
        .route("/activity/event", get(pages::logs::activity_event))
        .route("/signins", get(pages::logs::sign_ins))
        .route("/signins/event", get(pages::logs::sign_in_event))
        .route("/hosts", get(pages::hosts::list))
        .route("/hosts/join", post(pages::hosts::join))
        .route("/hosts/revoke", post(pages::hosts::revoke))
        .route("/inspector", get(pages::inspector::show).post(pages::inspector::inspect))
        .fallback(not_found)
        .with_state(app)
        .layer(middleware::from_fn(security_headers))
}

/// Headers on every answer of the console.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set("content-security-policy", CONTENT_SECURITY_POLICY);
    set("x-frame-options", "DENY");
    // Not `no-referrer`: with it browsers send `Origin: null` on form posts, which the CSRF
    // check must then refuse. `same-origin` still sends nothing to other sites.
    set("referrer-policy", "same-origin");
    set("x-content-type-options", "nosniff");
    set("cross-origin-opener-policy", "same-origin");
    set("cross-origin-resource-policy", "same-origin");
    set("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()");
    if !is_asset {
        // Pages show ids, tokens' claims and, after Reveal, secret values: keep them out of
        // every cache.
        set("cache-control", "no-store");
    }
    response
}

async fn not_found(session: Option<Session>) -> Response {
    let body = html! {
        p { "There is no console page here." }
        p { a href=(html::link("/", &[])) { "Go to the overview" } }
    };
    let markup = match session {
        Some(session) => html::page(&session, html::Nav::Overview, "Page not found", body),
        None => html::bare_page("Page not found", body),
    };
    (StatusCode::NOT_FOUND, markup).into_response_html()
}

/// A page as an HTML response.
pub trait IntoHtml {
    fn into_response_html(self) -> Response;
}

impl IntoHtml for Markup {
    fn into_response_html(self) -> Response {
        (StatusCode::OK, self).into_response_html()
    }
}

impl IntoHtml for (StatusCode, Markup) {
    fn into_response_html(self) -> Response {
        (self.0, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], self.1.into_string())
            .into_response()
    }
}

/// `303 See Other` to a console URL (after a form: the browser then GETs it).
pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}

/// Off to the sign-in page, coming back to `next` afterwards. With a `reason` the browser held
/// a session that no longer works, and its cookies are removed.
pub fn to_sign_in(next: &str, reason: Option<&str>) -> Response {
    let mut response = see_other(&html::link(
        "/signin",
        &[("next", next), ("reason", reason.unwrap_or_default())],
    ));
    if reason.is_none() {
        return response;
    }
    for cookie in
        session::clear_cookies().into_iter().filter(|c| !c.starts_with(session::SIGNIN_COOKIE))
    {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

impl FromRequestParts<App> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Session, Response> {
        match app.sessions.open(&parts.headers, app.now()) {
            Ok(session) => Ok(session),
            Err(error) => {
                let next = if parts.method == axum::http::Method::GET {
                    format!(
                        "{}{}",
                        html::BASE,
                        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
                    )
                } else {
                    html::link("/", &[])
                };
                let reason = match error {
                    SessionError::Missing => None,
                    SessionError::Expired => Some("expired"),
                    SessionError::SignedOut | SessionError::Invalid => Some("signed-out"),
                };
                Err(to_sign_in(&next, reason))
            }
        }
    }
}

impl axum::extract::OptionalFromRequestParts<App> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &App,
    ) -> Result<Option<Session>, std::convert::Infallible> {
        Ok(app.sessions.open(&parts.headers, app.now()).ok())
    }
}

/// A urlencoded form body.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The first value of field `name`, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    }

    /// The first value of `name` exactly as sent (not trimmed), or "".
    pub fn raw(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
    }

    /// The first value of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}

/// A request of a signed-in session: the state, the session and the API with its token.
pub struct Ctx {
    pub app: App,
    pub session: Session,
}

impl Ctx {
    pub fn new(app: App, session: Session) -> Ctx {
        Ctx { app, session }
    }

    /// The session's token for the API at `path`: the Graph token for the directory
    /// (`/v1.0/...`), the management token for everything else. A session without a Graph
    /// token offers the management one, which the directory refuses with a clear 401.
    fn token(&self, path: &str) -> &str {
        match &self.session.graph_token {
            Some(graph) if client::scope_for_path(path) == client::GRAPH_SCOPE => graph.expose(),
            _ => self.session.management_token.expose(),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.app.api.get(self.token(path), path).await
    }

    pub async fn list(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        self.app.api.list(self.token(path), path).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.app.api.call(self.token(path), method, path, body).await
    }

    /// A Key Vault data-plane call with the session's vault token.
    pub async fn vault(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let Some(token) = &self.session.vault_token else {
            return Err(ApiError::Refused {
                status: 401,
                code: "NoVaultToken".to_owned(),
                message: "this session has no Key Vault token; sign in again".to_owned(),
            });
        };
        self.app.api.call(token.expose(), method, url, body).await
    }

    /// Checks a form of this session (CSRF token and origin).
    pub fn check_form(&self, headers: &HeaderMap, form: &Form) -> Result<(), Box<Response>> {
        session::check_form(headers, &self.app.public_url, &self.session.csrf, form.get("csrf"))
            .map_err(|error| {
                tracing::info!(principal = %self.session.principal.object_id, %error, "console form refused");
                Box::new(self.error_page(
                    StatusCode::FORBIDDEN,
                    "The form was refused",
                    html::error_text(&error.to_string()),
                ))
            })
    }

    /// A page of this session.
    pub fn page(&self, nav: html::Nav, title: &str, body: Markup) -> Response {
        html::page(&self.session, nav, title, body).into_response_html()
    }

    /// An error page of this session.
    pub fn error_page(&self, status: StatusCode, title: &str, body: Markup) -> Response {
        (status, html::page(&self.session, html::Nav::Overview, title, body)).into_response_html()
    }

    /// The answer to a failed API call: back to sign-in when the token is no longer accepted,
    /// else an error page saying why, with a way back.
    pub fn failed(&self, error: &ApiError, back: &str) -> Response {
        if error.is_unauthenticated()
            && !matches!(error, ApiError::Refused { code, .. } if code == "NoVaultToken")
        {
            return to_sign_in(&html::link("/", &[]), Some("expired"));
        }
        let status = error
            .status()
            .and_then(|status| StatusCode::from_u16(status).ok())
            .filter(|status| status.is_client_error())
            .unwrap_or(StatusCode::BAD_GATEWAY);
        self.error_page(
            status,
            "That did not work",
            html! {
                (html::api_error(error))
                p { a href=(back) { "Go back" } }
            },
        )
    }

    /// `text` checked to be a resource id (a link or form may carry anything).
    pub fn resource_id(&self, text: &str) -> Result<String, Box<Response>> {
        match domain::ResourceId::parse(text.trim()) {
            Ok(id) if !id.is_root() => Ok(id.as_str().to_owned()),
            _ => Err(Box::new(self.error_page(
                StatusCode::BAD_REQUEST,
                "Not a resource",
                html::error_text(&format!("{text:?} is not a resource id.")),
            ))),
        }
    }

    /// The subscription the pages show, as `/subscriptions/{id}`, or an explanation.
    pub fn subscription_scope(&self) -> Result<String, Box<Response>> {
        match &self.session.subscription {
            Some(id) => Ok(format!("/subscriptions/{id}")),
            None => Err(Box::new(self.error_page(
                StatusCode::FORBIDDEN,
                "No subscription",
                html::error_text(
                    "You cannot see any subscription: ask an owner for a role on one.",
                ),
            ))),
        }
    }
}

/// Percent-encodes each segment of an ARM id so it can go into a request path.
pub fn arm_path(id: &str, api_version: &str) -> String {
    let encoded: Vec<String> = id.split('/').map(client::encode).collect();
    format!("{}?api-version={api_version}", encoded.join("/"))
}

/// The api-version to send for a resource id, from its provider.
pub fn api_version_for(id: &str) -> &'static str {
    let lower = id.to_ascii_lowercase();
    if lower.contains("/providers/microsoft.compute/") {
        API_COMPUTE
    } else if lower.contains("/providers/microsoft.web/") {
        API_WEB
    } else if lower.contains("/providers/microsoft.managedidentity/") {
        API_MANAGED_IDENTITY
    } else if lower.contains("/providers/microsoft.keyvault/") {
        API_KEY_VAULT
    } else if lower.contains("/providers/microsoft.authorization/") {
        API_AUTHORIZATION
    } else {
        API_RESOURCES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_paths_encode_segments() {
        assert_eq!(
            arm_path(
                "/subscriptions/s/resourceGroups/r g/providers/Microsoft.Compute/virtualMachines/vm",
                API_COMPUTE
            ),
            "/subscriptions/s/resourceGroups/r%20g/providers/Microsoft.Compute/virtualMachines/vm?api-version=2024-07-01"
        );
        assert_eq!(
            api_version_for("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/a"),
            API_WEB
        );
    }
}
