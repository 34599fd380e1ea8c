//! The README and the tutorial (`docs/tutorial.md`) as a newcomer runs them (issue 15): their
//! `sh` blocks, as written, in one bash shell, from an empty directory, with the freshly built
//! `ambient` first on the `PATH` and nothing else prepared.
//!
//! Blocks fenced as `sh as-root` need root (`ambient run --isolate`); run by anyone else, the
//! tests run instead a check that `--isolate` refuses clearly, and say so on stderr.
//! The README's install and start commands are the exception: a test cannot `cargo install`, and
//! tests never take a fixed port, so its test checks those commands' text, runs
//! `ambient --version`, and starts `ambient dev` as the tutorial does, on a free port.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{BINARY, tempdir};

/// One fenced block of the tutorial: its info string and its text.
struct Block {
    as_root: bool,
    text: String,
}

/// The `sh` blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => {
                let words: Vec<&str> = info.split_whitespace().collect();
                if words.first() == Some(&"sh") {
                    current =
                        Some(Block { as_root: words.contains(&"as-root"), text: String::new() });
                } else {
                    // A block of another language: skip to its end.
                    current = Some(Block { as_root: false, text: "\u{0}skip".to_owned() });
                }
            }
            (Some(_), Some("")) => {
                let block = current.take().expect("inside a block");
                if !block.text.starts_with('\u{0}') {
                    blocks.push(block);
                }
            }
            (Some(block), _) => {
                if !block.text.starts_with('\u{0}') {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    blocks
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The shell script: the blocks in order under `set -euo pipefail`, each echoing a marker first
/// so that a failure names its block.
fn script(blocks: &[Block], root: bool) -> String {
    let mut script = String::from("set -euo pipefail\n");
    for (index, block) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '### block {index}' >&2\n"));
        if block.as_root && !root {
            script.push_str(
                "if ambient run --as stock-vm -g stock --isolate -- true 2> isolate.err; then \
                 echo 'ambient run --isolate worked without root' >&2; exit 1; fi\n\
                 echo \"not root: ran the refusal of --isolate instead: $(cat isolate.err)\" >&2\n",
            );
        } else {
            script.push_str(&block.text);
        }
    }
    script
}

/// The `sh` blocks of a file at the repository's root.
fn doc_blocks(path: &str) -> (String, Vec<Block>) {
    let markdown =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path))
            .unwrap_or_else(|error| panic!("read {path}: {error}"));
    let blocks = sh_blocks(&markdown);
    (markdown, blocks)
}

/// Runs `script` with bash in a fresh directory, the built binary first on the `PATH`, and
/// returns its stdout; fails the test, with the script's output and Ambient's log, when the
/// script fails.
fn run_script(label: &str, script: &str) -> String {
    let dir = tempdir(label);
    std::fs::write(dir.join("doc.sh"), script).unwrap();
    let bin_dir = Path::new(BINARY).parent().expect("the binary is in a directory");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display());
    let mut command = Command::new("timeout");
    command
        .args(["600", "bash", "doc.sh"])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", path)
        .env("LANG", "C.UTF-8")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A process group of its own, so that whatever the script leaves running is stopped.
        .process_group(0);
    // pip's cache lives under HOME; keeping it spares a download on every run.
    if let Ok(home) = std::env::var("HOME") {
        command.env("HOME", home);
    }
    let child = command.spawn().expect("run bash");
    let pid = child.id();
    let output = child.wait_with_output().expect("wait for bash");
    let _ = Command::new("kill").args(["-TERM", "--", &format!("-{pid}")]).status();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let log = std::fs::read_to_string(dir.join("ambient.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "{label} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nambient.log:\n{log}",
        output.status
    );
    eprintln!("{stderr}");
    // The directory holds a virtual environment; keep it only when the script failed.
    std::fs::remove_dir_all(&dir).ok();
    stdout
}

