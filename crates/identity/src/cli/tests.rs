//! Tests of [`CliCredential`] with a fake CLI: one shell script whose output, exit code and
//! delay come from variables the test passes through `extra_env`, and which logs its argv,
//! working directory, stdin and environment to a file.
//!
//! The script is written once per test binary, before any test spawns it, so no test executes a
//! file another thread still holds open for writing (`ETXTBSY`).

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::cli::{CliCredential, CliCredentialOptions, failure, parse_output};
use crate::clock::FakeClock;
use crate::env::Env;
use crate::{Error, TokenCredential, TokenRequestOptions};

const START: i64 = FakeClock::START_UNIX_SECS;
const VAULT: &str = "https://vault.azure.net/.default";

static FAKE_CLI: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir =
        std::env::temp_dir().join(format!("identity-fake-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ambient");
    let script = r#"#!/bin/sh
if [ -n "$FAKE_CLI_LOG" ]; then
  {
    echo "args: $*"
    echo "pwd: $(pwd)"
    echo "stdin: $(readlink /proc/self/fd/0)"
    echo "tz: $TZ"
    echo "no_color: $AZURE_CORE_NO_COLOR"
    echo "inherited: ${FAKE_CLI_INHERITED-unset}"
    echo "home: ${HOME-unset}"
  } >> "$FAKE_CLI_LOG"
fi
if [ -n "$FAKE_CLI_SLEEP" ]; then exec sleep "$FAKE_CLI_SLEEP"; fi
printf '%s' "$FAKE_CLI_STDOUT"
printf '%s' "$FAKE_CLI_STDERR" >&2
exit "${FAKE_CLI_EXIT:-0}"
"#;
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
});

/// What the fake CLI does on one run.
#[derive(Default)]
struct Script {
    stdout: String,
    stderr: String,
    exit: i32,
}

fn token_json(token: &str, expires_on: i64) -> String {
    format!(
        r#"{{"accessToken":"{token}","expiresOn":"2024-01-01 01:00:00.000000","expires_on":{expires_on},"subscription":"s","tenant":"t","tokenType":"Bearer"}}"#
    )
}

/// A credential running the fake CLI with `script`, logging to the returned file.
fn credential(
    script: Script,
    tenant_id: Option<&str>,
    clock: &Arc<FakeClock>,
) -> (CliCredential, PathBuf) {
    let log = std::env::temp_dir().join(format!("identity-cli-log-{}", uuid::Uuid::new_v4()));
    let options = CliCredentialOptions {
        executable: Some(FAKE_CLI.clone()),
        extra_env: vec![
            ("FAKE_CLI_STDOUT".to_owned(), script.stdout),
            ("FAKE_CLI_STDERR".to_owned(), script.stderr),
            ("FAKE_CLI_EXIT".to_owned(), script.exit.to_string()),
            ("FAKE_CLI_LOG".to_owned(), log.display().to_string()),
        ],
        timeout: Duration::from_secs(10),
        tenant_id: tenant_id.map(str::to_owned),
        additionally_allowed_tenants: vec!["allowed-tenant".to_owned()],
    };
    let env = Env::from_pairs([("PATH", "/usr/bin:/bin"), ("FAKE_CLI_INHERITED", "yes")]);
    let credential = CliCredential::with_clock(&env, options, clock.clone()).unwrap();
    (credential, log)
}

