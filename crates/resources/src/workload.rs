//! A compute resource's Ambient settings, `properties.ambient`: the managed-identity flavour
//! its platform speaks (`identityFlavour`) and which local processes may use its identities
//! (`workloadSelectors`). Checked and normalized when the resource is written
//! ([`normalize`]), read typed with [`AmbientSettings::of`]; nothing else reads them out of JSON.
//!
//! ```json
//! "properties": {
//!   "hostId": "web-01",
//!   "ambient": {
//!     "identityFlavour": "arc",
//!     "workloadSelectors": { "user": "web", "executable": "/usr/bin/python3.11" }
//!   }
//! }
//! ```

use serde_json::{Map, Value};

use crate::model::Resource;
use crate::{Error, Result};

/// The property under `properties` that holds these settings.
pub const PROPERTY: &str = "ambient";
/// Longest value of one workload selector.
pub const SELECTOR_CHARS_MAX: usize = 256;

/// The managed-identity protocols of Azure's platforms (docs/flavours.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityFlavour {
    Imds,
    AppService,
    Arc,
    ServiceFabric,
    Ml,
    CloudShell,
    Workload,
}

/// Which local processes may use a resource's identities; every selector given must match.
/// Values are checked for shape here; names are looked up on the host by its agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadSelectors {
    pub user: Option<String>,
    pub group: Option<String>,
    /// Absolute.
    pub executable: Option<String>,
    /// 64 lower-case hexadecimal digits.
    pub executable_sha256: Option<String>,
    pub systemd_unit: Option<String>,
    /// Absolute, without a trailing `/` (except the root).
    pub cgroup: Option<String>,
    /// 12 to 64 lower-case hexadecimal digits.
    pub container_id: Option<String>,
}

/// `properties.ambient` of a compute resource, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmbientSettings {
    pub identity_flavour: Option<IdentityFlavour>,
    /// `None` (or absent from the body): any local process may use the identities.
    pub workload_selectors: Option<WorkloadSelectors>,
}

const FLAVOURS: [(&str, IdentityFlavour); 7] = [
    ("imds", IdentityFlavour::Imds),
    ("appservice", IdentityFlavour::AppService),
    ("arc", IdentityFlavour::Arc),
    ("servicefabric", IdentityFlavour::ServiceFabric),
    ("ml", IdentityFlavour::Ml),
    ("cloudshell", IdentityFlavour::CloudShell),
    ("workload", IdentityFlavour::Workload),
];

const SELECTOR_FIELDS: [&str; 7] =
    ["user", "group", "executable", "executableSha256", "systemdUnit", "cgroup", "containerId"];

impl IdentityFlavour {
    /// The name on the wire and the command line.
    pub fn as_str(self) -> &'static str {
        FLAVOURS.iter().find(|(_, flavour)| *flavour == self).map_or("imds", |(name, _)| name)
    }

    fn parse(name: &str) -> Option<IdentityFlavour> {
        FLAVOURS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, flavour)| *flavour)
    }
}

impl AmbientSettings {
    /// The settings of `resource`. Stored settings were normalized when written, so a value
    /// that does not parse is a corrupt row.
    pub fn of(resource: &Resource) -> Result<AmbientSettings> {
        match resource.properties.get(PROPERTY) {
            None | Some(Value::Null) => Ok(AmbientSettings::default()),
            Some(value) => parse(value).map_err(|error| {
                Error::Corrupt(format!("resource {}: properties.ambient: {error}", resource.id))
            }),
        }
    }
}

/// Checks `properties.ambient` of a compute resource being written and rewrites it in its
/// normal form (flavour lower-case, selectors as strings, empty parts removed); an empty or
/// `null` value is removed.
pub fn normalize(properties: &mut Map<String, Value>) -> Result<()> {
    let Some(value) = properties.get(PROPERTY) else { return Ok(()) };
    let settings = parse(value)?;
    if settings == AmbientSettings::default() {
        properties.shift_remove(PROPERTY);
    } else {
        properties.insert(PROPERTY.to_owned(), to_json(&settings));
    }
    Ok(())
}

fn invalid(message: String) -> Error {
    Error::bad_request("InvalidRequestContent", message)
}

