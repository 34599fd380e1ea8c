//! Reading the CLI profile from the data directory.

use std::path::Path;

use anyhow::{Context, Result};
use api_types::profile::{Profile, ProfileCredential};

/// Loads `profile.json` from `home`, saying what to do when there is none.
pub fn load(home: &Path) -> Result<Profile> {
    let path = home.join("profile.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no profile at {}: start `ambient dev`, or run `ambient login`, or set AMBIENT_HOME",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("profile {} is not valid", path.display()))
}

/// The profile as `az account show` would print an account.
pub fn account_view(profile: &Profile) -> serde_json::Value {
    let (kind, app_id) = match &profile.credential {
        ProfileCredential::Secret { app_id, .. } => ("servicePrincipal", app_id),
        ProfileCredential::Certificate { app_id, .. } => ("servicePrincipal", app_id),
    };
    serde_json::json!({
        "environmentName": "Ambient",
        "homeTenantId": profile.tenant,
        "id": profile.subscription,
        "isDefault": true,
        "name": "Ambient Subscription",
        "state": "Enabled",
        "tenantId": profile.tenant,
        "user": {"name": app_id, "type": kind},
        "server": profile.server,
    })
}
