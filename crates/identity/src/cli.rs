//! [`CliCredential`]: the developer's command-line login, as azure-identity's
//! `AzureCliCredential` uses it (07-cli.md §3-4).
//!
//! Runs `ambient account get-access-token --output json --resource R [--tenant T]` (or the same
//! with `az` when `ambient` is not on `PATH` but `az` is) in `/`, with stdin closed and a
//! timeout, and reads `accessToken` and `expires_on` (else `expiresOn`) from its output. The
//! child runs with `TZ=UTC`, so the legacy `expiresOn`, which the CLI prints in its local time,
//! is UTC. Exit codes and stderr map to errors as azure-identity maps them: "not logged in" and
//! "not installed" are [`Error::CredentialUnavailable`], a refusal carrying an `AADSTS` code is
//! [`Error::Authentication`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::cache::{CacheKey, TokenCache, refresh_on};
use crate::clock::{SharedClock, SystemClock};
use crate::credential::{AccessToken, TokenCredential, TokenRequestOptions};
use crate::datetime::parse_cli_date;
use crate::env::Env;
use crate::options::TenantId;
use crate::scope::resource_from_scopes;
use crate::secret::Secret;
use crate::{Error, Result};

/// How long the CLI may take by default (azure-identity's `process_timeout`).
pub const DEFAULT_CLI_TIMEOUT: Duration = Duration::from_secs(10);

/// The CLIs looked up on `PATH`, in order.
const CLI_NAMES: [&str; 2] = ["ambient", "az"];

/// Largest CLI output read; a token response is a few KiB.
const OUTPUT_BYTES_MAX: usize = 1024 * 1024;

/// Most characters of the CLI's stderr quoted in an error.
const STDERR_EXCERPT_CHARS_MAX: usize = 500;

/// Options of [`CliCredential`].
#[derive(Clone, PartialEq, Eq)]
pub struct CliCredentialOptions {
    /// The CLI to run. `None`: `ambient` if it is on `PATH`, else `az`.
    pub executable: Option<PathBuf>,
    /// Variables added to the CLI's environment (such as `AMBIENT_HOME`), on top of the
    /// environment the credential was built from. `Debug` shows their names only.
    pub extra_env: Vec<(String, String)>,
    /// The longest the CLI may run; it is killed afterwards.
    pub timeout: Duration,
    /// Pass `--tenant` with this tenant on every request, instead of the CLI's default tenant.
    pub tenant_id: Option<String>,
    /// Tenants a request's
    /// [`TokenRequestOptions::tenant_id`](crate::TokenRequestOptions::tenant_id) may name besides
    /// `tenant_id`; `"*"` allows any.
    pub additionally_allowed_tenants: Vec<String>,
}

impl Default for CliCredentialOptions {
    fn default() -> CliCredentialOptions {
        CliCredentialOptions {
            executable: None,
            extra_env: Vec::new(),
            timeout: DEFAULT_CLI_TIMEOUT,
            tenant_id: None,
            additionally_allowed_tenants: Vec::new(),
        }
    }
}

impl fmt::Debug for CliCredentialOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra_env: Vec<&str> = self.extra_env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("CliCredentialOptions")
            .field("executable", &self.executable)
            .field("extra_env", &extra_env)
            .field("timeout", &self.timeout)
            .field("tenant_id", &self.tenant_id)
            .field("additionally_allowed_tenants", &self.additionally_allowed_tenants)
            .finish()
    }
}

/// The signed-in account of the Ambient CLI or the Azure CLI.
///
/// Cheap to clone; clones share one token cache (per resource and tenant).
#[derive(Clone)]
pub struct CliCredential {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when no CLI was found on `PATH`.
    program: Option<PathBuf>,
    /// The child's whole environment: the snapshot, then `extra_env`, then our settings.
    child_env: Vec<(String, Secret)>,
    timeout: Duration,
    tenant_id: Option<TenantId>,
    additionally_allowed_tenants: Vec<String>,
    cache: TokenCache,
    clock: SharedClock,
}

impl CliCredential {
    /// A credential using the process environment (for `PATH` and the CLI's own variables).
    ///
    /// Fails with [`Error::InvalidConfig`] for a zero timeout or a malformed tenant.
    pub fn new(options: CliCredentialOptions) -> Result<CliCredential> {
        Self::from_env(&Env::from_process(), options)
    }

