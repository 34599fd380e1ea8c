//! What clients look up before they create compute: the VM image catalog
//! (`.../providers/Microsoft.Compute/locations/{l}/publishers/{p}/artifacttypes/vmimage/...`),
//! the image alias document `az vm create` reads (`vmImageAliasDoc`), and provider-level
//! metadata such as App Service's stacks.
//!
//! Ambient runs no images: the catalog answers for any publisher, offer and SKU with one
//! version, whose operating system is Windows for Windows publishers and Linux otherwise. That
//! is what `az vm create` needs to pick its template (SSH or RDP rule, password rules).

use axum::Json;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::arm::Context;
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
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidResourceType",
            format!("No resource type matches the path '{}'.", context.path),
        )),
    }
}
