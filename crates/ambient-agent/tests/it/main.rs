//! Drives the built `ambient-agent` binary as a host's operator would: it offers the options of
//! `ambient agent` and reports a bad option value as one `error: ...` line with a failing exit
//! code. Enrollment and serving are tested through `ambient agent` in the `ambient` crate, which
//! runs the same `agent::command::run`.

use std::process::Command;

use expect_test::{Expect, expect};

const BINARY: &str = env!("CARGO_BIN_EXE_ambient-agent");

/// Runs the binary with `args` and no environment (so no `AMBIENT_*` variable of the test's
/// shell changes the outcome), and prints its exit code, stdout and stderr.
#[track_caller]
fn check(args: &[&str], expect: Expect) {
    let output = Command::new(BINARY).args(args).env_clear().output().unwrap();
    let actual = format!(
        "exit: {:?}\nstdout:\n{}stderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    expect.assert_eq(&actual);
}

#[test]
fn help_lists_the_options_of_ambient_agent() {
    check(
        &["--help"],
        expect![[r#"
        exit: Some(0)
        stdout:
        Ambient's host agent: enroll with a join token, then serve the metadata endpoints for the resources placed on this host

        Usage: ambient-agent [OPTIONS] --data-dir <DIR>

        Options:
              --server <URL>        A server's URL; repeat for each server of the deployment (the agent moves to the next when one does not answer). Remembered in the data directory: needed on the first start
              --join-token <TOKEN>  The one-time join token from `ambient host create` (only for the first start) [env: AMBIENT_JOIN_TOKEN=]
              --data-dir <DIR>      Where the agent keeps its key and certificate
              --ca-bundle <FILE>    The CA that signed the server's certificate (PEM) [default: the system's trust store] [env: AMBIENT_CA_BUNDLE=]
              --imds-listen <ADDR>  The shared IMDS listener (169.254.169.254:80 on a host that has that address)
              --azure-rate-limits   Reproduce Azure's IMDS limits: 20 requests per second and 5 concurrent per resource
              --log <FILTER>        Log filter, as RUST_LOG [env: AMBIENT_LOG=] [default: info]
          -h, --help                Print help
          -V, --version             Print version
        stderr:
    "#]],
    );
}

#[test]
fn a_plain_http_server_is_refused_in_one_line() {
    check(
        &["--server", "http://127.0.0.1:8443", "--data-dir", "/nonexistent/agent"],
        expect![[r#"
            exit: Some(1)
            stdout:
            stderr:
            error: --server must be an https:// URL (got http://127.0.0.1:8443)
        "#]],
    );
}

#[test]
fn the_data_directory_is_required() {
    check(
        &["--server", "https://127.0.0.1:8443"],
        expect![[r#"
        exit: Some(2)
        stdout:
        stderr:
        error: the following required arguments were not provided:
          --data-dir <DIR>

        Usage: ambient-agent --data-dir <DIR> --server <URL>

        For more information, try '--help'.
    "#]],
    );
}
