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
    pub public_url: Option<String>,
    pub host_certificate_lifetime: Option<i64>,
    /// Days the sign-in and activity logs keep events.
    pub log_retention_days: Option<i64>,
    /// Events each of the two logs keeps at most.
    pub log_events_max: Option<i64>,
    /// Failed token requests per source address, and failed client authentications per client
    /// id, allowed per minute before 429; 0 turns throttling off.
    pub sign_in_failures_per_minute: Option<u32>,
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
            public_url: over.public_url.or(self.public_url),
            host_certificate_lifetime: over
                .host_certificate_lifetime
                .or(self.host_certificate_lifetime),
            log_retention_days: over.log_retention_days.or(self.log_retention_days),
            log_events_max: over.log_events_max.or(self.log_events_max),
            sign_in_failures_per_minute: over
                .sign_in_failures_per_minute
                .or(self.sign_in_failures_per_minute),
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
    /// The one origin clients use (`--public-url`): issuer, discovery documents, vault URIs,
    /// `/metadata/endpoints` and the CLI profile derive from it. `None`: `https://localhost:{port}`
    /// with the port the listener bound.
    pub public_url: Option<PublicUrl>,
    /// Where the master key lives; `AMBIENT_MASTER_KEY` (base64) takes precedence when set.
    pub master_key_file: PathBuf,
    pub master_key_base64: Option<domain::Secret<String>>,
    /// Lifetime of the client certificates issued to agents (they renew at half-life).
    pub host_certificate_lifetime_secs: i64,
    /// How long the sign-in and activity logs keep events, and how many each keeps at most.
    pub logs: LogBounds,
    /// Failed token requests per source address, and failed client authentications per client
    /// id, allowed per minute before the token endpoint answers 429 (0: no throttling).
    pub sign_in_failures_per_minute: u32,
    pub clock: Arc<dyn domain::Clock>,
    /// The web console, served at `/console` on the same listener when set (the `ambient`
    /// binary sets it; this crate does not depend on the console).
    pub console: Option<crate::RouterFactory>,
}

/// The origin clients use to reach the deployment: `https://{host}[:{port}]`, no path.
///
/// Behind a proxy or load balancer it names the proxy; every node of one deployment is given the
/// same one, so a token issued by any node is accepted by all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    /// `https://host` or `https://host:port` (port omitted when 443), lower-case host.
    origin: String,
    host: String,
    port: u16,
}

impl PublicUrl {
    /// Parses `https://host[:port][/]`; anything else (another scheme, a path, a query, user
    /// information) is refused with the reason.
    pub fn parse(text: &str) -> Result<PublicUrl, ConfigError> {
        let invalid = |why: &str| {
            ConfigError(format!(
                "--public-url {text:?} {why}; use an origin like https://ambient.example.com or https://localhost:8443"
            ))
        };
        if !text.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
            return Err(invalid("is not an https:// URL"));
        }
        let rest = &text[8..];
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err(invalid("has no host"));
        }
        if authority.contains(['/', '?', '#', '@']) {
            return Err(invalid("must be an origin without path, query or user information"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port: u16 = port.parse().map_err(|_| invalid("has an invalid port"))?;
                (host, port)
            }
            _ => (authority, 443),
        };
        if port == 0 {
            return Err(invalid("has port 0"));
        }
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && (host.parse::<std::net::IpAddr>().is_ok()
                || (host.starts_with('[') && host.ends_with(']'))
                || host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                }));
        if !valid_host {
            return Err(invalid("has an invalid host name"));
        }
        Ok(PublicUrl::new(&host.to_ascii_lowercase(), port))
    }

    /// `https://{host}:{port}` (the port left out when it is 443).
    pub fn new(host: &str, port: u16) -> PublicUrl {
        let origin =
            if port == 443 { format!("https://{host}") } else { format!("https://{host}:{port}") };
        PublicUrl { origin, host: host.to_owned(), port }
    }

    /// The origin, without a trailing slash.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where vaults are served: `vault.{suffix}`, with `:{port}` unless the port is 443. Vault
    /// `v`'s URI is `https://v.{vault_host}/`, Key Vault's challenge resource
    /// `https://{vault_host}`.
    pub fn vault_host(&self, dns_suffix: &str) -> String {
        if self.port == 443 {
            format!("vault.{dns_suffix}")
        } else {
            format!("vault.{dns_suffix}:{}", self.port)
        }
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)
    }
}

/// What the background job keeps of the two logs (sign-in and activity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBounds {
    /// Events whose newest time is older than this many days are deleted.
    pub retention_days: i64,
    /// Beyond this many events in one log, the oldest are deleted.
    pub events_max: i64,
}

