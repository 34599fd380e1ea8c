//! The dependency checks of `cargo xtask tidy`, as pure functions over text the caller reads:
//! the "Dependency direction" table of ARCHITECTURE.md (the one source of truth for which
//! workspace crate may depend on which) against `cargo metadata`, the agents' `cargo tree`
//! against the crates a host must never link, and each crate's `[dependencies]` against its
//! sources, so that a dependency nobody uses does not linger.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The packages whose normal dependency trees must not hold [`FORBIDDEN_ON_HOSTS`].
pub const AGENT_PACKAGES: &[&str] = &["agent", "ambient-agent"];

/// The crates that hold data, keys or the server: a host (and so the agent) never links them.
pub const FORBIDDEN_ON_HOSTS: &[&str] = &["server", "store", "issuer", "vault"];

/// `[dependencies]` entries that may stay although the crate's sources do not name them, each
/// with the reason: (crate, dependency, reason). An entry that is no longer needed (the
/// dependency is named, or gone) is itself reported, so the list stays short.
pub const UNUSED_DEPENDENCY_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// What the table allows one crate.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// The workspace crates it may name in `[dependencies]` (and `[build-dependencies]`).
    pub allowed: BTreeSet<String>,
    /// Marked "dev-dependency only": other crates may name it in `[dev-dependencies]` only.
    pub dev_only: bool,
}

/// The "Dependency direction" table: crate name to its rule.
pub type Table = BTreeMap<String, Rule>;

/// Which table of a manifest a dependency is declared in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Dev,
    Build,
}

/// One dependency of a workspace package, as `cargo metadata` describes it.
#[derive(Debug)]
pub struct Dependency {
    /// The package name (`api-types`).
    pub name: String,
    /// The name the sources use (`api_types`, or the `package = ` rename).
    pub source_name: String,
    pub kind: Kind,
    /// A crate of this workspace (a path dependency on a workspace member).
    pub workspace: bool,
}

/// A workspace package: its name, dependencies and the folders of its library and binaries.
#[derive(Debug)]
pub struct Package {
    pub name: String,
    pub dependencies: Vec<Dependency>,
    /// The folders holding the sources of the library and binary targets (usually `src/`), and
    /// build scripts; tests, examples and benches are left out since they may only use
    /// dev-dependencies.
    pub source_paths: Vec<PathBuf>,
}

/// Reads the "Dependency direction" table out of ARCHITECTURE.md. A row is
/// `| crates | allowed |`; both cells name crates in backticks; text in parentheses is a remark
/// and ignored, except that "dev-dependency only" in the first cell marks the crates as
/// dev-dependencies only. "no crate of ours" allows nothing and "all of the above" allows every
/// crate named in the first cell of an earlier row.
pub fn parse_table(architecture: &str) -> Result<Table> {
    let mut lines = architecture.lines().skip_while(|line| !line.contains("Dependency direction"));
    if lines.next().is_none() {
        bail!("ARCHITECTURE.md has no \"Dependency direction\" table");
    }
    let rows: Vec<&str> = lines
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2) // The header and the `|---|---|` line.
        .collect();
    if rows.is_empty() {
        bail!("the \"Dependency direction\" table of ARCHITECTURE.md has no rows");
    }
    let mut table = Table::new();
    for row in rows {
        let cells: Vec<&str> = row.trim().trim_matches('|').split('|').map(str::trim).collect();
        let [crates, allowed] = cells[..] else {
            bail!("table row {row:?} does not have two cells");
        };
        let names = backticked(&without_remarks(crates));
        if names.is_empty() {
            bail!("table row {row:?} names no crate");
        }
        let allowed_text = without_remarks(allowed);
        let allowed: BTreeSet<String> = if allowed_text.contains("all of the above") {
            table.keys().cloned().collect()
        } else {
            let allowed = backticked(&allowed_text);
            if allowed.is_empty() && !allowed_text.contains("no crate of ours") {
                bail!("table row {row:?}: write the crates in backticks or \"no crate of ours\"");
            }
            allowed.into_iter().collect()
        };
        let dev_only = crates.contains("dev-dependency only");
        for name in names {
            let rule = Rule { allowed: allowed.clone(), dev_only };
            if table.insert(name.clone(), rule).is_some() {
                bail!("the table has two rows for `{name}`");
            }
        }
    }
    Ok(table)
}

