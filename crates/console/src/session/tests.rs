//! Tests of session cookies (sealing, expiry, sign-out, the vault cookie's binding) and of the
//! CSRF rules for forms.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::Secret;
use expect_test::expect;

use crate::session::{
    CsrfError, GRAPH_COOKIE, Principal, SESSION_COOKIE, Session, SessionError, Sessions,
    VAULT_COOKIE, check_form, cookie_value,
};

const NOW: i64 = 1_700_000_000;

fn sessions() -> Sessions {
    Sessions::new(&Secret::new([7u8; 32]))
}

fn session(id: &str, vault: bool) -> Session {
    Session {
        id: id.to_owned(),
        csrf: "csrf-token".to_owned(),
        expires: NOW + 600,
        tenant: "t".to_owned(),
        subscription: Some("s".to_owned()),
        principal: Principal {
            object_id: "oid".to_owned(),
            app_id: "app".to_owned(),
            display_name: "Admin".to_owned(),
        },
        // Realistic sizes: Entra-shaped RS256 tokens are about 1.2 to 1.6 KB.
        management_token: Secret::new(format!("mgmt.{}", "m".repeat(1500))),
        vault_token: vault.then(|| Secret::new(format!("vault.{}", "v".repeat(1500)))),
        graph_token: vault.then(|| Secret::new(format!("graph.{}", "g".repeat(1500)))),
    }
}

/// The request headers a browser would send back after `Set-Cookie: values`.
fn request_with(cookies: &[String]) -> HeaderMap {
    let pairs: Vec<&str> = cookies.iter().map(|cookie| cookie.split(';').next().unwrap()).collect();
    let mut headers = HeaderMap::new();
    headers.insert("cookie", HeaderValue::from_str(&pairs.join("; ")).unwrap());
    headers
}

#[test]
fn a_session_survives_the_round_trip_through_its_cookies() {
    let sessions = sessions();
    let cookies = sessions.set_cookies(&session("a", true), NOW);
    assert_eq!(cookies.len(), 3);
    let opened = sessions.open(&request_with(&cookies), NOW).unwrap();
    assert_eq!(opened.principal.display_name, "Admin");
    assert_eq!(opened.management_token.expose(), session("a", true).management_token.expose());
    assert_eq!(
        opened.vault_token.as_ref().map(|token| token.expose().clone()),
        session("a", true).vault_token.map(Secret::into_inner)
    );
    assert_eq!(
        opened.graph_token.as_ref().map(|token| token.expose().clone()),
        session("a", true).graph_token.map(Secret::into_inner)
    );
}