#[test]
fn tutorial_runs_as_written() {
    let (_, blocks) = doc_blocks("docs/tutorial.md");
    assert!(blocks.len() >= 10, "the tutorial has its blocks: {}", blocks.len());
    assert!(blocks.iter().any(|block| block.as_root), "one block needs root");
    let root = is_root();
    let stdout = run_script("tutorial", &script(&blocks, root));

    let lines: Vec<&str> = stdout.lines().collect();
    let has = |wanted: &str| lines.iter().any(|line| line.trim_end() == wanted);
    assert!(has("db-password"), "{stdout}");
    assert!(lines.iter().any(|line| line.starts_with("token ey")), "{stdout}");
    if root {
        assert!(has("s3cr3t"), "the machine read the secret:\n{stdout}");
    }
    // Each `echo "expected X"` follows the line the token's claim printed.
    let expected: Vec<&str> =
        lines.iter().filter_map(|line| line.strip_prefix("expected ")).collect();
    assert_eq!(expected.len(), 2, "{stdout}");
    for value in expected {
        assert!(!value.is_empty(), "{stdout}");
        let at = lines.iter().position(|line| *line == format!("expected {value}")).unwrap();
        assert_eq!(lines[at - 1], value, "the token's claim names the identity:\n{stdout}");
    }
    // The activity log's newest event is the last write: the federated credential.
    let activity = lines
        .iter()
        .position(|line| line.starts_with("Time") && line.contains("Operation"))
        .unwrap_or_else(|| panic!("no activity-log table:\n{stdout}"));
    assert!(lines[activity + 2].contains("federatedIdentityCredentials/write"), "{stdout}");
    assert!(
        lines.iter().any(|line| line.starts_with("Time") && line.contains("Principal")),
        "no sign-in table:\n{stdout}"
    );
}

#[test]
fn readme_runs_as_written() {
    let (markdown, blocks) = doc_blocks("README.md");
    let using = markdown.find("## Using it").expect("the README has a section Using it");
    let (install, rest) = markdown.split_at(using);
    let install_blocks = sh_blocks(install);
    let texts: Vec<&str> = install_blocks.iter().map(|block| block.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "cargo install --locked --path crates/ambient\nambient --version\n",
            "ambient dev\n",
            "cargo xtask ci\n"
        ],
        "the install and start commands this test stands in for"
    );
    let usage = sh_blocks(rest);
    assert_eq!(blocks.len(), install_blocks.len() + usage.len());
    assert!(usage.iter().any(|block| block.as_root), "one block needs root");
    let root = is_root();
    let start = Block {
        as_root: false,
        text: "ambient --version\n\
               ambient dev --listen 127.0.0.1:0 > ambient.log 2>&1 &\n\
               timeout 60 sh -c 'until [ -s .ambient/env.sh ]; do sleep 1; done'\n"
            .to_owned(),
    };
    let stop = Block { as_root: false, text: "kill %1\n".to_owned() };
    let all: Vec<Block> = std::iter::once(start).chain(usage).chain([stop]).collect();
    let stdout = run_script("readme", &script(&all, root));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], concat!("ambient ", env!("CARGO_PKG_VERSION")));
    assert_ne!(lines[0], "ambient 0.0.0", "a real version");
    assert!(stdout.contains("\"tenantId\""), "account show printed the account:\n{stdout}");
    assert!(stdout.contains("\"value\": \"s3cr3t\""), "secret set printed the secret:\n{stdout}");
    assert!(lines.iter().any(|line| line.starts_with("eyJ")), "a token:\n{stdout}");
    if root {
        assert!(lines.contains(&"s3cr3t"), "the VM read the secret:\n{stdout}");
    }
}

#[test]
fn blocks_are_found() {
    let markdown = "text\n```sh\na\nb\n```\n```python\nx\n```\n```sh as-root\nc\n```\n";
    let blocks = sh_blocks(markdown);
    let summary: Vec<(bool, &str)> =
        blocks.iter().map(|block| (block.as_root, block.text.as_str())).collect();
    assert_eq!(summary, [(false, "a\nb\n"), (true, "c\n")]);
}
