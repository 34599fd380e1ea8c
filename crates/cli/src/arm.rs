//! What the control-plane commands share: the signed-in [`Arm`] context (client and
//! subscription), [`Request`] values built by pure functions, resource ids and api-versions,
//! `nextLink` paging, `--tags` parsing, az's `resourceGroup` decoration and confirmation prompts.

use std::io::IsTerminal as _;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::GlobalArgs;
use crate::profile;

/// The api-version sent for each resource provider (the server accepts any).
pub const API_MANAGED_IDENTITY: &str = "2024-11-30";
pub const API_COMPUTE: &str = "2024-07-01";
pub const API_WEB: &str = "2023-12-01";
pub const API_AUTHORIZATION: &str = "2022-04-01";
pub const API_SUBSCRIPTIONS: &str = "2022-12-01";
pub const API_RESOURCE_GROUPS: &str = "2021-04-01";
pub const API_INSIGHTS: &str = "2015-04-01";

/// At most this many pages are followed through `nextLink`, so a server bug cannot loop us.
pub const LIST_PAGES_MAX: usize = 1000;

/// `--subscription`, accepted anywhere under a control-plane group.
#[derive(Debug, Clone, Args)]
pub struct SubscriptionArgs {
    /// The subscription id [default: the profile's subscription].
    #[arg(long, global = true, value_name = "ID")]
    pub subscription: Option<String>,
}

/// Names a resource the way az does: `-g RG -n NAME`, or `--ids ID...`.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The resource group.
    #[arg(long, short = 'g', required_unless_present = "ids")]
    pub resource_group: Option<String>,
    /// The resource name.
    #[arg(long, short = 'n', required_unless_present = "ids")]
    pub name: Option<String>,
    /// One or more full resource ids (instead of -g and -n).
    #[arg(long, num_args = 1.., conflicts_with_all = ["resource_group", "name"], value_name = "ID")]
    pub ids: Vec<String>,
}

impl TargetArgs {
    /// The full ids of the resources named, of type `resource_type` in `subscription`.
    pub fn resource_ids(&self, subscription: &str, resource_type: &str) -> Result<Vec<String>> {
        if !self.ids.is_empty() {
            return Ok(self.ids.clone());
        }
        match (&self.resource_group, &self.name) {
            (Some(group), Some(name)) => {
                Ok(vec![resource_id(subscription, group, resource_type, name)])
            }
            _ => bail!("pass --resource-group and --name, or --ids"),
        }
    }
}

/// An HTTP method of the management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Patch,
    Delete,
}

/// One management API call, built by a pure function so it can be tested without a server.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    /// Path and query, relative to the server URL.
    pub path: String,
    pub body: Option<Value>,
}

impl Request {
    pub fn get(path: String) -> Request {
        Request { method: Method::Get, path, body: None }
    }

    pub fn put(path: String, body: Value) -> Request {
        Request { method: Method::Put, path, body: Some(body) }
    }

    pub fn patch(path: String, body: Value) -> Request {
        Request { method: Method::Patch, path, body: Some(body) }
    }

    pub fn delete(path: String) -> Request {
        Request { method: Method::Delete, path, body: None }
    }
}

/// A signed-in client of the management API and the subscription commands act in.
pub struct Arm {
    pub client: client::Client,
    pub subscription: String,
}

impl Arm {
    /// Loads the profile and picks the subscription: `--subscription`, else the profile's.
    pub fn connect(global: &GlobalArgs, subscription: &SubscriptionArgs) -> Result<Arm> {
        let profile = profile::load(&global.home)?;
        let subscription = match subscription.subscription.clone().or(profile.subscription.clone())
        {
            Some(subscription) => subscription,
            None => bail!(
                "no subscription: pass --subscription, or sign in with `ambient login --subscription ID`"
            ),
        };
        Ok(Arm { client: profile::client(&global.home, &profile)?, subscription })
    }

