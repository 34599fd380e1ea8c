//! What clients look up before and after they create compute: the VM image catalog
//! (`.../providers/Microsoft.Compute/locations/{l}/publishers/{p}/artifacttypes/vmimage/...`),
//! the image alias document `az vm create` reads (`vmImageAliasDoc`), provider-level metadata
//! (App Service's stacks, registration state), and the POST actions `az webapp` calls
//! (`checknameavailability`, `publishxml`, `config/appsettings/list`).
//!
//! Ambient runs no images: the catalog answers for any publisher, offer and SKU with one
//! version, whose operating system is Windows for Windows publishers and Linux otherwise. That
//! is what `az vm create` needs to pick its template (SSH or RDP rule, password rules).

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::arm::{Context, from_resources};
use crate::error::ApiError;

/// The one version every image has.
const IMAGE_VERSION: &str = "1.0.20250101";

/// The aliases `az vm create --image` resolves (azure-cli's own list), as
/// (OS, alias, publisher, offer, sku).
const ALIASES: &[(&str, &str, &str, &str, &str)] = &[
    ("Linux", "Ubuntu2204", "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2"),
    ("Linux", "Ubuntu2404", "Canonical", "ubuntu-24_04-lts", "server"),
    ("Linux", "Debian11", "Debian", "debian-11", "11-backports-gen2"),
    ("Linux", "Debian12", "Debian", "debian-12", "12-gen2"),
    ("Linux", "CentOS85Gen2", "OpenLogic", "CentOS", "8_5-gen2"),
    ("Linux", "FlatcarLinuxFreeGen2", "kinvolk", "flatcar-container-linux-free", "stable-gen2"),
    ("Linux", "OpenSuseLeap154Gen2", "SUSE", "opensuse-leap-15-4", "gen2"),
    ("Linux", "RHELRaw8LVMGen2", "RedHat", "RHEL", "8-lvm-gen2"),
    ("Linux", "SuseSles15SP3", "SUSE", "sles-15-sp3", "gen2"),
    (
        "Windows",
        "Win2022Datacenter",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter-g2",
    ),
    (
        "Windows",
        "Win2022AzureEditionCore",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter-azure-edition-core",
    ),
    ("Windows", "Win2019Datacenter", "MicrosoftWindowsServer", "WindowsServer", "2019-Datacenter"),
    (
        "Windows",
        "Win2016Datacenter",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2016-datacenter-gensecond",
    ),
    (
        "Windows",
        "Win2012R2Datacenter",
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2012-R2-Datacenter",
    ),
    ("Windows", "Win2012Datacenter", "MicrosoftWindowsServer", "WindowsServer", "2012-Datacenter"),
];

/// The alias document, shaped as azure-cli reads it: an ARM template whose
/// `outputs.aliases.value` maps OS, then alias, to the image.
pub fn alias_document() -> Value {
    let mut by_os = serde_json::Map::new();
    for (os, alias, publisher, offer, sku) in ALIASES {
        let entry = by_os.entry((*os).to_owned()).or_insert_with(|| json!({}));
        entry[*alias] = json!({
            "publisher": publisher,
            "offer": offer,
            "sku": sku,
            "version": "latest",
            "architecture": "x64",
        });
    }
    json!({
        "$schema": "http://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json",
        "contentVersion": "1.0.0.0",
        "parameters": {},
        "variables": {},
        "resources": [],
        "outputs": {"aliases": {"type": "object", "value": by_os}},
    })
}

/// `GET /metadata/vm-image-aliases.json` (no authentication, like Azure's public document).
pub async fn alias_document_handler() -> Json<Value> {
    Json(alias_document())
}

fn operating_system(publisher: &str) -> &'static str {
    if publisher.to_ascii_lowercase().contains("windows") { "Windows" } else { "Linux" }
}