fn parse(value: &Value) -> Result<AmbientSettings> {
    let map = match value {
        Value::Null => return Ok(AmbientSettings::default()),
        Value::Object(map) => map,
        _ => return Err(invalid("'properties.ambient' must be an object".to_owned())),
    };
    if let Some(unknown) =
        map.keys().find(|key| !["identityFlavour", "workloadSelectors"].contains(&key.as_str()))
    {
        return Err(invalid(format!(
            "'properties.ambient.{unknown}' is not known: use identityFlavour or workloadSelectors"
        )));
    }
    let identity_flavour = match map.get("identityFlavour") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(IdentityFlavour::parse(name).ok_or_else(|| {
            invalid(format!(
                "'properties.ambient.identityFlavour' {name:?} is not one of {}",
                FLAVOURS.map(|(name, _)| name).join(", ")
            ))
        })?),
        Some(_) => {
            return Err(invalid(
                "'properties.ambient.identityFlavour' must be a string".to_owned(),
            ));
        }
    };
    let workload_selectors = match map.get("workloadSelectors") {
        None | Some(Value::Null) => None,
        Some(Value::Object(selectors)) => Some(parse_selectors(selectors)?)
            .filter(|parsed| *parsed != WorkloadSelectors::default()),
        Some(_) => {
            return Err(invalid(
                "'properties.ambient.workloadSelectors' must be an object".to_owned(),
            ));
        }
    };
    Ok(AmbientSettings { identity_flavour, workload_selectors })
}

fn parse_selectors(map: &Map<String, Value>) -> Result<WorkloadSelectors> {
    if let Some(unknown) = map.keys().find(|key| !SELECTOR_FIELDS.contains(&key.as_str())) {
        return Err(invalid(format!(
            "'properties.ambient.workloadSelectors.{unknown}' is not known: use {}",
            SELECTOR_FIELDS.join(", ")
        )));
    }
    let field = |name: &str| -> Result<Option<String>> {
        let text = match map.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(text)) => text.trim().to_owned(),
            Some(Value::Number(number)) if matches!(name, "user" | "group") => number.to_string(),
            Some(_) => {
                return Err(invalid(format!(
                    "'properties.ambient.workloadSelectors.{name}' must be a string"
                )));
            }
        };
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > SELECTOR_CHARS_MAX || text.chars().any(char::is_control) {
            return Err(invalid(format!(
                "'properties.ambient.workloadSelectors.{name}' must be at most {SELECTOR_CHARS_MAX} printable characters"
            )));
        }
        Ok(Some(text))
    };
    let rule = |name: &str, ok: bool, what: &str| -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(invalid(format!("'properties.ambient.workloadSelectors.{name}' must be {what}")))
        }
    };
    let hex = |text: &str| text.bytes().all(|byte| byte.is_ascii_hexdigit());

    let user = field("user")?;
    let group = field("group")?;
    for (name, value) in [("user", &user), ("group", &group)] {
        if let Some(value) = value {
            let numeric = value.bytes().all(|byte| byte.is_ascii_digit());
            let valid_name = !value.starts_with('-')
                && value.bytes().all(|byte| {
                    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b'$')
                });
            rule(
                name,
                numeric && value.parse::<u32>().is_ok() || valid_name,
                "a user or group name, or a number",
            )?;
        }
    }
    let executable = field("executable")?;
    if let Some(path) = &executable {
        rule("executable", path.starts_with('/') && !path.contains("/../"), "an absolute path")?;
    }
    let executable_sha256 = field("executableSha256")?.map(|text| text.to_ascii_lowercase());
    if let Some(digest) = &executable_sha256 {
        rule("executableSha256", digest.len() == 64 && hex(digest), "64 hexadecimal digits")?;
    }
    let systemd_unit = field("systemdUnit")?;
    if let Some(unit) = &systemd_unit {
        rule(
            "systemdUnit",
            !unit.contains('/') && unit.contains('.'),
            "a unit name such as web.service",
        )?;
    }
    let cgroup = field("cgroup")?
        .map(|path| if path.len() > 1 { path.trim_end_matches('/').to_owned() } else { path });
    if let Some(path) = &cgroup {
        rule("cgroup", path.starts_with('/'), "an absolute cgroup path")?;
    }
    let container_id = field("containerId")?.map(|text| text.to_ascii_lowercase());
    if let Some(id) = &container_id {
        rule(
            "containerId",
            (12..=64).contains(&id.len()) && hex(id),
            "12 to 64 hexadecimal digits",
        )?;
    }
    Ok(WorkloadSelectors {
        user,
        group,
        executable,
        executable_sha256,
        systemd_unit,
        cgroup,
        container_id,
    })
}

