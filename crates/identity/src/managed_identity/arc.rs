//! Azure Arc's challenge (02-hosted-endpoints.md §4): the first token request is answered `401`
//! with `WWW-Authenticate: Basic realm=<path>`, where `<path>` names a key file the agent has just
//! written; the client reads it and repeats the request with `Authorization: Basic <contents>`.
//! Reading the file proves the caller may read the agent's token directory (root or the
//! `himds` group on Linux).
//!
//! A client must not read whatever file an endpoint names, so the path is checked first. The
//! checks combine the SDKs' rules, taking the strictest of each; for the path an honest agent
//! sends, every SDK and this module read the same file:
//!
//! - the path is absolute and its directory is exactly the key directory: on Linux
//!   `/var/opt/azcmagent/tokens` (azure-identity's `_validate_key_file`, MSAL Node, the Rust
//!   `azure_identity` crate), on Windows `%ProgramData%\AzureConnectedMachineAgent\Tokens`
//!   (which this crate does not choose by itself: set
//!   [`ManagedIdentityCredentialOptions::arc_key_directory`](crate::ManagedIdentityCredentialOptions::arc_key_directory));
//! - the file name ends in `.key` (MSAL Python instead keeps only the base name, swaps its
//!   extension for `.key` and looks in the key directory);
//! - with symbolic links resolved, the file is still directly inside the key directory (the
//!   Rust crate canonicalizes both) and is a regular file;
//! - it holds at most 4096 bytes (every SDK); the size is checked on the opened file and the
//!   read is bounded, so a file that grows in between is refused too.
//!
//! The contents are sent as they are, not trimmed and not base64-encoded, as every SDK does.

use std::path::{Path, PathBuf};

use reqwest::header::HeaderValue;
use tokio::io::AsyncReadExt;

use crate::managed_identity::ManagedIdentityId;
use crate::secret::Secret;
use crate::{Error, Result};

/// The Linux agent's key directory.
pub(crate) const DEFAULT_KEY_DIRECTORY: &str = "/var/opt/azcmagent/tokens";

/// The largest key file the SDKs read.
pub(crate) const KEY_FILE_BYTES_MAX: u64 = 4096;

/// The Linux agent's executable: when it exists, MSAL and the Rust `azure_identity` crate use
/// Azure Arc even without `IDENTITY_ENDPOINT` and `IMDS_ENDPOINT`.
pub(crate) const AGENT_EXECUTABLE: &str = "/opt/azcmagent/bin/himds";

/// The agent's endpoint when it is found by [`AGENT_EXECUTABLE`] rather than by variables.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://localhost:40342/metadata/identity/oauth2/token";

/// The path named by a `Basic realm=<path>` challenge. Like MSAL Python, the scheme and
/// parameter name (`Basic realm`) are matched without regard to case and the path is everything
/// after the first `=`.
pub(crate) fn realm_path(challenge: &str) -> Result<&str> {
    match challenge.split_once('=') {
        Some((scheme, path))
            if scheme.trim().eq_ignore_ascii_case("basic realm") && !path.trim().is_empty() =>
        {
            Ok(path.trim())
        }
        _ => Err(Error::Http(format!(
            "the Azure Arc endpoint answered 401 with WWW-Authenticate {challenge:?}, not Basic realm=<key file>"
        ))),
    }
}