/// The workspace packages from `cargo metadata --format-version 1 --no-deps`.
pub fn parse_metadata(metadata: &str) -> Result<Vec<Package>> {
    let metadata: serde_json::Value =
        serde_json::from_str(metadata).context("cargo metadata is not JSON")?;
    let packages = metadata["packages"].as_array().context("cargo metadata has no packages")?;
    let members: BTreeSet<&str> =
        packages.iter().filter_map(|package| package["name"].as_str()).collect();
    let mut out = Vec::new();
    for package in packages {
        let name = package["name"].as_str().context("a package without a name")?;
        let mut dependencies = Vec::new();
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let dependency_name =
                dependency["name"].as_str().context("a dependency without a name")?;
            let kind = match dependency["kind"].as_str() {
                None => Kind::Normal,
                Some("dev") => Kind::Dev,
                Some("build") => Kind::Build,
                Some(other) => bail!("{name}: unknown dependency kind {other:?}"),
            };
            let source_name = dependency["rename"].as_str().unwrap_or(dependency_name);
            dependencies.push(Dependency {
                name: dependency_name.to_owned(),
                source_name: source_name.replace('-', "_"),
                kind,
                workspace: dependency["path"].is_string() && members.contains(dependency_name),
            });
        }
        let mut source_paths = Vec::new();
        for target in package["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .collect();
            let src_path = PathBuf::from(target["src_path"].as_str().context("no src_path")?);
            if kinds.contains(&"custom-build") {
                source_paths.push(src_path);
            } else if kinds.iter().any(|kind| matches!(*kind, "lib" | "bin" | "proc-macro")) {
                let folder = src_path.parent().context("src_path has no folder")?.to_owned();
                if !source_paths.contains(&folder) {
                    source_paths.push(folder);
                }
            }
        }
        out.push(Package { name: name.to_owned(), dependencies, source_paths });
    }
    Ok(out)
}

/// Every edge between workspace crates that the table does not allow, and every workspace
/// crate the table leaves out, as one message each.
pub fn table_violations(table: &Table, packages: &[Package]) -> Vec<String> {
    let mut violations = Vec::new();
    let names: BTreeSet<&str> = packages.iter().map(|package| package.name.as_str()).collect();
    for name in table.keys() {
        if !names.contains(name.as_str()) {
            violations.push(format!(
                "the dependency table of ARCHITECTURE.md names `{name}`, which is not a crate of the workspace"
            ));
        }
    }
    for package in packages {
        let Some(rule) = table.get(&package.name) else {
            violations.push(format!(
                "crate `{}` has no row in the dependency table of ARCHITECTURE.md",
                package.name
            ));
            continue;
        };
        for dependency in package.dependencies.iter().filter(|dependency| dependency.workspace) {
            let section = match dependency.kind {
                Kind::Normal => "[dependencies]",
                Kind::Build => "[build-dependencies]",
                Kind::Dev => continue,
            };
            let target_is_dev_only = table.get(&dependency.name).is_some_and(|rule| rule.dev_only);
            if target_is_dev_only {
                violations.push(format!(
                    "`{}` has `{}` in {section}, but ARCHITECTURE.md marks `{}` dev-dependency only",
                    package.name, dependency.name, dependency.name
                ));
            } else if !rule.allowed.contains(&dependency.name) {
                violations.push(format!(
                    "`{}` depends on `{}` ({section}), an edge the dependency table of ARCHITECTURE.md does not allow (`{}` may depend on {})",
                    package.name,
                    dependency.name,
                    package.name,
                    listed(&rule.allowed)
                ));
            }
        }
    }
    violations
}

/// The crates of [`FORBIDDEN_ON_HOSTS`] in `cargo tree --prefix none --format {p}` output (one
/// `name vX (path)` per line).
pub fn forbidden_in_tree(tree: &str) -> Vec<String> {
    let found: BTreeSet<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| FORBIDDEN_ON_HOSTS.contains(name))
        .map(str::to_owned)
        .collect();
    found.into_iter().collect()
}

/// The `[dependencies]` of `package` that none of `sources` (the Rust files of its library and
/// binaries) refers to, and the entries of `exceptions` for `package` that are no longer needed,
/// as one message each.
pub fn unused_dependencies(
    package: &Package,
    sources: &[String],
    exceptions: &[(&str, &str, &str)],
) -> Vec<String> {
    let mut violations = Vec::new();
    let excepted = |name: &str| {
        exceptions.iter().any(|(krate, excepted, _)| *krate == package.name && *excepted == name)
    };
    let normal = package.dependencies.iter().filter(|dependency| dependency.kind == Kind::Normal);
    for dependency in normal {
        let used = sources.iter().any(|source| refers_to(source, &dependency.source_name));
        if used && excepted(&dependency.name) {
            violations.push(format!(
                "`{}` now uses `{}`: remove it from UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs",
                package.name, dependency.name
            ));
        } else if !used && !excepted(&dependency.name) {
            violations.push(format!(
                "`{}` declares `{}` in [dependencies] but its sources never name it (remove it, or list it with a reason in UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs)",
                package.name, dependency.name
            ));
        }
    }
    for (krate, name, _) in exceptions {
        let declared = package
            .dependencies
            .iter()
            .any(|dependency| dependency.kind == Kind::Normal && dependency.name == *name);
        if *krate == package.name && !declared {
            violations.push(format!(
                "`{krate}` no longer declares `{name}`: remove it from UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs"
            ));
        }
    }
    violations
}

