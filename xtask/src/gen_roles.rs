//! `cargo xtask gen-roles`: turns a published list of Azure's built-in role definitions into
//! the Rust table the `rbac` crate embeds (`crates/rbac/src/builtin/roles.rs`).
//!
//! Two kinds of source are read:
//! - a JSON file holding an array of role definitions, as `az role definition list` prints
//!   them (flat) or as ARM returns them (`{"value": [{"name": .., "properties": {..}}]}`);
//! - a directory of Markdown pages with one fenced `json` block per role, as Microsoft's
//!   "Azure built-in roles" pages (`articles/role-based-access-control/built-in-roles/*.md` in
//!   MicrosoftDocs/azure-docs) embed them.
//!
//! Only entries whose `roleType` is `BuiltInRole` are kept; an export taken in a real tenant
//! also lists that tenant's custom roles. The output is sorted by role name and formatted with
//! rustfmt, so regenerating from the same source gives the same file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// Where the generated table goes, relative to the workspace root.
pub const OUTPUT_PATH: &str = "crates/rbac/src/builtin/roles.rs";

/// What `cargo xtask gen-roles` was asked to do.
pub struct GenRolesOptions {
    /// The JSON file or Markdown directory to read.
    pub source_path: PathBuf,
    /// Where the source came from (repository, path, commit, date), copied into the header.
    pub provenance: String,
}

/// One built-in role as read from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Role {
    id: String,
    name: String,
    description: String,
    /// `None` when the source leaves the field out.
    assignable_scopes: Option<Vec<String>>,
    permissions: Vec<Block>,
}

/// One permission block as read from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    actions: Vec<String>,
    not_actions: Vec<String>,
    data_actions: Vec<String>,
    not_data_actions: Vec<String>,
    condition: Option<String>,
    condition_version: Option<String>,
}

/// Reads the source, writes the table to `output` and formats it with rustfmt.
pub fn gen_roles(options: &GenRolesOptions, output: &Path) -> Result<()> {
    let entries = read_source(&options.source_path)?;
    let (roles, skipped) = builtin_roles(&entries)?;
    let text = render(&roles, &options.provenance);
    std::fs::write(output, text).with_context(|| format!("write {}", output.display()))?;
    let status = Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(output)
        .status()
        .context("run rustfmt")?;
    ensure!(status.success(), "rustfmt failed on {} ({status})", output.display());
    eprintln!(
        "xtask: wrote {} built-in roles to {} (skipped {skipped} entries that are not built-in)",
        roles.len(),
        output.display()
    );
    Ok(())
}

/// Every role definition object in the source, in source order.
fn read_source(path: &Path) -> Result<Vec<Value>> {
    if path.is_dir() {
        let mut pages: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("read directory {}", path.display()))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()?;
        pages.retain(|page| page.extension().is_some_and(|extension| extension == "md"));
        pages.sort();
        let mut entries = Vec::new();
        for page in pages {
            let text = std::fs::read_to_string(&page)
                .with_context(|| format!("read {}", page.display()))?;
            for block in json_blocks(&text) {
                let entry: Value = serde_json::from_str(block)
                    .with_context(|| format!("parse a json block in {}", page.display()))?;
                entries.push(entry);
            }
        }
        Ok(entries)
    } else {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let document: Value =
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        match document {
            Value::Array(entries) => Ok(entries),
            Value::Object(mut object) => match object.remove("value") {
                Some(Value::Array(entries)) => Ok(entries),
                _ => bail!("{}: expected an array or an object with `value`", path.display()),
            },
            _ => bail!("{}: expected an array of role definitions", path.display()),
        }
    }
}

/// The bodies of the fenced ```` ```json ```` blocks in a Markdown page.
fn json_blocks(markdown: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + "```json\n".len()..];
        let Some(end) = body.find("\n```") else { break };
        blocks.push(&body[..end]);
        rest = &body[end + "\n```".len()..];
    }
    blocks
}

/// The built-in roles among `entries`, sorted by name, and how many entries were not built-in.
/// Identical duplicates (a role listed on two pages) collapse; conflicting ones are an error.
fn builtin_roles(entries: &[Value]) -> Result<(Vec<Role>, usize)> {
    let mut by_id: BTreeMap<String, Role> = BTreeMap::new();
    let mut skipped = 0;
    for entry in entries {
        let properties = entry.get("properties").unwrap_or(entry);
        if properties.get("roleType").and_then(Value::as_str) != Some("BuiltInRole") {
            skipped += 1;
            continue;
        }
        let role = parse_role(entry, properties)?;
        match by_id.get(&role.id) {
            Some(existing) if *existing == role => {}
            Some(existing) => {
                bail!("role {} is listed twice, differently ({})", role.id, existing.name)
            }
            None => {
                by_id.insert(role.id.clone(), role);
            }
        }
    }
    let mut roles: Vec<Role> = by_id.into_values().collect();
    roles.sort_by(|a, b| {
        a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.id.cmp(&b.id))
    });
    for pair in roles.windows(2) {
        ensure!(
            !pair[0].name.eq_ignore_ascii_case(&pair[1].name),
            "two built-in roles are named {:?}",
            pair[0].name
        );
    }
    ensure!(!roles.is_empty(), "the source holds no built-in role");
    Ok((roles, skipped))
}