    /// A credential that finds the CLI on `env`'s `PATH` and runs it with exactly `env` plus
    /// [`CliCredentialOptions::extra_env`] as its environment.
    pub fn from_env(env: &Env, options: CliCredentialOptions) -> Result<CliCredential> {
        Self::with_clock(env, options, SystemClock::shared())
    }

    pub(crate) fn with_clock(
        env: &Env,
        options: CliCredentialOptions,
        clock: SharedClock,
    ) -> Result<CliCredential> {
        if options.timeout.is_zero() {
            return Err(Error::InvalidConfig("cli timeout must be more than zero".to_owned()));
        }
        let tenant_id = options.tenant_id.as_deref().map(TenantId::parse).transpose()?;
        for tenant in &options.additionally_allowed_tenants {
            if tenant != "*" {
                TenantId::parse(tenant)?;
            }
        }
        let program = match options.executable {
            Some(path) => Some(path),
            None => CLI_NAMES.iter().find_map(|name| find_on_path(env.get("PATH"), name)),
        };
        let mut child_env: Vec<(String, Secret)> =
            env.iter().map(|(name, value)| (name.to_owned(), Secret::new(value))).collect();
        child_env.extend(options.extra_env.into_iter().map(|(name, value)| (name, value.into())));
        child_env.push(("AZURE_CORE_NO_COLOR".to_owned(), "true".into()));
        child_env.push(("TZ".to_owned(), "UTC".into()));
        Ok(CliCredential {
            inner: Arc::new(Inner {
                program,
                child_env,
                timeout: options.timeout,
                tenant_id,
                additionally_allowed_tenants: options.additionally_allowed_tenants,
                cache: TokenCache::new(clock.clone()),
                clock,
            }),
        })
    }
}

#[async_trait]
impl TokenCredential for CliCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions,
    ) -> Result<AccessToken> {
        let resource = resource_from_scopes(scopes)?;
        let tenant = self.inner.resolve_tenant(options)?;
        validate_argument("resource", &resource)?;
        let key = CacheKey::new(&[&resource], tenant.as_ref().map(TenantId::as_str));
        let inner = &self.inner;
        inner.cache.get_token(key, || inner.run(&resource, tenant.as_ref())).await
    }
}

impl fmt::Debug for CliCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliCredential")
            .field("program", &self.inner.program)
            .field("timeout", &self.inner.timeout)
            .field("tenant_id", &self.inner.tenant_id)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The tenant to pass with `--tenant`, as azure-identity's `resolve_tenant` decides.
    fn resolve_tenant(&self, options: &TokenRequestOptions) -> Result<Option<TenantId>> {
        let Some(requested) = options.tenant_id.as_deref() else {
            return Ok(self.tenant_id.clone());
        };
        if self.tenant_id.as_ref().is_some_and(|own| own.eq_ignore_case(requested)) {
            return Ok(self.tenant_id.clone());
        }
        let requested = TenantId::parse(requested)?;
        let allowed = self
            .additionally_allowed_tenants
            .iter()
            .any(|tenant| tenant == "*" || requested.eq_ignore_case(tenant));
        if !allowed {
            return Err(Error::InvalidConfig(format!(
                "the credential is not configured to get tokens for tenant {:?}; add it to additionally_allowed_tenants, or \"*\" for any",
                requested.as_str()
            )));
        }
        Ok(Some(requested))
    }

    async fn run(&self, resource: &str, tenant: Option<&TenantId>) -> Result<AccessToken> {
        let Some(program) = &self.program else {
            return Err(Error::CredentialUnavailable(
                "CliCredential authentication unavailable: neither the Ambient CLI (ambient) nor the Azure CLI (az) was found on PATH".to_owned(),
            ));
        };
        let name = program_name(program);
        let mut command = tokio::process::Command::new(program);
        command
            .args(["account", "get-access-token", "--output", "json", "--resource", resource])
            .current_dir("/")
            .env_clear()
            .envs(self.child_env.iter().map(|(name, value)| (name, value.expose())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(tenant) = tenant {
            command.args(["--tenant", tenant.as_str()]);
        }
        let child = command.spawn().map_err(|error| {
            Error::CredentialUnavailable(format!(
                "CliCredential authentication unavailable: could not run {}: {error}",
                program.display()
            ))
        })?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(error)) => {
                return Err(Error::CredentialUnavailable(format!(
                    "CliCredential authentication unavailable: {name} failed: {error}"
                )));
            }
            // Dropping the future drops the child, which kills it (`kill_on_drop`).
            Err(_) => {
                return Err(Error::CredentialUnavailable(format!(
                    "CliCredential authentication unavailable: {name} did not answer within {} s",
                    self.timeout.as_secs_f64()
                )));
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(failure(&name, output.status.code(), &stderr));
        }
        if output.stdout.len() > OUTPUT_BYTES_MAX {
            return Err(Error::Http(format!("{name} printed more than {OUTPUT_BYTES_MAX} bytes")));
        }
        parse_output(&name, &output.stdout, self.clock.now_unix_secs())
    }
}