/// `.../locations/{l}/publishers/{p}/artifacttypes/vmimage/offers/{o}/skus/{s}/versions[/{v}]`.
pub fn images(
    context: &Context,
    subscription: &str,
    location: &str,
    segments: &[String],
) -> Result<Response, ApiError> {
    let lower: Vec<String> = segments.iter().map(|segment| segment.to_ascii_lowercase()).collect();
    let shape: Vec<&str> = lower.iter().map(String::as_str).collect();
    let base = |publisher: &str, offer: &str, sku: &str| {
        format!(
            "/Subscriptions/{subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers/{publisher}/ArtifactTypes/VMImage/Offers/{offer}/Skus/{sku}/Versions"
        )
    };
    match shape.as_slice() {
        ["publishers", _, "artifacttypes", "vmimage", "offers", _, "skus", _, "versions"] => {
            let (publisher, offer, sku) = (&segments[1], &segments[5], &segments[7]);
            Ok(Json(json!([{
                "location": location,
                "name": IMAGE_VERSION,
                "id": format!("{}/{IMAGE_VERSION}", base(publisher, offer, sku)),
            }]))
            .into_response())
        }
        ["publishers", _, "artifacttypes", "vmimage", "offers", _, "skus", _, "versions", _] => {
            let (publisher, offer, sku, version) =
                (&segments[1], &segments[5], &segments[7], &segments[9]);
            let name = if version.eq_ignore_ascii_case("latest") {
                IMAGE_VERSION
            } else {
                version.as_str()
            };
            Ok(Json(json!({
                "location": location,
                "name": name,
                "id": format!("{}/{name}", base(publisher, offer, sku)),
                "properties": {
                    "osDiskImage": {"operatingSystem": operating_system(publisher)},
                    "hyperVGeneration": "V2",
                    "architecture": "x64",
                    "dataDiskImages": [],
                },
            }))
            .into_response())
        }
        _ => Err(context.no_route()),
    }
}

/// Provider-level requests (`/providers/{ns}/...`, `/subscriptions/{s}/providers/{ns}`).
pub fn provider(
    context: &Context,
    subscription: Option<&str>,
    namespace: &str,
    rest: &[String],
) -> Result<Response, ApiError> {
    let rest_lower: Vec<String> = rest.iter().map(|segment| segment.to_ascii_lowercase()).collect();
    let rest_lower: Vec<&str> = rest_lower.iter().map(String::as_str).collect();
    match (namespace.to_ascii_lowercase().as_str(), rest_lower.as_slice()) {
        // Registration state: every namespace Ambient serves is registered.
        (_, []) if subscription.is_some() && context.method == Method::GET => Ok(Json(json!({
            "id": format!("/subscriptions/{}/providers/{namespace}", subscription.unwrap_or_default()),
            "namespace": namespace,
            "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [],
        }))
        .into_response()),
        ("microsoft.web", ["webappstacks"]) if context.method == Method::GET => {
            Ok(Json(web_app_stacks()).into_response())
        }
        ("microsoft.web", ["functionappstacks"]) if context.method == Method::GET => {
            Ok(Json(json!({"value": []})).into_response())
        }
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidResourceType",
            format!("No resource type matches the path '{}'.", context.path),
        )),
    }
}

/// The runtimes App Service offers (`az webapp create --runtime`, `az webapp list-runtimes`):
/// Linux and Windows settings for common stacks, each with the fields az reads.
fn web_app_stacks() -> Value {
    let runtime =
        |value: &str, display: &str, linux: Option<&str>, windows: Option<(&str, &str)>| {
            let mut settings = serde_json::Map::new();
            let extras = json!({
                "remoteDebuggingSupported": false,
                "appInsightsSettings": {"isSupported": false},
                "gitHubActionSettings": {"isSupported": false},
            });
            if let Some(version) = linux {
                let mut linux = extras.clone();
                linux["runtimeVersion"] = json!(version);
                settings.insert("linuxRuntimeSettings".to_owned(), linux);
            }
            if let Some((key, version)) = windows {
                let mut windows = extras.clone();
                windows["runtimeVersion"] = json!(version);
                settings.insert(key.to_owned(), windows);
            }
            json!({"displayText": display, "value": value, "stackSettings": settings})
        };
    let stack = |name: &str, display: &str, os: &str, major: Value| {
        json!({
            "name": name,
            "type": "Microsoft.Web/webAppStacks",
            "properties": {"displayText": display, "value": name, "preferredOs": os, "majorVersions": major},
        })
    };
    json!({"value": [
        stack("python", "Python", "linux", json!([{"displayText": "Python 3", "value": "3", "minorVersions": [
            runtime("3.12", "Python 3.12", Some("PYTHON|3.12"), None),
            runtime("3.11", "Python 3.11", Some("PYTHON|3.11"), None),
        ]}])),
        stack("node", "Node", "linux", json!([
            {"displayText": "Node 22", "value": "22", "minorVersions": [runtime("22-lts", "Node 22 LTS", Some("NODE|22-lts"), Some(("windowsRuntimeSettings", "~22")))]},
            {"displayText": "Node 20", "value": "20", "minorVersions": [runtime("20-lts", "Node 20 LTS", Some("NODE|20-lts"), Some(("windowsRuntimeSettings", "~20")))]},
        ])),
        stack("dotnet", ".NET", "windows", json!([{"displayText": ".NET 8", "value": "8", "minorVersions": [
            runtime("8", ".NET 8 (LTS)", Some("DOTNETCORE|8.0"), Some(("windowsRuntimeSettings", "v8.0"))),
        ]}])),
    ]})
}