fn log_lines(log: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn runs_get_access_token_and_reads_its_json() {
    let clock = FakeClock::new();
    let script = Script { stdout: token_json("cli-token", START + 3600), ..Script::default() };
    let (credential, log) = credential(script, None, &clock);

    let token = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();

    assert_eq!(token.token.expose(), "cli-token");
    assert_eq!(token.expires_on, START + 3600);
    assert_eq!(token.refresh_on, Some(START + 3600 - 300));
    assert_eq!(
        log_lines(&log),
        [
            "args: account get-access-token --output json --resource https://vault.azure.net",
            "pwd: /",
            "stdin: /dev/null",
            "tz: UTC",
            "no_color: true",
            "inherited: yes",
            // The child sees the credential's environment, not the test process's.
            "home: unset",
        ]
    );
    // Cached: a second call does not run the CLI.
    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();
    assert_eq!(log_lines(&log).len(), 7);
}

#[tokio::test]
async fn tenant_is_passed_and_other_tenants_need_permission() {
    let clock = FakeClock::new();
    let script = Script { stdout: token_json("t", START + 3600), ..Script::default() };
    let (credential, log) = credential(script, Some("own-tenant"), &clock);
    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();
    assert!(log_lines(&log)[0].ends_with("--resource https://vault.azure.net --tenant own-tenant"));

    let allowed = TokenRequestOptions { tenant_id: Some("allowed-tenant".to_owned()) };
    credential.get_token(&[VAULT], &allowed).await.unwrap();
    assert!(log_lines(&log)[7].ends_with("--tenant allowed-tenant"), "{:?}", log_lines(&log));

    let other = TokenRequestOptions { tenant_id: Some("other-tenant".to_owned()) };
    let error = credential.get_token(&[VAULT], &other).await.unwrap_err();
    assert!(matches!(&error, Error::InvalidConfig(m) if m.contains("other-tenant")), "{error:?}");
}

#[test]
fn expires_on_falls_back_to_expires_on_date() {
    let stdout =
        br#"{"accessToken":"a","expiresOn":"2024-01-01 13:50:47.114324","tokenType":"Bearer"}"#;
    let token = parse_output("az", stdout, START).unwrap();
    assert_eq!(token.expires_on, 1_704_117_047);
    let stdout = br#"{"accessToken":"a","expires_on":"1704117047"}"#;
    assert_eq!(parse_output("az", stdout, START).unwrap().expires_on, 1_704_117_047);
}

#[test]
fn unexpected_output_is_an_error_that_does_not_quote_it() {
    for stdout in [
        &b"not json secret-token"[..],
        br#"{"expires_on":1704117047}"#,
        br#"{"accessToken":"secret-token"}"#,
        br#"{"accessToken":"secret-token","expires_on":1}"#,
    ] {
        let error = parse_output("ambient", stdout, START).unwrap_err();
        assert!(
            matches!(&error, Error::Http(m) if m.starts_with("unexpected output from ambient") && !m.contains("secret-token")),
            "{error:?}"
        );
    }
}

#[test]
fn stderr_maps_to_errors_as_azure_identity_maps_it() {
    let unavailable = |error: Error, fragment: &str| {
        assert!(
            matches!(&error, Error::CredentialUnavailable(m) if m.contains(fragment)),
            "{error:?}"
        );
    };
    unavailable(
        failure("az", Some(1), "ERROR: Please run 'az login' to setup account."),
        "not logged in",
    );
    unavailable(
        failure(
            "ambient",
            Some(1),
            "Error: no profile at /x/profile.json: start `ambient dev`, or run `ambient login`, or set AMBIENT_HOME",
        ),
        "run `ambient login`",
    );
    unavailable(failure("az", Some(127), "sh: 1: az: not found"), "not installed");
    let refused = failure(
        "az",
        Some(1),
        "ERROR: AADSTS700082: The refresh token has expired due to inactivity. Please run 'az login'",
    );
    assert!(
        matches!(&refused, Error::Authentication { status: None, description, .. } if description.contains("AADSTS700082")),
        "{refused:?}"
    );
    let other = failure("az", Some(2), "ERROR: something else broke");
    assert!(matches!(other, Error::Authentication { .. }), "{other:?}");
}

#[tokio::test]
async fn not_logged_in_is_unavailable_end_to_end() {
    let clock = FakeClock::new();
    let script = Script {
        stderr: "ERROR: Please run 'az login' to setup account.".to_owned(),
        exit: 1,
        ..Script::default()
    };
    let (credential, _log) = credential(script, None, &clock);
    let error = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("not logged in")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_cli_that_hangs_is_killed_at_the_timeout() {
    let clock = FakeClock::new();
    let options = CliCredentialOptions {
        executable: Some(FAKE_CLI.clone()),
        extra_env: vec![("FAKE_CLI_SLEEP".to_owned(), "30".to_owned())],
        timeout: Duration::from_millis(300),
        ..CliCredentialOptions::default()
    };
    let env = Env::from_pairs([("PATH", "/usr/bin:/bin")]);
    let credential = CliCredential::with_clock(&env, options, clock).unwrap();
    let started = std::time::Instant::now();
    let error = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("did not answer")),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn missing_cli_is_unavailable() {
    let clock = FakeClock::new();
    // No PATH at all: nothing is found, nothing runs.
    let credential =
        CliCredential::with_clock(&Env::default(), CliCredentialOptions::default(), clock.clone())
            .unwrap();
    let error = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("found on PATH")),
        "{error:?}"
    );

    let options = CliCredentialOptions {
        executable: Some(PathBuf::from("/nonexistent/ambient")),
        ..CliCredentialOptions::default()
    };
    let credential = CliCredential::with_clock(&Env::default(), options, clock).unwrap();
    let error = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("could not run")),
        "{error:?}"
    );
}

#[test]
fn ambient_is_preferred_to_az_on_path() {
    // Lookup only: the files are never run.
    let root =
        std::env::temp_dir().join(format!("identity-path-{}", uuid::Uuid::new_v4().simple()));
    let (first, second) = (root.join("first"), root.join("second"));
    for dir in [&first, &second] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let executable = |path: PathBuf| {
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    executable(first.join("az"));
    std::fs::write(second.join("ambient"), "not executable").unwrap();
    let path = format!("{}:{}", first.display(), second.display());
    let program = |path: &str| {
        let env = Env::from_pairs([("PATH", path)]);
        let credential = CliCredential::from_env(&env, CliCredentialOptions::default()).unwrap();
        format!("{credential:?}")
    };
    assert!(program(&path).contains("first/az"), "{}", program(&path));
    executable(second.join("ambient"));
    assert!(program(&path).contains("second/ambient"), "{}", program(&path));
}

#[tokio::test]
async fn resources_that_could_be_read_as_flags_are_refused() {
    let clock = FakeClock::new();
    let (credential, log) = credential(Script::default(), None, &clock);
    for scope in ["--debug", "https://x/$(id)"] {
        let error =
            credential.get_token(&[scope], &TokenRequestOptions::default()).await.unwrap_err();
        assert!(matches!(error, Error::InvalidScope(_)), "{scope}: {error:?}");
    }
    assert!(log_lines(&log).is_empty());
}

#[test]
fn debug_shows_variable_names_only() {
    let options = CliCredentialOptions {
        extra_env: vec![("AMBIENT_HOME".to_owned(), "/secret/home".to_owned())],
        ..CliCredentialOptions::default()
    };
    let debug = format!("{options:?}");
    assert!(debug.contains("AMBIENT_HOME") && !debug.contains("/secret/home"), "{debug}");
}