/// The error for a CLI that exited with `code` and printed `stderr`.
pub(crate) fn failure(name: &str, code: Option<i32>, stderr: &str) -> Error {
    let excerpt: String = stderr.trim().chars().take(STDERR_EXCERPT_CHARS_MAX).collect();
    if stderr.contains("AADSTS") {
        return Error::Authentication {
            status: None,
            error: "cli_error".to_owned(),
            description: format!("{name} failed: {excerpt}"),
        };
    }
    let lower = stderr.to_ascii_lowercase();
    if code == Some(127) || lower.contains("not recognized") || lower.contains("command not found")
    {
        return Error::CredentialUnavailable(format!(
            "CliCredential authentication unavailable: {name} is not installed: {excerpt}"
        ));
    }
    if lower.contains("login") {
        return Error::CredentialUnavailable(format!(
            "CliCredential authentication unavailable: not logged in; run `{name} login`: {excerpt}"
        ));
    }
    Error::Authentication {
        status: None,
        error: "cli_error".to_owned(),
        description: format!("{name} failed: {excerpt}"),
    }
}

/// Parses `get-access-token`'s JSON printed at `now_unix_secs`. Errors never quote the output,
/// which may hold a token.
pub(crate) fn parse_output(name: &str, stdout: &[u8], now_unix_secs: i64) -> Result<AccessToken> {
    let unexpected = |what: &str| Error::Http(format!("unexpected output from {name}: {what}"));
    let value: Value = serde_json::from_slice(stdout).map_err(|_| unexpected("not JSON"))?;
    let token = value
        .get("accessToken")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| unexpected("no accessToken"))?;
    let expires_on = match value.get("expires_on") {
        Some(Value::Number(number)) => number.as_i64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    };
    let expires_on = match expires_on {
        Some(expires_on) => expires_on,
        None => value
            .get("expiresOn")
            .and_then(Value::as_str)
            .and_then(parse_cli_date)
            .ok_or_else(|| unexpected("neither expires_on nor a readable expiresOn"))?,
    };
    if expires_on <= now_unix_secs {
        return Err(unexpected("the token has expired"));
    }
    Ok(AccessToken {
        token: Secret::new(token),
        expires_on,
        refresh_on: Some(refresh_on(now_unix_secs, expires_on, None)),
    })
}

/// Refuses a resource or tenant that could be read as a flag or holds characters no resource
/// has (azure-identity allows `[A-Za-z0-9_.:/-]` in scopes; `%`, `~` and `+` are added for
/// percent-encoded and unusual resource URIs).
fn validate_argument(what: &str, value: &str) -> Result<()> {
    let valid = !value.starts_with('-')
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:/-%~+".contains(&b));
    if !valid {
        return Err(Error::InvalidScope(format!(
            "{what} {value:?} holds characters the CLI credential does not pass to a CLI"
        )));
    }
    Ok(())
}

/// The first executable file named `name` in the directories of `path`.
fn find_on_path(path: Option<&str>, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|metadata| is_executable(&metadata))
        })
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    metadata.is_file()
}

/// `ambient` or `az` (the file name), for messages.
fn program_name(program: &Path) -> String {
    program
        .file_name()
        .map_or_else(|| program.display().to_string(), |name| name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests;