fn parse_role(entry: &Value, properties: &Value) -> Result<Role> {
    // `name` is the GUID; ARM's `id` ends with it.
    let id = entry
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| entry.get("id").and_then(Value::as_str).and_then(|id| id.rsplit('/').next()))
        .context("a role definition has neither name nor id")?
        .to_ascii_lowercase();
    ensure!(is_guid(&id), "role definition name {id:?} is not a GUID");
    let name =
        string(properties, "roleName")?.with_context(|| format!("role {id} has no roleName"))?;
    ensure!(!name.trim().is_empty(), "role {id} has an empty roleName");
    let description = string(properties, "description")?.unwrap_or_default();
    let assignable_scopes = match properties.get("assignableScopes") {
        None | Some(Value::Null) => None,
        Some(_) => Some(strings(properties, "assignableScopes")?),
    };
    let blocks = properties
        .get("permissions")
        .and_then(Value::as_array)
        .with_context(|| format!("role {id} has no permissions array"))?;
    let permissions = blocks
        .iter()
        .map(|block| {
            Ok(Block {
                actions: strings(block, "actions")?,
                not_actions: strings(block, "notActions")?,
                data_actions: strings(block, "dataActions")?,
                not_data_actions: strings(block, "notDataActions")?,
                condition: string(block, "condition")?,
                condition_version: string(block, "conditionVersion")?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("role {id} ({name})"))?;
    Ok(Role { id, name, description, assignable_scopes, permissions })
}

/// The string at `key`; `None` when it is absent or null.
fn string(object: &Value, key: &str) -> Result<Option<String>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => bail!("{key} is not a string: {other}"),
    }
}

/// The array of strings at `key`; empty when it is absent or null.
fn strings(object: &Value, key: &str) -> Result<Vec<String>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).with_context(|| format!("{key}: {item}")))
            .collect(),
        Some(other) => bail!("{key} is not an array: {other}"),
    }
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| {
            group.len() == len && group.bytes().all(|byte| byte.is_ascii_hexdigit())
        })
}

/// The generated module. Strings are written with `{:?}`, which gives valid Rust literals.
fn render(roles: &[Role], provenance: &str) -> String {
    let defaulted = roles.iter().filter(|role| role.assignable_scopes.is_none()).count();
    let conditioned =
        roles.iter().filter(|role| role.permissions.iter().any(|b| b.condition.is_some())).count();
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(
        "//! Azure's built-in role definitions. Generated by `cargo xtask gen-roles`: do not edit.",
    );
    line("//!");
    for source_line in provenance.lines() {
        line(format!("//! {source_line}").trim_end());
    }
    line("//!");
    line(&format!(
        "//! {} roles, sorted by role name; {conditioned} of them have a block with an ABAC condition.",
        roles.len()
    ));
    if defaulted > 0 {
        line(&format!(
            "//! The source gives no assignableScopes for {defaulted} of them; they get `/`, where Azure assigns every built-in role."
        ));
    }
    line(
        "//! Regenerate with `cargo xtask gen-roles <source> --provenance <text>` (see `crate::builtin`).",
    );
    line("");
    line("use crate::builtin::{BuiltinPermission, BuiltinSpec};");
    line("");
    line("pub(super) static BUILTIN_SPECS: &[BuiltinSpec] = &[");
    for role in roles {
        let mut text = String::new();
        let scopes = role.assignable_scopes.clone().unwrap_or_else(|| vec!["/".to_owned()]);
        let _ = writeln!(text, "BuiltinSpec {{");
        let _ = writeln!(text, "id: {:?},", role.id);
        let _ = writeln!(text, "name: {:?},", role.name);
        let _ = writeln!(text, "description: {:?},", role.description);
        let _ = writeln!(text, "assignable_scopes: {},", list(&scopes));
        let _ = writeln!(text, "permissions: &[");
        for block in &role.permissions {
            let _ = writeln!(text, "BuiltinPermission {{");
            let _ = writeln!(text, "actions: {},", list(&block.actions));
            let _ = writeln!(text, "not_actions: {},", list(&block.not_actions));
            let _ = writeln!(text, "data_actions: {},", list(&block.data_actions));
            let _ = writeln!(text, "not_data_actions: {},", list(&block.not_data_actions));
            let _ = writeln!(text, "condition: {:?},", block.condition);
            let _ = writeln!(text, "condition_version: {:?},", block.condition_version);
            let _ = writeln!(text, "}},");
        }
        let _ = writeln!(text, "],");
        let _ = write!(text, "}},");
        line(&text);
    }
    line("];");
    out
}

