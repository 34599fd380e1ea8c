//! Tidy checks that keep the house clean, run as tests: every Rust file opens with a `//!`
//! doc, no trailing whitespace, every crate inherits the workspace lints. The dependency
//! checks (`layering`) run as `cargo xtask tidy`.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

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
}