/// Whether Rust `source` names the crate `ident` as `ident::`, `ident!`, `use ident` or
/// `extern crate ident`, outside line comments. A path such as `crate::ident::` or
/// `std::ident::` does not count.
fn refers_to(source: &str, ident: &str) -> bool {
    source.lines().filter(|line| !line.trim_start().starts_with("//")).any(|line| {
        line.match_indices(ident).any(|(start, _)| {
            let before = &line[..start];
            let after = &line[start + ident.len()..];
            let starts_a_token =
                !before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
            let ends_a_token = !after.starts_with(|c: char| c.is_alphanumeric() || c == '_');
            let words_before: Vec<&str> = before.split_whitespace().rev().take(2).collect();
            starts_a_token
                && ends_a_token
                && (after.starts_with("::")
                    || after.starts_with('!')
                    || words_before.first() == Some(&"use")
                    || words_before == ["crate", "extern"])
        })
    })
}

/// Removes text in parentheses (nested ones included).
fn without_remarks(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The words in backticks, in order.
fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn listed(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        return "no crate of ours".to_owned();
    }
    names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    const TABLE: &str = "
Some text.

Dependency direction (nothing points upward):

| crate | may depend on |
|---|---|
| `domain`, `api-types` | no crate of ours |
| `store` | `domain` |
| `server` | all of the above |
| `agent` | `api-types`, `domain` (not `store`: see `server`) |
| `test-support` (dev-dependency only) | `server` |
| `ambient` (binary) | `server`, `agent` |

Another paragraph.
";

    fn package(name: &str, dependencies: &[(&str, Kind)]) -> Package {
        Package {
            name: name.to_owned(),
            dependencies: dependencies
                .iter()
                .map(|(name, kind)| Dependency {
                    name: (*name).to_owned(),
                    source_name: name.replace('-', "_"),
                    kind: *kind,
                    workspace: true,
                })
                .collect(),
            source_paths: Vec::new(),
        }
    }

    /// Checks `packages` against [`TABLE`] and prints one violation a line.
    #[track_caller]
    fn check_edges(packages: &[Package], expect: Expect) {
        let table = parse_table(TABLE).unwrap();
        expect.assert_eq(&table_violations(&table, packages).join("\n"));
    }

    /// Prints the messages about `dependencies` of crate `example` that `source` does not use,
    /// with `exceptions` for it.
    #[track_caller]
    fn check_unused(dependencies: &[&str], source: &str, exceptions: &[&str], expect: Expect) {
        let package = package(
            "example",
            &dependencies.iter().map(|name| (*name, Kind::Normal)).collect::<Vec<_>>(),
        );
        let exceptions: Vec<(&str, &str, &str)> =
            exceptions.iter().map(|name| ("example", *name, "a reason")).collect();
        let violations = unused_dependencies(&package, &[source.to_owned()], &exceptions);
        expect.assert_eq(&violations.join("\n"));
    }

    #[test]
    fn the_table_is_read_with_its_remarks_and_markers() {
        let table = parse_table(TABLE).unwrap();
        let printed: Vec<String> = table
            .iter()
            .map(|(name, rule)| {
                let marker = if rule.dev_only { " (dev only)" } else { "" };
                format!("{name}{marker}: {}", listed(&rule.allowed))
            })
            .collect();
        expect![[r#"
            agent: `api-types`, `domain`
            ambient: `agent`, `server`
            api-types: no crate of ours
            domain: no crate of ours
            server: `api-types`, `domain`, `store`
            store: `domain`
            test-support (dev only): `server`"#]]
        .assert_eq(&printed.join("\n"));
    }

    #[test]
    fn the_real_table_parses_and_keeps_the_agent_away_from_the_server() {
        let architecture = std::fs::read_to_string(crate::root().join("ARCHITECTURE.md")).unwrap();
        let table = parse_table(&architecture).unwrap();
        for agent in AGENT_PACKAGES {
            let allowed = &table[*agent].allowed;
            for forbidden in FORBIDDEN_ON_HOSTS {
                assert!(!allowed.contains(*forbidden), "the table lets {agent} use {forbidden}");
            }
        }
        assert!(table["test-support"].dev_only);
        assert!(table["test-postgres"].dev_only);
    }

    #[test]
    fn the_workspace_follows_the_table_and_uses_its_dependencies() {
        let violations = crate::metadata_violations().unwrap();
        assert!(violations.is_empty(), "{violations:#?}");
    }

    #[test]
    fn a_table_without_rows_or_with_a_bad_row_is_an_error() {
        let missing = parse_table("# Architecture\n").unwrap_err();
        assert_eq!(missing.to_string(), "ARCHITECTURE.md has no \"Dependency direction\" table");
        let vague =
            parse_table("Dependency direction\n\n| a | b |\n|---|---|\n| `x` | anything |\n")
                .unwrap_err();
        assert_eq!(
            vague.to_string(),
            "table row \"| `x` | anything |\": write the crates in backticks or \"no crate of ours\""
        );
    }

    #[test]
    fn allowed_edges_pass() {
        check_edges(
            &[
                package("domain", &[]),
                package("api-types", &[]),
                package("store", &[("domain", Kind::Normal), ("test-support", Kind::Dev)]),
                package("server", &[("store", Kind::Normal), ("api-types", Kind::Normal)]),
                package("agent", &[("domain", Kind::Normal), ("server", Kind::Dev)]),
                package("test-support", &[("server", Kind::Normal)]),
                package("ambient", &[("agent", Kind::Normal), ("test-support", Kind::Dev)]),
            ],
            expect![""],
        );
    }

    #[test]
    fn an_edge_the_table_does_not_allow_names_the_crate_and_the_edge() {
        check_edges(
            &[
                package("domain", &[]),
                package("api-types", &[]),
                package("store", &[("api-types", Kind::Build)]),
                package("server", &[]),
                package("agent", &[("store", Kind::Normal)]),
                package("test-support", &[]),
                package("ambient", &[("test-support", Kind::Normal)]),
            ],
            expect![[r#"
                `store` depends on `api-types` ([build-dependencies]), an edge the dependency table of ARCHITECTURE.md does not allow (`store` may depend on `domain`)
                `agent` depends on `store` ([dependencies]), an edge the dependency table of ARCHITECTURE.md does not allow (`agent` may depend on `api-types`, `domain`)
                `ambient` has `test-support` in [dependencies], but ARCHITECTURE.md marks `test-support` dev-dependency only"#]],
        );
    }

    #[test]
    fn crates_missing_from_either_side_are_named() {
        check_edges(
            &[
                package("domain", &[]),
                package("api-types", &[]),
                package("store", &[]),
                package("server", &[]),
                package("agent", &[]),
                package("ambient", &[]),
                package("console", &[]),
            ],
            expect![[r#"
                the dependency table of ARCHITECTURE.md names `test-support`, which is not a crate of the workspace
                crate `console` has no row in the dependency table of ARCHITECTURE.md"#]],
        );
    }

    #[test]
    fn tree_check_finds_forbidden_crates() {
        let tree = "agent v0.0.0 (/w/crates/agent)\nclient v0.0.0 (/w)\nstore v0.0.0 (/w)\nstore v0.0.0 (/w)\nserver v0.0.0 (/w)\n";
        assert_eq!(forbidden_in_tree(tree), vec!["server".to_owned(), "store".to_owned()]);
        assert!(forbidden_in_tree("agent v0.0.0\nstorage v1.0.0\n").is_empty());
    }

    #[test]
    fn dependencies_named_in_paths_uses_and_macros_are_used() {
        check_unused(
            &["serde", "serde-json", "tokio", "anyhow", "thiserror", "base64"],
            "//! Uses nothing in this comment: base64::\nuse serde::Deserialize;\n#[tokio::main]\nasync fn main() { let _ = serde_json::json!({}); anyhow!(\"x\"); }\nuse thiserror;\n",
            &[],
            expect![[r#"
                `example` declares `base64` in [dependencies] but its sources never name it (remove it, or list it with a reason in UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs)"#]],
        );
    }

    #[test]
    fn paths_through_other_crates_or_modules_do_not_count() {
        check_unused(
            &["time", "store", "uuid"],
            "use std::time::Duration;\nuse crate::store::Rows;\nlet _ = tokio::time::sleep;\nlet my_uuid::x = 1;\nlet uuid_v4 = 1;\n",
            &["uuid"],
            expect![[r#"
                `example` declares `time` in [dependencies] but its sources never name it (remove it, or list it with a reason in UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs)
                `example` declares `store` in [dependencies] but its sources never name it (remove it, or list it with a reason in UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs)"#]],
        );
    }

    #[test]
    fn exceptions_that_are_no_longer_needed_are_reported() {
        check_unused(
            &["rustls"],
            "use rustls::ClientConfig;\n",
            &["rustls", "ring"],
            expect![[r#"
                `example` now uses `rustls`: remove it from UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs
                `example` no longer declares `ring`: remove it from UNUSED_DEPENDENCY_EXCEPTIONS in xtask/src/layering.rs"#]],
        );
    }

    #[test]
    fn dev_dependencies_are_not_checked_against_the_sources() {
        let package = package("example", &[("expect-test", Kind::Dev)]);
        assert!(unused_dependencies(&package, &[String::new()], &[]).is_empty());
    }
}