fn to_json(settings: &AmbientSettings) -> Value {
    let mut map = Map::new();
    if let Some(flavour) = settings.identity_flavour {
        map.insert("identityFlavour".to_owned(), Value::String(flavour.as_str().to_owned()));
    }
    if let Some(selectors) = &settings.workload_selectors {
        let mut fields = Map::new();
        for (name, value) in [
            ("user", &selectors.user),
            ("group", &selectors.group),
            ("executable", &selectors.executable),
            ("executableSha256", &selectors.executable_sha256),
            ("systemdUnit", &selectors.systemd_unit),
            ("cgroup", &selectors.cgroup),
            ("containerId", &selectors.container_id),
        ] {
            if let Some(value) = value {
                fields.insert(name.to_owned(), Value::String(value.clone()));
            }
        }
        map.insert("workloadSelectors".to_owned(), Value::Object(fields));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check(ambient: Value, expected: Expect) {
        let mut properties = Map::new();
        properties.insert(PROPERTY.to_owned(), ambient);
        let outcome = match normalize(&mut properties) {
            Ok(()) => Value::Object(properties).to_string(),
            Err(error) => format!("error: {error}"),
        };
        expected.assert_eq(&outcome);
    }

    #[test]
    fn flavours_are_normalized_and_unknown_ones_refused() {
        check(
            json!({"identityFlavour": "ServiceFabric"}),
            expect![[r#"{"ambient":{"identityFlavour":"servicefabric"}}"#]],
        );
        check(
            json!({"identityFlavour": "lambda"}),
            expect![[
                r#"error: 'properties.ambient.identityFlavour' "lambda" is not one of imds, appservice, arc, servicefabric, ml, cloudshell, workload"#
            ]],
        );
        check(
            json!({"identityFlavour": 3}),
            expect!["error: 'properties.ambient.identityFlavour' must be a string"],
        );
        check(
            json!({"flavour": "arc"}),
            expect![
                "error: 'properties.ambient.flavour' is not known: use identityFlavour or workloadSelectors"
            ],
        );
    }

    #[test]
    fn selectors_are_checked_and_empty_settings_removed() {
        check(
            json!({"workloadSelectors": {"user": 1001, "group": "web", "executable": "/usr/bin/python3", "executableSha256": "AB".repeat(32), "cgroup": "/system.slice/web.service/", "containerId": "ABCDEF012345"}}),
            expect![[
                r#"{"ambient":{"workloadSelectors":{"user":"1001","group":"web","executable":"/usr/bin/python3","executableSha256":"abababababababababababababababababababababababababababababababab","cgroup":"/system.slice/web.service","containerId":"abcdef012345"}}}"#
            ]],
        );
        check(json!({"workloadSelectors": {}}), expect!["{}"]);
        check(json!(null), expect!["{}"]);
        check(json!({"workloadSelectors": {"user": ""}}), expect!["{}"]);
        check(
            json!({"workloadSelectors": {"executable": "python3"}}),
            expect![
                "error: 'properties.ambient.workloadSelectors.executable' must be an absolute path"
            ],
        );
        check(
            json!({"workloadSelectors": {"user": "-rf"}}),
            expect![
                "error: 'properties.ambient.workloadSelectors.user' must be a user or group name, or a number"
            ],
        );
        check(
            json!({"workloadSelectors": {"containerId": "abc"}}),
            expect![
                "error: 'properties.ambient.workloadSelectors.containerId' must be 12 to 64 hexadecimal digits"
            ],
        );
        check(
            json!({"workloadSelectors": {"pid": 1}}),
            expect![
                "error: 'properties.ambient.workloadSelectors.pid' is not known: use user, group, executable, executableSha256, systemdUnit, cgroup, containerId"
            ],
        );
        check(json!("arc"), expect!["error: 'properties.ambient' must be an object"]);
    }
}
