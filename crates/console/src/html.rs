//! The page shell and the small pieces every page uses: navigation, notices, tables of facts,
//! links with encoded queries, the CSRF field, and times and ids written for people.
//!
//! Pages are plain server-rendered HTML (maud, checked at compile time). They need no script to
//! read; `console.js` only adds conveniences (filtering tables as you type, copy buttons,
//! confirmations). No inline script or style exists, so the Content-Security-Policy can forbid
//! both.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::api::ApiError;
use crate::session::Session;

/// Where the console is mounted.
pub const BASE: &str = "/console";

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Groups,
    Resources,
    Identities,
    Apps,
    Access,
    Roles,
    Vaults,
    Activity,
    SignIns,
    Hosts,
    Inspector,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/", "Overview"),
    (Nav::Groups, "/groups", "Resource groups"),
    (Nav::Resources, "/resources", "All resources"),
    (Nav::Identities, "/identities", "Managed identities"),
    (Nav::Apps, "/apps", "Enterprise applications"),
    (Nav::Access, "/iam", "Access control (IAM)"),
    (Nav::Roles, "/roles", "Role definitions"),
    (Nav::Vaults, "/vaults", "Key vaults"),
    (Nav::Activity, "/activity", "Activity log"),
    (Nav::SignIns, "/signins", "Sign-in logs"),
    (Nav::Hosts, "/hosts", "Hosts"),
    (Nav::Inspector, "/inspector", "Token inspector"),
];

/// A whole page for a signed-in session.
pub fn page(session: &Session, nav: Nav, title: &str, body: Markup) -> Markup {
    shell(
        title,
        html! {
            header.top {
                a.brand href=(link("/", &[])) { "Ambient" span.brand-sub { "console" } }
                div.who {
                    span.who-name title=(format!("Object id {}", session.principal.object_id)) {
                        (session.principal.display_name)
                    }
                    form.inline method="post" action=(link("/signout", &[])) {
                        (csrf_field(session))
                        button.btn.btn-quiet type="submit" { "Sign out" }
                    }
                }
            }
            div.layout {
                nav.side aria-label="Console" {
                    ul {
                        @for (item, path, label) in NAV {
                            li {
                                a href=(link(path, &[])) aria-current=[(*item == nav).then_some("page")] {
                                    (label)
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        },
    )
}

/// A page without navigation (sign-in, errors before a session exists).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    shell(
        title,
        html! {
            header.top {
                a.brand href=(link("/", &[])) { "Ambient" span.brand-sub { "console" } }
            }
            main #main .narrow tabindex="-1" {
                h1 { (title) }
                (body)
            }
        },
    )
}

fn shell(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · Ambient console" }
                link rel="icon" href=(asset("favicon.svg")) type="image/svg+xml";
                link rel="stylesheet" href=(asset("console.css"));
                script src=(asset("console.js")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (content)
            }
        }
    }
}

/// The URL of an embedded asset.
pub fn asset(name: &str) -> String {
    format!("{BASE}/assets/{name}")
}

/// `/console{path}?{query}`, with the query encoded; empty values are left out.
pub fn link(path: &str, query: &[(&str, &str)]) -> String {
    let mut url = format!("{BASE}{path}");
    let pairs: Vec<&(&str, &str)> = query.iter().filter(|(_, value)| !value.is_empty()).collect();
    if !pairs.is_empty() {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            serializer.append_pair(name, value);
        }
        url.push('?');
        url.push_str(&serializer.finish());
    }
    url
}

/// The hidden field every form of a session carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A success notice (after a change) or nothing.
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { (text) }
        }
    }
}

/// Why an API call failed, in words for the person looking at the page.
pub fn api_error(error: &ApiError) -> Markup {
    let (headline, detail) = match error {
        ApiError::Refused { status: 403, code, message } => {
            ("You do not have access to this.", format!("{code}: {message}"))
        }
        ApiError::Refused { status: 404, code, message } => {
            ("It was not found.", format!("{code}: {message}"))
        }
        ApiError::Refused { code, message, status } => {
            ("The server refused the request.", format!("{code} (HTTP {status}): {message}"))
        }
        ApiError::Transport(message) => ("The server could not be reached.", message.clone()),
    };
    html! {
        div.error role="alert" {
            strong { (headline) }
            " "
            span { (detail) }
        }
    }
}

/// An error box with a plain message.
pub fn error_text(text: &str) -> Markup {
    html! { div.error role="alert" { (text) } }
}

/// A list of facts: term, then value.
pub fn facts(rows: &[(&str, Markup)]) -> Markup {
    html! {
        dl.facts {
            @for (term, value) in rows {
                div {
                    dt { (term) }
                    dd { (value) }
                }
            }
        }
    }
}

/// An id in a monospace font with a copy button (the button appears with JavaScript only).
pub fn id_text(id: &str) -> Markup {
    html! {
        span.id {
            code { (id) }
            @if !id.is_empty() {
                button.copy type="button" data-copy=(id) hidden aria-label=(format!("Copy {id}")) { "Copy" }
            }
        }
    }
}

/// A text box that filters the rows of the table with id `table` as you type (JavaScript).
pub fn table_filter(table: &str, label: &str) -> Markup {
    html! {
        div.filter hidden data-filter-for=(table) {
            label for=(format!("{table}-filter")) { (label) }
            input #(format!("{table}-filter")) type="search" autocomplete="off";
        }
    }
}

/// Unix seconds as `2025-01-31 12:00:00 UTC`.
pub fn time_text(secs: i64) -> String {
    let Ok(time) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return secs.to_string();
    };
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time.format(&format).unwrap_or_else(|_| secs.to_string())
}

/// Parses an RFC 3339 time into Unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|time| time.unix_timestamp())
}

/// Unix seconds as RFC 3339 (`2025-01-31T12:00:00Z`), for API filters.
pub fn rfc3339(secs: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|time| time.format(&format).ok())
        .unwrap_or_default()
}

/// An RFC 3339 time from the API, written for people (as given when it does not parse).
pub fn api_time(text: &str) -> String {
    parse_time(text).map_or_else(|| text.to_owned(), time_text)
}

/// A JSON value pretty-printed in a scrollable block.
pub fn json_block(value: &Value) -> Markup {
    html! {
        pre.json tabindex="0" { (serde_json::to_string_pretty(value).unwrap_or_default()) }
    }
}

/// A string field of `value` at a JSON pointer, or "".
pub fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// `&nbsp;`-free em dash for missing values.
pub fn dash() -> Markup {
    html! { span.muted { "—" } }
}

/// A value or a dash when empty.
pub fn or_dash(text: &str) -> Markup {
    if text.is_empty() {
        dash()
    } else {
        html! { (text) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_their_query_and_drop_empty_values() {
        assert_eq!(link("/", &[]), "/console/");
        assert_eq!(
            link("/resource", &[("id", "/subscriptions/s/resourceGroups/a b"), ("tab", "")]),
            "/console/resource?id=%2Fsubscriptions%2Fs%2FresourceGroups%2Fa+b"
        );
    }

    #[test]
    fn times_read_both_ways() {
        assert_eq!(time_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(rfc3339(86_400), "1970-01-02T00:00:00Z");
        assert_eq!(parse_time("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(api_time("not a time"), "not a time");
    }
}