/// A `&[..]` literal with one string per line, so that a regenerated table diffs by action.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "&[]".to_owned();
    }
    let mut text = "&[\n".to_owned();
    for item in items {
        let _ = writeln!(text, "{item:?},");
    }
    text.push(']');
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_both_cli_and_arm_shapes_and_keeps_only_built_in_roles() {
        let entries = vec![
            json!({"name": "8E3AF657-A8FF-443C-A75C-2FE8C4BCB635", "roleName": "Owner",
                   "roleType": "BuiltInRole", "description": "All.", "assignableScopes": ["/"],
                   "permissions": [{"actions": ["*"], "notActions": [], "condition": null}]}),
            json!({"id": "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
                   "properties": {"roleName": "Reader", "type": "BuiltInRole", "roleType": "BuiltInRole",
                   "permissions": [{"actions": ["*/read"], "condition": "x", "conditionVersion": "2.0"}]}}),
            json!({"name": "d70a921c-410c-4bb0-873c-473973d0e7e7", "roleName": "mine",
                   "roleType": "CustomRole", "permissions": []}),
        ];
        let (roles, skipped) = builtin_roles(&entries).unwrap();
        assert_eq!(skipped, 1);
        let summary: Vec<String> = roles
            .iter()
            .map(|role| {
                format!(
                    "{} {} {:?} {:?}",
                    role.id, role.name, role.assignable_scopes, role.permissions
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "8e3af657-a8ff-443c-a75c-2fe8c4bcb635 Owner Some([\"/\"]) [Block { actions: [\"*\"], not_actions: [], data_actions: [], not_data_actions: [], condition: None, condition_version: None }]",
                "acdd72a7-3385-48ef-bd42-f606fba81ae7 Reader None [Block { actions: [\"*/read\"], not_actions: [], data_actions: [], not_data_actions: [], condition: Some(\"x\"), condition_version: Some(\"2.0\") }]",
            ]
        );
    }

    #[test]
    fn rejects_conflicting_duplicates_and_bad_guids() {
        let role = |name: &str| {
            json!({"name": "acdd72a7-3385-48ef-bd42-f606fba81ae7", "roleName": name,
                   "roleType": "BuiltInRole", "permissions": []})
        };
        assert_eq!(builtin_roles(&[role("Reader"), role("Reader")]).unwrap().0.len(), 1);
        let error = builtin_roles(&[role("Reader"), role("Other")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "role acdd72a7-3385-48ef-bd42-f606fba81ae7 is listed twice, differently (Reader)"
        );
        let bad = json!({"name": "not-a-guid", "roleName": "X", "roleType": "BuiltInRole", "permissions": []});
        assert_eq!(
            builtin_roles(&[bad]).unwrap_err().to_string(),
            "role definition name \"not-a-guid\" is not a GUID"
        );
    }

    #[test]
    fn finds_the_json_blocks_of_a_docs_page() {
        let page = "## Reader\n\nView.\n\n```json\n{\"a\": 1}\n```\n\n## B\n\n```json\n{\n  \"b\": 2\n}\n```\n";
        assert_eq!(json_blocks(page), ["{\"a\": 1}", "{\n  \"b\": 2\n}"]);
    }

    #[test]
    fn renders_strings_as_valid_literals() {
        let role = Role {
            id: "acdd72a7-3385-48ef-bd42-f606fba81ae7".to_owned(),
            name: "Reader".to_owned(),
            description: "Say \"hi\"\\".to_owned(),
            assignable_scopes: None,
            permissions: vec![Block {
                actions: vec!["*/read".to_owned()],
                not_actions: Vec::new(),
                data_actions: Vec::new(),
                not_data_actions: Vec::new(),
                condition: None,
                condition_version: None,
            }],
        };
        let text = render(&[role], "Source: test.");
        assert!(text.contains("description: \"Say \\\"hi\\\"\\\\\",\n"), "{text}");
        assert!(text.contains("assignable_scopes: &[\n\"/\",\n],\n"), "{text}");
        assert!(text.contains("//! The source gives no assignableScopes for 1 of them"), "{text}");
        assert!(text.starts_with("//! Azure's built-in role definitions."), "{text}");
    }
}
