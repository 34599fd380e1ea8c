//! The console's pages, one module per area. Each handler reads what it shows from the public
//! API with the session's token and renders it; each form handler checks the form
//! (`Ctx::check_form`), makes one or a few API calls and redirects to the page that shows the
//! result.

pub mod apps;
pub mod hosts;
pub mod iam;
pub mod identities;
pub mod identity;
pub mod inspector;
pub mod logs;
pub mod overview;
pub mod resources;
pub mod signin;
pub mod vault;

use serde::Deserialize;

/// The `?notice=` a page shows after a change: fixed texts only, so a link cannot put words in
/// the console's mouth.
pub fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "Created.",
        "deleted" => "Deleted.",
        "saved" => "Saved.",
        "assigned" => "The role assignment was added.",
        "unassigned" => "The role assignment was removed.",
        "added" => "Added.",
        "removed" => "Removed.",
        "rotated" => "A new signing key was published.",
        "revoked" => "The host was revoked.",
        "secret-set" => "The secret was saved as a new version.",
        _ => return None,
    })
}

/// Queries that only carry a notice.
#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}