/// POST actions on resources and providers, by the path's last segments; `None` for paths that
/// are not actions.
pub async fn post_action(context: &Context) -> Option<Result<Response, ApiError>> {
    let lower = context.path.to_ascii_lowercase();
    if lower.ends_with("/providers/microsoft.web/checknameavailability") {
        return Some(check_name_availability(context).await);
    }
    let site = |suffix: &str| {
        lower
            .strip_suffix(suffix)
            .filter(|rest| rest.contains("/providers/microsoft.web/sites/"))
            .map(|rest| context.path[..rest.len()].to_owned())
    };
    if let Some(site_id) = site("/publishxml") {
        return Some(publish_profile(context, &site_id).await);
    }
    if let Some(site_id) = site("/config/appsettings/list") {
        return Some(app_settings(context, &site_id).await);
    }
    None
}

/// `POST /subscriptions/{s}/providers/Microsoft.Web/checknameavailability`: site names are
/// global (they become host names).
async fn check_name_availability(context: &Context) -> Result<Response, ApiError> {
    let body = context.json_body()?;
    let name = body["name"].as_str().unwrap_or_default();
    let filter = store::ResourceFilter {
        type_key: Some("microsoft.web/sites".to_owned()),
        ..store::ResourceFilter::default()
    };
    let sites = resources::load::all(context.state.store.as_ref(), &filter)
        .await
        .map_err(from_resources)?;
    let taken = sites.iter().any(|site| site.name.eq_ignore_ascii_case(name));
    Ok(Json(if taken {
        json!({"nameAvailable": false, "reason": "AlreadyExists", "message": format!("Hostname '{name}' already exists. Please select a different name.")})
    } else {
        json!({"nameAvailable": true})
    })
    .into_response())
}

async fn site(context: &Context, id: &str) -> Result<resources::Resource, ApiError> {
    let id = domain::ResourceId::parse(id)
        .map_err(|error| ApiError::bad_request("InvalidResourceId", error.to_string()))?;
    context.grants.check("Microsoft.Web/sites/read", &id)?;
    resources::load::resource(context.state.store.as_ref(), &id)
        .await
        .map_err(from_resources)?
        .ok_or_else(|| {
            from_resources(resources::plan::resource_not_found(
                &id,
                id.resource_group().unwrap_or_default(),
            ))
        })
}

/// `POST {site}/publishxml`: a publish profile (Ambient runs no deployments, but `az webapp
/// create` reads one).
async fn publish_profile(context: &Context, id: &str) -> Result<Response, ApiError> {
    let site = site(context, id).await?;
    let host =
        format!("{}.azurewebsites.{}", site.name.to_ascii_lowercase(), context.state.dns_suffix);
    let xml = format!(
        "<publishData><publishProfile profileName=\"{name} - Web Deploy\" publishMethod=\"MSDeploy\" publishUrl=\"{host}:443\" msdeploySite=\"{name}\" userName=\"${name}\" destinationAppUrl=\"https://{host}\" /><publishProfile profileName=\"{name} - FTP\" publishMethod=\"FTP\" publishUrl=\"ftp://{host}/site/wwwroot\" ftpPassiveMode=\"True\" userName=\"{name}\\${name}\" destinationAppUrl=\"https://{host}\" /></publishData>",
        name = site.name,
    );
    Ok(([(axum::http::header::CONTENT_TYPE, "application/xml")], xml).into_response())
}

/// `POST {site}/config/appsettings/list`: the app settings the site was created with.
async fn app_settings(context: &Context, id: &str) -> Result<Response, ApiError> {
    let site = site(context, id).await?;
    let mut settings = serde_json::Map::new();
    if let Some(list) = site
        .properties
        .get("siteConfig")
        .and_then(|config| config.get("appSettings"))
        .and_then(Value::as_array)
    {
        for entry in list {
            if let (Some(name), Some(value)) = (entry["name"].as_str(), entry.get("value")) {
                settings.insert(name.to_owned(), value.clone());
            }
        }
    }
    Ok(Json(json!({"id": format!("{id}/config/appsettings"), "name": "appsettings", "type": "Microsoft.Web/sites/config", "properties": settings})).into_response())
}
