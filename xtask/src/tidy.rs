//! Tidy checks that keep the house clean, run as tests: every Rust file opens with a `//!`
//! doc, no trailing whitespace, every crate inherits the workspace lints, and the agent's
//! dependency tree holds none of the crates it must never link.

/// Crates in `cargo tree` output (one `name vX (path)` per line) that the agent must not link.
pub fn forbidden_in_agent(tree: &str) -> Vec<String> {
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| matches!(*name, "store" | "issuer" | "vault" | "server"))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    rust_files(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }

    fn workspace_files() -> Vec<PathBuf> {
        let root = crate::root();
        let mut files = Vec::new();
        rust_files(&root.join("crates"), &mut files);
        rust_files(&root.join("xtask"), &mut files);
        assert!(files.len() > 20, "found too few files: {}", files.len());
        files
    }

    #[test]
    fn every_rust_file_starts_with_a_module_doc() {
        let missing: Vec<_> = workspace_files()
            .into_iter()
            .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
            .collect();
        assert!(missing.is_empty(), "files without a leading //! doc: {missing:#?}");
    }

    #[test]
    fn no_trailing_whitespace() {
        let mut offenders = Vec::new();
        for path in workspace_files() {
            for (number, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
                if line.ends_with(' ') || line.ends_with('\t') {
                    offenders.push(format!("{}:{}", path.display(), number + 1));
                }
            }
        }
        assert!(offenders.is_empty(), "trailing whitespace: {offenders:#?}");
    }

    #[test]
    fn every_crate_inherits_workspace_lints() {
        let root = crate::root();
        let mut manifests: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
            .unwrap()
            .map(|entry| entry.unwrap().path().join("Cargo.toml"))
            .collect();
        manifests.push(root.join("xtask/Cargo.toml"));
        for manifest in manifests {
            let text = std::fs::read_to_string(&manifest).unwrap();
            assert!(
                text.contains("[lints]\nworkspace = true"),
                "{} does not inherit lints",
                manifest.display()
            );
        }
    }

    #[test]
    fn agent_manifest_names_no_forbidden_crate() {
        let manifest =
            std::fs::read_to_string(crate::root().join("crates/agent/Cargo.toml")).unwrap();
        for forbidden in ["store", "issuer", "vault", "server"] {
            assert!(
                !manifest.lines().any(|line| line.starts_with(&format!("{forbidden}."))),
                "agent names {forbidden}"
            );
        }
    }

    #[test]
    fn tree_check_finds_forbidden_crates() {
        let tree = "agent v0.0.0 (/w/crates/agent)\nclient v0.0.0 (/w)\nstore v0.0.0 (/w)\nstore v0.0.0 (/w)\n";
        assert_eq!(forbidden_in_agent(tree), vec!["store".to_owned()]);
        assert!(forbidden_in_agent("agent v0.0.0\nstorage v1.0.0\n").is_empty());
    }
}