impl Default for LogBounds {
    fn default() -> Self {
        LogBounds {
            retention_days: domain::limits::LOG_RETENTION_DAYS_DEFAULT,
            events_max: domain::limits::LOG_EVENTS_MAX_DEFAULT,
        }
    }
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
        let retention_days = match settings.log_retention_days {
            Some(days) if (1..=domain::limits::LOG_RETENTION_DAYS_MAX).contains(&days) => days,
            Some(days) => {
                return Err(ConfigError(format!(
                    "--log-retention-days {days} must be between 1 and {}",
                    domain::limits::LOG_RETENTION_DAYS_MAX
                )));
            }
            None => domain::limits::LOG_RETENTION_DAYS_DEFAULT,
        };
        let events_max = match settings.log_events_max {
            Some(events) if events >= domain::limits::LOG_EVENTS_MAX_MIN => events,
            Some(events) => {
                return Err(ConfigError(format!(
                    "--log-events-max {events} must be at least {}",
                    domain::limits::LOG_EVENTS_MAX_MIN
                )));
            }
            None => domain::limits::LOG_EVENTS_MAX_DEFAULT,
        };
        Ok(ServerConfig {
            mode,
            host_certificate_lifetime_secs,
            logs: LogBounds { retention_days, events_max },
            sign_in_failures_per_minute: settings
                .sign_in_failures_per_minute
                .unwrap_or(domain::limits::CLIENT_AUTH_FAILURES_PER_WINDOW_DEFAULT),
            data_dir,
            listen,
            database_url,
            dns_suffix,
            public_url: settings.public_url.as_deref().map(PublicUrl::parse).transpose()?,
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

    #[track_caller]
    fn check_public_url(text: &str, expect: expect_test::Expect) {
        let actual = match PublicUrl::parse(text) {
            Ok(url) => format!("{} host={} port={}", url.origin(), url.host(), url.port()),
            Err(error) => error.to_string(),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn public_urls_are_https_origins() {
        check_public_url(
            "https://Ambient.Example.com/",
            expect_test::expect!["https://ambient.example.com host=ambient.example.com port=443"],
        );
        check_public_url(
            "https://localhost:8443",
            expect_test::expect!["https://localhost:8443 host=localhost port=8443"],
        );
        check_public_url(
            "https://127.0.0.1:443",
            expect_test::expect!["https://127.0.0.1 host=127.0.0.1 port=443"],
        );
        check_public_url(
            "http://localhost:8443",
            expect_test::expect![[
                r#"--public-url "http://localhost:8443" is not an https:// URL; use an origin like https://ambient.example.com or https://localhost:8443"#
            ]],
        );
        check_public_url(
            "https://proxy/ambient",
            expect_test::expect![[
                r#"--public-url "https://proxy/ambient" must be an origin without path, query or user information; use an origin like https://ambient.example.com or https://localhost:8443"#
            ]],
        );
        check_public_url(
            "https://proxy:0",
            expect_test::expect![[
                r#"--public-url "https://proxy:0" has port 0; use an origin like https://ambient.example.com or https://localhost:8443"#
            ]],
        );
        check_public_url(
            "https://bad_host:1",
            expect_test::expect![[
                r#"--public-url "https://bad_host:1" has an invalid host name; use an origin like https://ambient.example.com or https://localhost:8443"#
            ]],
        );
    }

    #[test]
    fn vault_hosts_leave_out_port_443() {
        let url = PublicUrl::parse("https://ambient.example.com").unwrap();
        assert_eq!(url.vault_host("corp"), "vault.corp");
        let url = PublicUrl::parse("https://localhost:8443").unwrap();
        assert_eq!(url.vault_host("localhost"), "vault.localhost:8443");
    }

    #[test]
    fn log_bounds_and_throttling_have_defaults_and_ranges() {
        let config =
            ServerConfig::resolve(Mode::Server, Settings::default(), None, Path::new("/")).unwrap();
        assert_eq!(config.logs, LogBounds { retention_days: 30, events_max: 1_000_000 });
        assert_eq!(config.sign_in_failures_per_minute, 60);
        let file: Settings = toml::from_str(
            "log-retention-days = 7\nlog-events-max = 5000\nsign-in-failures-per-minute = 0",
        )
        .unwrap();
        let config = ServerConfig::resolve(Mode::Server, file, None, Path::new("/")).unwrap();
        assert_eq!(config.logs, LogBounds { retention_days: 7, events_max: 5000 });
        assert_eq!(config.sign_in_failures_per_minute, 0);
        for (settings, message) in [
            (
                Settings { log_retention_days: Some(0), ..Settings::default() },
                "--log-retention-days 0 must be between 1 and 3650",
            ),
            (
                Settings { log_events_max: Some(10), ..Settings::default() },
                "--log-events-max 10 must be at least 1000",
            ),
        ] {
            let error =
                ServerConfig::resolve(Mode::Server, settings, None, Path::new("/")).err().unwrap();
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let error = toml::from_str::<Settings>("lisen = \"x\"").err().unwrap();
        assert!(error.message().contains("unknown field `lisen`"), "{}", error.message());
    }
}
