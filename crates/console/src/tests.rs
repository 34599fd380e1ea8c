//! Tests of the console's router without a server behind it: security headers, the way to the
//! sign-in page, the sign-in form's double-submitted token, CSRF refusals before any API call,
//! sign-out, and pages free of inline script and style (the CSP forbids them).
//!
//! The API address is a closed port, so a handler that got past its checks and called the API
//! would answer 502, never 403 or 303.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use domain::Secret;
use tower::ServiceExt as _;

use crate::session::{Principal, Session};
use crate::web::{App, routes};

const NOW: i64 = 1_700_000_000;

fn app() -> App {
    let config = crate::ConsoleConfig {
        public_url: "https://localhost:8443".to_owned(),
        local_addr: "127.0.0.1:9".parse().unwrap(),
        ca_pem: String::new(),
        tenant_id: "tenant-1".to_owned(),
        dns_suffix: "localhost".to_owned(),
        key: Secret::new([3u8; 32]),
    };
    App::new(config, std::sync::Arc::new(domain::FakeClock::new(domain::UnixTime::from_secs(NOW))))
}

fn session() -> Session {
    Session {
        id: "session-1".to_owned(),
        csrf: "form-token".to_owned(),
        expires: NOW + 600,
        tenant: "tenant-1".to_owned(),
        subscription: Some("sub-1".to_owned()),
        principal: Principal {
            object_id: "oid".into(),
            app_id: "app".into(),
            display_name: "Admin".into(),
        },
        management_token: Secret::new("not.a.token".to_owned()),
        vault_token: None,
        graph_token: None,
    }
}

/// The `Cookie` header of a browser holding `session`.
fn cookie_header(app: &App, session: &Session) -> String {
    app.sessions
        .set_cookies(session, NOW)
        .iter()
        .map(|cookie| cookie.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

async fn send(app: &App, request: Request<Body>) -> (Response, String) {
    let response = routes(app.clone()).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (Response::from_parts(parts, Body::empty()), String::from_utf8_lossy(&bytes).into_owned())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post(path: &str, cookie: &str, body: &str, site: &str) -> Request<Body> {
    Request::post(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", site)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn header_text<'a>(response: &'a Response, name: &str) -> &'a str {
    response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or_default()
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = app();
    for path in ["/assets/console.css", "/signin", "/no-such-page", "/resources"] {
        let (response, _) = send(&app, get(path)).await;
        assert_eq!(
            header_text(&response, "content-security-policy"),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(header_text(&response, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header_text(&response, "referrer-policy"), "same-origin", "{path}");
        assert_eq!(header_text(&response, "x-content-type-options"), "nosniff", "{path}");
    }
    let (page, _) = send(&app, get("/signin")).await;
    assert_eq!(header_text(&page, "cache-control"), "no-store");
    let (css, body) = send(&app, get("/assets/console.css")).await;
    assert_eq!(header_text(&css, "content-type"), "text/css; charset=utf-8");
    assert!(body.contains("--accent"));
}

#[tokio::test]
async fn pages_send_a_browser_without_a_session_to_sign_in_and_back() {
    let (response, _) = send(&app(), get("/resources?type=vm")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header_text(&response, "location"),
        "/console/signin?next=%2Fconsole%2Fresources%3Ftype%3Dvm"
    );
}

#[tokio::test]
async fn the_sign_in_form_carries_the_token_its_cookie_holds() {
    let (response, body) = send(&app(), get("/signin")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = header_text(&response, "set-cookie");
    assert!(cookie.starts_with("__Host-ambient-signin="), "{cookie}");
    assert!(cookie.ends_with("; Path=/; Secure; HttpOnly; SameSite=Strict"), "{cookie}");
    let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(body.contains(&format!(r#"<input type="hidden" name="csrf" value="{token}">"#)));
    assert!(body.contains(r#"enctype="multipart/form-data""#));
    assert!(body.contains(r#"<label for="client_secret">"#));
}

#[tokio::test]
async fn a_sign_in_form_from_elsewhere_is_refused_before_any_token_request() {
    let request = Request::post("/signin")
        .header(header::COOKIE, "__Host-ambient-signin=abc")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("csrf=other&client_id=x&client_secret=y"))
        .unwrap();
    let (response, body) = send(&app(), request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(body.contains("security token is missing or wrong"), "{body}");
}

#[tokio::test]
async fn forms_without_the_session_token_or_from_another_site_are_refused() {
    let app = app();
    let cookie = cookie_header(&app, &session());
    let (missing, _) = send(&app, post("/groups/create", &cookie, "name=rg", "same-origin")).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let (cross, _) =
        send(&app, post("/groups/create", &cookie, "name=rg&csrf=form-token", "cross-site")).await;
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // With the token the handler goes on to the API, which is not there.
    let (through, _) =
        send(&app, post("/groups/create", &cookie, "name=rg&csrf=form-token", "same-origin")).await;
    assert_eq!(through.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn sign_out_ends_the_session_even_for_a_copied_cookie() {
    let app = app();
    let cookie = cookie_header(&app, &session());
    let (response, _) =
        send(&app, post("/signout", &cookie, "csrf=form-token", "same-origin")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_text(&response, "location"), "/console/signin?reason=signed-out");
    let cleared: Vec<&str> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert!(cleared.iter().all(|cookie| cookie.contains("=; Max-Age=0;")), "{cleared:?}");
    let request =
        Request::get("/inspector").header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
    let (again, _) = send(&app, request).await;
    assert_eq!(
        header_text(&again, "location"),
        "/console/signin?next=%2Fconsole%2Finspector&reason=signed-out"
    );
}

#[tokio::test]
async fn pages_have_no_inline_script_or_style() {
    let app = app();
    let cookie = cookie_header(&app, &session());
    for (path, cookie) in
        [("/inspector", cookie.as_str()), ("/signin", ""), ("/no-such-page", cookie.as_str())]
    {
        let request =
            Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap();
        let (_, body) = send(&app, request).await;
        for forbidden in ["<script>", " style=", "javascript:", " onclick=", " onload="] {
            assert!(!body.contains(forbidden), "{path} has {forbidden}");
        }
        assert!(body.contains(r#"<script src="/console/assets/console.js" defer>"#), "{path}");
    }
}

#[tokio::test]
async fn a_signed_in_page_shows_who_and_offers_sign_out_with_the_token() {
    let app = app();
    let request = Request::get("/inspector")
        .header(header::COOKIE, cookie_header(&app, &session()))
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        body.contains(r#"<span class="who-name" title="Object id oid">Admin</span>"#),
        "{body}"
    );
    assert!(body.contains(r#"<form class="inline" method="post" action="/console/signout"><input type="hidden" name="csrf" value="form-token">"#));
    assert!(
        body.contains(r#"<a href="/console/inspector" aria-current="page">Token inspector</a>"#)
    );
}

#[tokio::test]
async fn the_inspector_decodes_without_the_api() {
    let app = app();
    let cookie = cookie_header(&app, &session());
    let (response, body) =
        send(&app, post("/inspector", &cookie, "csrf=form-token&token=abc", "same-origin")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        body.contains(
            "This is not a JWT: a JWT has three parts separated by dots; this text has 1."
        ),
        "{body}"
    );
}