    /// Sends one request and returns the JSON answer (`Value::Null` for an empty one).
    pub async fn send(&self, request: &Request) -> Result<Value> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        Ok(self.client.request(method, &request.path, request.body.as_ref()).await?)
    }

    /// `GET path`.
    pub async fn get(&self, path: String) -> Result<Value> {
        self.send(&Request::get(path)).await
    }

    /// `GET path`, or `None` when the server answers 404.
    pub async fn get_optional(&self, path: String) -> Result<Option<Value>> {
        match self.client.get(&path).await {
            Ok(value) => Ok(Some(value)),
            Err(client::ClientError::Api { status: 404, .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Every element of a list, following `nextLink` until `max` elements.
    pub async fn list(&self, path: String, max: usize) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(path);
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > LIST_PAGES_MAX {
                bail!("the list has more than {LIST_PAGES_MAX} pages: narrow it down");
            }
            let page = self.client.get(&path).await?;
            next = page
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|link| !link.is_empty())
                .map(|link| next_path(self.client.base_url(), link));
            items.extend(client::values(page));
            if items.len() >= max {
                items.truncate(max);
                break;
            }
        }
        Ok(items)
    }
}

/// `/subscriptions/{s}/resourceGroups/{rg}`.
pub fn group_id(subscription: &str, group: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{group}")
}

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/{type}/{name}`.
pub fn resource_id(subscription: &str, group: &str, resource_type: &str, name: &str) -> String {
    format!("{}/providers/{resource_type}/{name}", group_id(subscription, group))
}

/// The request path of `id` with its api-version; each segment is percent-encoded.
pub fn path(id: &str, api_version: &str) -> String {
    let encoded: Vec<String> = id.split('/').map(client::encode).collect();
    format!("{}?api-version={api_version}", encoded.join("/"))
}

/// `path` plus an encoded `$filter`.
pub fn path_with_filter(id: &str, api_version: &str, filter: Option<&str>) -> String {
    match filter {
        Some(filter) => format!("{}&$filter={}", path(id, api_version), client::encode(filter)),
        None => path(id, api_version),
    }
}

/// The api-version for a resource id, from its (innermost) provider namespace.
pub fn api_version_for(id: &str) -> &'static str {
    let lower = id.to_ascii_lowercase();
    match lower.rfind("/providers/") {
        Some(at) => match lower[at + "/providers/".len()..].split('/').next().unwrap_or_default() {
            "microsoft.managedidentity" => API_MANAGED_IDENTITY,
            "microsoft.compute" => API_COMPUTE,
            "microsoft.web" => API_WEB,
            "microsoft.authorization" => API_AUTHORIZATION,
            "microsoft.insights" => API_INSIGHTS,
            _ => API_RESOURCE_GROUPS,
        },
        None if lower.contains("/resourcegroups/") => API_RESOURCE_GROUPS,
        None => API_SUBSCRIPTIONS,
    }
}

/// The resource group named in `id`, if any (segment names compare case-insensitively).
pub fn resource_group_of(id: &str) -> Option<&str> {
    let segments: Vec<&str> = id.split('/').collect();
    segments
        .windows(2)
        .find(|pair| pair[0].eq_ignore_ascii_case("resourceGroups"))
        .map(|pair| pair[1])
        .filter(|group| !group.is_empty())
}

/// The last path segment of an id (a resource's name, a role's GUID).
pub fn last_segment(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

/// Whether two resource ids name the same resource (ARM compares ids case-insensitively).
pub fn same_id(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// Whether `text` is a GUID (`8-4-4-4-12` hex digits).
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, length)| {
            group.len() == length && group.chars().all(|c| c.is_ascii_hexdigit())
        })
}

/// The path of a `nextLink`: the base URL stripped, or else the scheme and host (the token is
/// only ever sent to the profile's server).
pub fn next_path(base_url: &str, link: &str) -> String {
    if let Some(rest) = link.strip_prefix(base_url) {
        return rest.to_owned();
    }
    match link.find("://") {
        Some(at) => {
            let rest = &link[at + 3..];
            rest.find('/').map_or_else(|| "/".to_owned(), |slash| rest[slash..].to_owned())
        }
        None => link.to_owned(),
    }
}

/// az's `--tags a=b c=d` (a bare `a` means an empty value, `""` alone clears the tags).
pub fn parse_tags(tags: &[String]) -> Result<Value> {
    let mut map = Map::new();
    for tag in tags {
        if tag.is_empty() {
            continue;
        }
        let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
        if key.is_empty() {
            bail!("--tags takes KEY=VALUE pairs (got '{tag}')");
        }
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(Value::Object(map))
}

/// Adds `resourceGroup` to every object with an `id` under a resource group, at any depth,
/// as az does to every result.
pub fn add_resource_group(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(add_resource_group),
        Value::Object(map) => {
            let has_group = map.keys().any(|key| key.eq_ignore_ascii_case("resourceGroup"));
            if !has_group
                && let Some(group) =
                    map.get("id").and_then(Value::as_str).and_then(resource_group_of)
            {
                map.insert("resourceGroup".to_owned(), Value::String(group.to_owned()));
            }
            map.values_mut().for_each(add_resource_group);
        }
        _ => {}
    }
}

/// A resource with its `properties` moved to the top level, as az's SDK models print.
/// `renames` gives new names for properties that would clash (`type` -> `roleType`).
pub fn flatten_properties(resource: &Value, renames: &[(&str, &str)]) -> Value {
    let Value::Object(map) = resource else { return resource.clone() };
    let mut out = Map::new();
    for (key, value) in map {
        if key != "properties" {
            out.insert(key.clone(), value.clone());
        }
    }
    if let Some(Value::Object(properties)) = map.get("properties") {
        for (key, value) in properties {
            let name =
                renames.iter().find(|(from, _)| from == key).map_or(key.as_str(), |(_, to)| to);
            out.entry(name.to_owned()).or_insert_with(|| value.clone());
        }
    }
    let mut out = Value::Object(out);
    add_resource_group(&mut out);
    out
}

/// Asks before a destructive operation unless `--yes` was given, as az does.
pub fn confirm(yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("pass --yes to confirm: there is no terminal to ask on");
    }
    eprint!("Are you sure you want to perform this operation? (y/n): ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("read the answer")?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("operation cancelled"),
    }
}

/// `{"location", "tags"}`, the body of a simple resource PUT (tags only when given).
pub fn location_and_tags(location: &str, tags: Option<&[String]>) -> Result<Value> {
    let mut body = json!({"location": location});
    if let Some(tags) = tags {
        body["tags"] = parse_tags(tags)?;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_paths() {
        let id =
            resource_id("s1", "rg1", "Microsoft.ManagedIdentity/userAssignedIdentities", "id 1");
        assert_eq!(
            id,
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id 1"
        );
        assert_eq!(
            path(&id, API_MANAGED_IDENTITY),
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id%201?api-version=2024-11-30"
        );
        assert_eq!(
            path_with_filter(
                "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments",
                API_AUTHORIZATION,
                Some("atScope()")
            ),
            "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope%28%29"
        );
        assert_eq!(
            resource_group_of("/subscriptions/s/resourcegroups/RG/providers/x/y/z"),
            Some("RG")
        );
        assert_eq!(resource_group_of("/subscriptions/s"), None);
        assert_eq!(
            api_version_for(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"
            ),
            API_COMPUTE
        );
        assert_eq!(api_version_for("/subscriptions/s/resourceGroups/g"), API_RESOURCE_GROUPS);
        assert_eq!(api_version_for("/subscriptions/s"), API_SUBSCRIPTIONS);
        assert!(is_guid("8e3af657-a8ff-443c-a75c-2fe8c4bcb635"));
        assert!(!is_guid("Owner"));
    }

    #[test]
    fn next_links_stay_on_the_server() {
        assert_eq!(
            next_path("https://h:8443", "https://h:8443/subscriptions/s/x?a=1&$skiptoken=2"),
            "/subscriptions/s/x?a=1&$skiptoken=2"
        );
        assert_eq!(next_path("https://h:8443", "https://other/p?q"), "/p?q");
        assert_eq!(next_path("https://h:8443", "/p"), "/p");
    }

    #[test]
    fn tags_parse_like_az() {
        let tags =
            parse_tags(&["env=dev".to_owned(), "owner".to_owned(), "a=b=c".to_owned()]).unwrap();
        assert_eq!(tags, json!({"env": "dev", "owner": "", "a": "b=c"}));
        assert_eq!(parse_tags(&[String::new()]).unwrap(), json!({}));
        assert_eq!(
            parse_tags(&["=x".to_owned()]).unwrap_err().to_string(),
            "--tags takes KEY=VALUE pairs (got '=x')"
        );
    }
}