#[test]
fn cookies_are_host_only_secure_http_only_and_strict_and_fit_a_browser() {
    let cookies = sessions().set_cookies(&session("a", true), NOW);
    let attributes: Vec<String> = cookies
        .iter()
        .map(|cookie| {
            let (pair, attributes) = cookie.split_once(';').unwrap();
            assert!(pair.len() < 4000, "cookie of {} bytes", pair.len());
            format!("{}={{sealed}};{attributes}", pair.split('=').next().unwrap())
        })
        .collect();
    expect![[r#"
        [
            "__Host-ambient-session={sealed}; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Strict",
            "__Host-ambient-vault={sealed}; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Strict",
            "__Host-ambient-graph={sealed}; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Strict",
        ]
    "#]]
    .assert_debug_eq(&attributes);
    assert!(!cookies[0].contains("mmmm"), "the token must not be readable in the cookie");
}

#[test]
fn sessions_end_at_their_expiry_and_at_sign_out() {
    let sessions = sessions();
    let cookies = sessions.set_cookies(&session("a", false), NOW);
    let headers = request_with(&cookies);
    assert_eq!(sessions.open(&headers, NOW + 600).err(), Some(SessionError::Expired));
    let opened = sessions.open(&headers, NOW).unwrap();
    sessions.sign_out(&opened, NOW);
    assert_eq!(sessions.open(&headers, NOW).err(), Some(SessionError::SignedOut));
    let other = sessions.set_cookies(&session("b", false), NOW);
    assert!(sessions.open(&request_with(&other), NOW).is_ok());
}

#[test]
fn altered_or_foreign_cookies_do_not_open() {
    let sessions = sessions();
    assert_eq!(sessions.open(&HeaderMap::new(), NOW).err(), Some(SessionError::Missing));
    let mut cookies = sessions.set_cookies(&session("a", false), NOW);
    let (name, rest) = cookies[0].split_once('=').unwrap();
    let (value, attributes) = rest.split_once(';').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(value).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    cookies[0] = format!("{name}={};{attributes}", URL_SAFE_NO_PAD.encode(bytes));
    assert_eq!(sessions.open(&request_with(&cookies), NOW).err(), Some(SessionError::Invalid));
    let other_key = Sessions::new(&Secret::new([8u8; 32]));
    let cookies = other_key.set_cookies(&session("a", false), NOW);
    assert_eq!(sessions.open(&request_with(&cookies), NOW).err(), Some(SessionError::Invalid));
}

#[test]
fn a_vault_cookie_works_only_with_its_own_session() {
    let sessions = sessions();
    let mine = sessions.set_cookies(&session("a", false), NOW);
    let theirs = sessions.set_cookies(&session("b", true), NOW);
    for name in [VAULT_COOKIE, GRAPH_COOKIE] {
        let stolen = theirs.iter().find(|cookie| cookie.starts_with(name)).unwrap().clone();
        let opened = sessions.open(&request_with(&[mine[0].clone(), stolen]), NOW).unwrap();
        assert!(opened.vault_token.is_none());
        assert!(opened.graph_token.is_none());
    }
}

#[test]
fn cookie_values_are_found_among_others() {
    let mut headers = HeaderMap::new();
    headers.append("cookie", HeaderValue::from_static("a=1; __Host-ambient-session=xyz"));
    headers.append("cookie", HeaderValue::from_static("b=2"));
    assert_eq!(cookie_value(&headers, SESSION_COOKIE).as_deref(), Some("xyz"));
    assert_eq!(cookie_value(&headers, "b").as_deref(), Some("2"));
    assert_eq!(cookie_value(&headers, "c"), None);
}

#[track_caller]
fn check_csrf(headers: &[(&'static str, &str)], sent: Option<&str>) -> Result<(), CsrfError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    check_form(&map, "https://ambient.example:8443", "expected", sent)
}

#[test]
fn forms_need_the_session_token_and_this_origin() {
    let same = [("sec-fetch-site", "same-origin"), ("origin", "https://ambient.example:8443")];
    assert_eq!(check_csrf(&same, Some("expected")), Ok(()));
    assert_eq!(check_csrf(&same, Some("expecteD")), Err(CsrfError::BadToken));
    assert_eq!(check_csrf(&same, None), Err(CsrfError::BadToken));
    assert_eq!(check_csrf(&[], Some("expected")), Ok(()), "old browsers send no metadata");
    assert_eq!(
        check_csrf(&[("sec-fetch-site", "cross-site")], Some("expected")),
        Err(CsrfError::CrossSite)
    );
    assert_eq!(
        check_csrf(&[("sec-fetch-site", "same-site")], Some("expected")),
        Err(CsrfError::CrossSite),
        "a vault host name is same-site, not same-origin"
    );
    assert_eq!(
        check_csrf(&[("origin", "https://evil.example")], Some("expected")),
        Err(CsrfError::CrossSite)
    );
    assert_eq!(
        check_csrf(
            &[("origin", "https://localhost:8443"), ("host", "localhost:8443")],
            Some("expected")
        ),
        Ok(()),
        "the origin the browser used, behind a proxy or not"
    );
}

#[test]
fn an_empty_expected_token_matches_nothing() {
    let map = HeaderMap::new();
    assert_eq!(check_form(&map, "https://a", "", Some("")), Err(CsrfError::BadToken));
}
