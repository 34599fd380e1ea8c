//! Server configuration: built-in defaults, then an optional TOML file, then flags and
//! `AMBIENT_*` variables (the binary's parser merges those two), each overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

/// Settings as they arrive from a source: every field optional, so sources can be layered.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub dns_suffix: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub public_host: Option<String>,
    pub host_certificate_lifetime: Option<i64>,
}

impl Settings {
    /// Fields set in `over` replace those in `self`.
    pub fn overlay(self, over: Settings) -> Settings {
        Settings {
            data_dir: over.data_dir.or(self.data_dir),
            listen: over.listen.or(self.listen),
            database_url: over.database_url.or(self.database_url),
            dns_suffix: over.dns_suffix.or(self.dns_suffix),
            master_key_file: over.master_key_file.or(self.master_key_file),
            public_host: over.public_host.or(self.public_host),
            host_certificate_lifetime: over
                .host_certificate_lifetime
                .or(self.host_certificate_lifetime),
        }
    }

    /// Reads a TOML file of settings (keys as the long flags: `listen`, `database-url`, ...).
    pub fn from_toml_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError(format!("read config file {}: {error}", path.display()))
        })?;
        toml::from_str(&text).map_err(|error| {
            ConfigError(format!("config file {}: {}", path.display(), error.message()))
        })
    }
}

/// Which process shape is starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `ambient dev`: a laptop or CI deployment that writes `env.sh` and runs a local agent.
    Dev,
    /// `ambient server`: the long-running form.
    Server,
}

/// A complete, checked configuration.
#[derive(Clone)]
pub struct ServerConfig {
    pub mode: Mode,
    /// Absolute path of the data directory (keys, certificates, SQLite database, CLI profile).
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// Vaults are served at `{name}.vault.{dns_suffix}`.
    pub dns_suffix: String,
    /// The host name clients use to reach the server (`localhost` by default).
    pub public_host: String,
    /// Where the master key lives; `AMBIENT_MASTER_KEY` (base64) takes precedence when set.
    pub master_key_file: PathBuf,
    pub master_key_base64: Option<domain::Secret<String>>,
    /// Lifetime of the client certificates issued to agents (they renew at half-life).
    pub host_certificate_lifetime_secs: i64,
    pub clock: Arc<dyn domain::Clock>,
    /// The web console, served at `/console` on the same listener when set (the `ambient`
    /// binary sets it; this crate does not depend on the console).
    pub console: Option<crate::RouterFactory>,
}

/// A configuration problem, said in one line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_DNS_SUFFIX: &str = "localhost";
pub const DEFAULT_HOST_CERTIFICATE_LIFETIME_SECS: i64 = 24 * 3600;

impl ServerConfig {
    /// Resolves layered settings into a configuration. `cwd` anchors relative paths.
    pub fn resolve(
        mode: Mode,
        settings: Settings,
        master_key_base64: Option<String>,
        cwd: &Path,
    ) -> Result<ServerConfig, ConfigError> {
        let data_dir =
            absolute(cwd, &settings.data_dir.unwrap_or_else(|| PathBuf::from(".ambient")));
        let listen_text = settings.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            ConfigError(format!("--listen {listen_text:?} is not an address like 127.0.0.1:8443"))
        })?;
        let database_url = match settings.database_url {
            Some(url) if url.starts_with("sqlite:") || url.starts_with("postgres") => url,
            Some(path) => format!("sqlite://{}", absolute(cwd, Path::new(&path)).display()),
            None => format!("sqlite://{}", data_dir.join("ambient.db").display()),
        };
        let dns_suffix = settings.dns_suffix.unwrap_or_else(|| DEFAULT_DNS_SUFFIX.to_owned());
        if dns_suffix.is_empty() || dns_suffix.starts_with('.') || dns_suffix.contains('/') {
            return Err(ConfigError(format!(
                "--dns-suffix {dns_suffix:?} is not a DNS suffix like localhost"
            )));
        }
        let master_key_file = settings
            .master_key_file
            .map(|path| absolute(cwd, &path))
            .unwrap_or_else(|| data_dir.join("master.key"));
        let host_certificate_lifetime_secs = match settings.host_certificate_lifetime {
            Some(secs) if (60..=30 * 86_400).contains(&secs) => secs,
            Some(secs) => {
                return Err(ConfigError(format!(
                    "--host-certificate-lifetime {secs} must be between 60 and 2592000 seconds"
                )));
            }
            None => DEFAULT_HOST_CERTIFICATE_LIFETIME_SECS,
        };
        Ok(ServerConfig {
            mode,
            host_certificate_lifetime_secs,
            data_dir,
            listen,
            database_url,
            dns_suffix,
            public_host: settings.public_host.unwrap_or_else(|| "localhost".to_owned()),
            master_key_file,
            master_key_base64: master_key_base64
                .filter(|key| !key.is_empty())
                .map(domain::Secret::new),
            clock: Arc::new(domain::SystemClock),
            console: None,
        })
    }
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_owned() } else { cwd.join(path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file = Settings {
            listen: Some("127.0.0.1:9000".into()),
            dns_suffix: Some("corp".into()),
            ..Settings::default()
        };
        let flags = Settings { listen: Some("127.0.0.1:0".into()), ..Settings::default() };
        let config =
            ServerConfig::resolve(Mode::Server, file.overlay(flags), None, Path::new("/w"))
                .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.dns_suffix, "corp");
        assert_eq!(config.data_dir, Path::new("/w/.ambient"));
        assert_eq!(config.database_url, "sqlite:///w/.ambient/ambient.db");
        assert_eq!(config.master_key_file, Path::new("/w/.ambient/master.key"));
    }

    #[test]
    fn a_bad_listen_address_is_one_clear_line() {
        let settings = Settings { listen: Some("localhost".into()), ..Settings::default() };
        let error = ServerConfig::resolve(Mode::Dev, settings, None, Path::new("/")).err().unwrap();
        assert_eq!(
            error.to_string(),
            r#"--listen "localhost" is not an address like 127.0.0.1:8443"#
        );
    }

    #[test]
    fn a_plain_database_path_means_sqlite() {
        let settings = Settings { database_url: Some("db/a.db".into()), ..Settings::default() };
        let config =
            ServerConfig::resolve(Mode::Server, settings, None, Path::new("/srv")).unwrap();
        assert_eq!(config.database_url, "sqlite:///srv/db/a.db");
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let error = toml::from_str::<Settings>("lisen = \"x\"").err().unwrap();
        assert!(error.message().contains("unknown field `lisen`"), "{}", error.message());
    }
}
