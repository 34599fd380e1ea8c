//! What the agent remembers between starts, beside its credentials in the data directory:
//!
//! - `servers.json`: the servers of the deployment, so `ambient agent` needs `--server` only on
//!   its first start (later `--server` flags replace the list);
//! - `endpoints.json`: the port of each resource's listener (and of the shared IMDS listener
//!   when it was asked for port 0), so workloads started before a restart keep their
//!   `IDENTITY_ENDPOINT`.
//!
//! Both are written atomically. A missing or unreadable file means "nothing remembered".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Error, files};

const SERVERS_FILE: &str = "servers.json";
const ENDPOINTS_FILE: &str = "endpoints.json";
/// The key of the shared IMDS listener in `endpoints.json` (resource keys start with `/`).
pub(crate) const SHARED_IMDS_KEY: &str = "imds";

/// The server list to use: `configured` (saved for later starts) when given, else the saved
/// one. Every URL must be `https://`.
pub(crate) fn servers(dir: &Path, configured: &[String]) -> Result<Vec<String>, Error> {
    let path = dir.join(SERVERS_FILE);
    if configured.is_empty() {
        let saved: Vec<String> = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        return if saved.is_empty() { Err(Error::NoServer) } else { Ok(saved) };
    }
    let mut servers = Vec::with_capacity(configured.len());
    for url in configured {
        let url = url.trim().trim_end_matches('/').to_owned();
        if !url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
            return Err(Error::InvalidServerUrl);
        }
        if !servers.contains(&url) {
            servers.push(url);
        }
    }
    let json = serde_json::to_vec_pretty(&servers).expect("a list of strings serializes");
    files::write_atomically(&path, &json, files::PUBLIC_FILE_MODE)
        .map_err(|source| Error::DataDir { path: path.clone(), source })?;
    Ok(servers)
}

/// Listener ports by resource key (and [`SHARED_IMDS_KEY`]).
pub(crate) struct Ports {
    path: PathBuf,
    ports: BTreeMap<String, u16>,
}

impl Ports {
    pub(crate) fn load(dir: &Path) -> Ports {
        let path = dir.join(ENDPOINTS_FILE);
        let ports = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Ports { path, ports }
    }

    pub(crate) fn get(&self, key: &str) -> Option<u16> {
        self.ports.get(key).copied()
    }

    /// Replaces the remembered ports with `ports` and saves them when they changed. A failed
    /// save is logged: the listeners work, only the next start may pick other ports.
    pub(crate) fn save(&mut self, ports: BTreeMap<String, u16>) {
        if ports == self.ports {
            return;
        }
        self.ports = ports;
        let json = serde_json::to_vec_pretty(&self.ports).expect("a map of ports serializes");
        if let Err(error) = files::write_atomically(&self.path, &json, files::PUBLIC_FILE_MODE) {
            tracing::warn!(path = %self.path.display(), %error, "could not save the endpoint ports");
        }
    }

    /// The remembered ports.
    pub(crate) fn all(&self) -> &BTreeMap<String, u16> {
        &self.ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("agent-remembered-{label}-{}", crypto::random::random_token(6)));
        files::ensure_private_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn servers_given_once_are_remembered() {
        let dir = temp_dir("servers");
        assert!(matches!(servers(&dir, &[]), Err(Error::NoServer)));
        let given = ["https://a:1/".to_owned(), "https://b:2".to_owned(), "https://a:1".to_owned()];
        assert_eq!(servers(&dir, &given).unwrap(), ["https://a:1", "https://b:2"]);
        assert_eq!(servers(&dir, &[]).unwrap(), ["https://a:1", "https://b:2"]);
        assert!(matches!(servers(&dir, &["http://a".to_owned()]), Err(Error::InvalidServerUrl)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn ports_survive_a_reload() {
        let dir = temp_dir("ports");
        let mut ports = Ports::load(&dir);
        assert_eq!(ports.get("/subscriptions/s/vm"), None);
        ports.save(BTreeMap::from([("/subscriptions/s/vm".to_owned(), 40123)]));
        assert_eq!(Ports::load(&dir).get("/subscriptions/s/vm"), Some(40123));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
