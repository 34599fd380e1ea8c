//! The CLI profile under the data directory: reading it, writing it at `ambient login`, and
//! turning its credential reference into a live credential and client.

use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use api_types::profile::{Profile, ProfileCredential};

use crate::token_cache::CachedCredential;

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

/// Writes `profile.json` (mode 0600) in `home`, creating `home` (mode 0700) if needed.
pub fn save(home: &Path, profile: &Profile) -> Result<()> {
    create_private_dir(home)?;
    write_private(&home.join("profile.json"), &serde_json::to_vec_pretty(profile)?)
}

pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restrict {}", dir.display()))
}

/// Writes a file only its owner may read (mode 0600).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("write {}", temporary.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path).with_context(|| format!("write {}", path.display()))
}

/// The profile as `az account show` prints an account.
pub fn account_view(profile: &Profile) -> serde_json::Value {
    let app_id = match &profile.credential {
        ProfileCredential::Secret { app_id, .. }
        | ProfileCredential::Certificate { app_id, .. } => app_id,
    };
    serde_json::json!({
        "environmentName": "Ambient",
        "homeTenantId": profile.tenant,
        "id": profile.subscription,
        "isDefault": true,
        "name": "Ambient Subscription",
        "state": "Enabled",
        "tenantId": profile.tenant,
        "user": {"name": app_id, "type": "servicePrincipal"},
        "server": profile.server,
    })
}

/// Reads a secret file: JSON with a `password` field (as `admin.json`), or the bare secret.
fn read_secret(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read secret file {}", path.display()))?;
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(serde_json::Value::String(password)) = map.get("password")
    {
        return Ok(password.clone());
    }
    Ok(text.trim().to_owned())
}

/// The identity library's options for this profile's server and CA.
pub fn client_options(server: &str, ca_bundle: Option<&str>) -> Result<identity::ClientOptions> {
    let mut options =
        identity::ClientOptions { authority_host: server.to_owned(), ..Default::default() };
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path).with_context(|| format!("read CA bundle {path}"))?;
        options.extra_root_certificates_pem.push(pem);
    }
    Ok(options)
}

/// A credential for the principal the profile names.
pub fn credential(profile: &Profile) -> Result<Arc<dyn identity::TokenCredential>> {
    let options = client_options(&profile.server, profile.ca_bundle.as_deref())?;
    match &profile.credential {
        ProfileCredential::Secret { app_id, secret_file } => {
            let secret = read_secret(Path::new(secret_file))?;
            Ok(Arc::new(identity::ClientSecretCredential::new(
                &profile.tenant,
                app_id,
                secret.as_str(),
                options,
            )?))
        }
        ProfileCredential::Certificate { app_id, certificate_file } => {
            let pem = std::fs::read(certificate_file)
                .with_context(|| format!("read certificate {certificate_file}"))?;
            let options = identity::ClientCertificateCredentialOptions {
                client_options: options,
                ..Default::default()
            };
            Ok(Arc::new(identity::ClientCertificateCredential::new(
                &profile.tenant,
                app_id,
                &pem,
                options,
            )?))
        }
    }
}

/// The profile's credential behind the token cache in `home`: commands reuse a token until
/// shortly before it expires instead of signing in every time.
pub fn cached_credential(
    home: &Path,
    profile: &Profile,
) -> Result<Arc<dyn identity::TokenCredential>> {
    let app_id = match &profile.credential {
        ProfileCredential::Secret { app_id, .. }
        | ProfileCredential::Certificate { app_id, .. } => app_id,
    };
    let identity = format!("{} {} {app_id}", profile.server, profile.tenant);
    Ok(Arc::new(CachedCredential::new(credential(profile)?, home, identity)))
}

/// A client of the profile's server, signed in as the profile's principal (tokens cached in
/// `home`, the profile's directory).
pub fn client(home: &Path, profile: &Profile) -> Result<client::Client> {
    let ca = match &profile.ca_bundle {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("read CA bundle {path}"))?),
        None => None,
    };
    Ok(client::Client::new(&profile.server, cached_credential(home, profile)?, ca.as_deref())?)
}

/// Where `ambient login` keeps a secret for `app_id`.
pub fn secret_path(home: &Path, app_id: &str) -> PathBuf {
    home.join("credentials").join(format!("{app_id}.json"))
}

/// Checks a server URL is https, as every Azure client insists.
pub fn check_server(url: &str) -> Result<()> {
    if !url.starts_with("https://") {
        bail!("the server URL must start with https:// (got {url})");
    }
    Ok(())
}