/// Reads the key file `realm` names, after checking it is a `.key` file of at most
/// [`KEY_FILE_BYTES_MAX`] bytes directly inside `directory`.
///
/// A path that breaks a rule is [`Error::Http`] (the endpoint's answer is unacceptable); a file
/// that cannot be read (typically: this user is not in the agent's group) is
/// [`Error::InvalidConfig`].
pub(crate) async fn read_key_file(realm: &str, directory: &Path) -> Result<Secret> {
    let refused = |why: &str| {
        Error::Http(format!("the Azure Arc challenge names key file {realm:?}, which {why}"))
    };
    let path = Path::new(realm);
    if !path.is_absolute() || path.parent() != Some(directory) {
        return Err(refused(&format!("is not in {}", directory.display())));
    }
    let has_key_extension = path
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.len() > ".key".len() && name.ends_with(".key"));
    if !has_key_extension || !realm.ends_with(".key") {
        return Err(refused("does not have the .key extension"));
    }

    let unreadable = |target: &Path, error: &dyn std::fmt::Display| {
        Error::InvalidConfig(format!("read Azure Arc key file {}: {error}", target.display()))
    };
    let canonical_directory =
        tokio::fs::canonicalize(directory).await.map_err(|error| unreadable(directory, &error))?;
    let canonical: PathBuf = match tokio::fs::canonicalize(path).await {
        Ok(canonical) => canonical,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(refused("does not exist"));
        }
        Err(error) => return Err(unreadable(path, &error)),
    };
    if canonical.parent() != Some(canonical_directory.as_path()) {
        return Err(refused(&format!(
            "resolves to {}, outside {}",
            canonical.display(),
            directory.display()
        )));
    }

    let file = tokio::fs::File::open(&canonical).await.map_err(|error| unreadable(path, &error))?;
    let metadata = file.metadata().await.map_err(|error| unreadable(path, &error))?;
    if !metadata.is_file() {
        return Err(refused("is not a regular file"));
    }
    let too_large = || refused(&format!("is larger than {KEY_FILE_BYTES_MAX} bytes"));
    if metadata.len() > KEY_FILE_BYTES_MAX {
        return Err(too_large());
    }
    let mut contents = Vec::new();
    file.take(KEY_FILE_BYTES_MAX + 1)
        .read_to_end(&mut contents)
        .await
        .map_err(|error| unreadable(path, &error))?;
    if contents.len() as u64 > KEY_FILE_BYTES_MAX {
        return Err(too_large());
    }
    let text =
        String::from_utf8(contents).map_err(|_| unreadable(path, &"the key is not UTF-8 text"))?;
    Ok(Secret::new(text))
}

/// `Basic <key>`, marked sensitive so that it never reaches logs.
pub(crate) fn authorization(key: &Secret) -> Result<HeaderValue> {
    let mut value = HeaderValue::try_from(format!("Basic {}", key.expose())).map_err(|_| {
        Error::Http(
            "the Azure Arc key file holds characters an HTTP header cannot carry".to_owned(),
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Fails closed when a user-assigned identity was asked for and the token response does not
/// name it, as azure-identity 1.27, MSAL Python and MSAL Node do: an agent that does not know
/// user-assigned identities ignores the selector and answers with the system identity's token.
/// The echo is `client_id`, `object_id` or `msi_res_id` (`mi_res_id` accepted too), compared
/// without regard to case.
pub(crate) fn check_identity_echo(id: &ManagedIdentityId, body: &[u8]) -> Result<()> {
    let (requested, fields): (&str, &[&str]) = match id {
        ManagedIdentityId::System => return Ok(()),
        ManagedIdentityId::ClientId(requested) => (requested, &["client_id"]),
        ManagedIdentityId::ObjectId(requested) => (requested, &["object_id"]),
        ManagedIdentityId::ResourceId(requested) => (requested, &["msi_res_id", "mi_res_id"]),
    };
    let echoed = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|value| {
        fields
            .iter()
            .find_map(|field| {
                value.get(field).and_then(serde_json::Value::as_str).filter(|echo| !echo.is_empty())
            })
            .map(str::to_owned)
    });
    match echoed {
        Some(echoed) if echoed.eq_ignore_ascii_case(requested) => Ok(()),
        _ => Err(Error::Http(
            "the Azure Arc agent did not confirm the requested user-assigned identity in its token response: it likely does not support user-assigned identities and returned the system-assigned identity's token".to_owned(),
        )),
    }
}
