//! `ambient keyvault ...`: vaults on the control plane and secrets on each vault's data plane,
//! as `az keyvault` does them.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::GlobalArgs;
use crate::arm::{self, Arm, SubscriptionArgs};
use crate::output::Printed;
use crate::profile;

pub const API_KEY_VAULT: &str = "2023-07-01";
/// The data-plane api-version the CLI speaks.
pub const API_SECRETS: &str = "7.5";

#[derive(Debug, Args)]
pub struct KeyvaultArgs {
    #[command(subcommand)]
    command: KeyvaultCommand,
    #[command(flatten)]
    subscription: SubscriptionArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeyvaultCommand {
    /// Create a vault (RBAC authorization, soft delete on).
    Create {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'l', default_value = "local")]
        location: String,
        /// Days a deleted secret stays recoverable (7 to 90).
        #[arg(long, default_value_t = 90)]
        retention_days: i64,
        /// Turn soft delete off (deleted secrets are gone at once).
        #[arg(long)]
        disable_soft_delete: bool,
    },
    /// List vaults.
    List {
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Show a vault.
    Show {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Delete a vault and its secrets.
    Delete {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Secrets in a vault.
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Debug, Args)]
pub struct SecretTarget {
    /// The vault name.
    #[arg(long)]
    vault_name: String,
    /// The secret name.
    #[arg(long, short = 'n')]
    name: String,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a new version of a secret.
    Set {
        #[command(flatten)]
        target: SecretTarget,
        /// The value.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        value: Option<String>,
        /// Read the value from a file.
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
        #[arg(long)]
        content_type: Option<String>,
        /// Tags: KEY=VALUE ...
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
        /// Create the version disabled.
        #[arg(long)]
        disabled: bool,
        /// Expiry (Unix seconds).
        #[arg(long)]
        expires: Option<i64>,
        /// Not valid before (Unix seconds).
        #[arg(long)]
        not_before: Option<i64>,
    },
    /// Show a secret with its value.
    #[command(disable_version_flag = true)]
    Show {
        #[command(flatten)]
        target: SecretTarget,
        /// A version [default: the current one].
        #[arg(long)]
        version: Option<String>,
    },
    /// List secrets (never their values).
    List {
        #[arg(long)]
        vault_name: String,
    },
    /// List the versions of a secret.
    ListVersions {
        #[command(flatten)]
        target: SecretTarget,
    },
    /// Delete a secret (recoverable while the vault keeps deleted secrets).
    Delete {
        #[command(flatten)]
        target: SecretTarget,
    },
    /// List deleted secrets.
    ListDeleted {
        #[arg(long)]
        vault_name: String,
    },
    /// Show a deleted secret.
    ShowDeleted {
        #[command(flatten)]
        target: SecretTarget,
    },
    /// Recover a deleted secret.
    Recover {
        #[command(flatten)]
        target: SecretTarget,
    },
    /// Delete a deleted secret for good.
    Purge {
        #[command(flatten)]
        target: SecretTarget,
    },
}

pub async fn run(args: KeyvaultArgs, global: &GlobalArgs) -> Result<Printed> {
    let arm = Arm::connect(global, &args.subscription)?;
    let subscription = arm.subscription.clone();
    Ok(match args.command {
        KeyvaultCommand::Create {
            resource_group,
            name,
            location,
            retention_days,
            disable_soft_delete,
        } => {
            let id = arm::resource_id(
                &subscription,
                &resource_group,
                "Microsoft.KeyVault/vaults",
                &name,
            );
            let body = json!({
                "location": location,
                "properties": {
                    "tenantId": "",
                    "sku": {"family": "A", "name": "standard"},
                    "enableRbacAuthorization": true,
                    "enableSoftDelete": !disable_soft_delete,
                    "softDeleteRetentionInDays": retention_days,
                },
            });
            let vault = arm.send(&arm::Request::put(arm::path(&id, API_KEY_VAULT), body)).await?;
            if let Some(hint) = vault["properties"]["vaultUri"]
                .as_str()
                .and_then(|uri| hosts_hint(uri, &profile::load(&global.home).ok()?.server))
            {
                eprintln!("{hint}");
            }
            Printed::plain(with_group(vault))
        }
        KeyvaultCommand::List { resource_group } => {
            let scope = match resource_group {
                Some(group) => arm::group_id(&subscription, &group),
                None => format!("/subscriptions/{subscription}"),
            };
            let items = arm
                .list(
                    arm::path(
                        &format!("{scope}/providers/Microsoft.KeyVault/vaults"),
                        API_KEY_VAULT,
                    ),
                    usize::MAX,
                )
                .await?;
            Printed::plain(Value::Array(items.into_iter().map(with_group).collect()))
        }
        KeyvaultCommand::Show { name, resource_group } => {
            Printed::plain(with_group(find_vault(&arm, &name, resource_group.as_deref()).await?))
        }
        KeyvaultCommand::Delete { name, resource_group } => {
            let vault = find_vault(&arm, &name, resource_group.as_deref()).await?;
            let id = vault["id"].as_str().context("vault without id")?;
            arm.send(&arm::Request::delete(arm::path(id, API_KEY_VAULT))).await?;
            Printed::nothing()
        }
        KeyvaultCommand::Secret(command) => secret(&arm, command).await?,
    })
}

async fn secret(arm: &Arm, command: SecretCommand) -> Result<Printed> {
    let vault_name = match &command {
        SecretCommand::Set { target, .. }
        | SecretCommand::Show { target, .. }
        | SecretCommand::ListVersions { target }
        | SecretCommand::Delete { target }
        | SecretCommand::ShowDeleted { target }
        | SecretCommand::Recover { target }
        | SecretCommand::Purge { target } => target.vault_name.clone(),
        SecretCommand::List { vault_name } | SecretCommand::ListDeleted { vault_name } => {
            vault_name.clone()
        }
    };
    let vault = find_vault(arm, &vault_name, None).await?;
    let uri =
        vault["properties"]["vaultUri"].as_str().context("the vault has no vaultUri")?.to_owned();
    let data = DataPlane { client: &arm.client, scope: scope_of(&uri)?, uri };
    Ok(Printed::plain(match command {
        SecretCommand::Set {
            target,
            value,
            file,
            content_type,
            tags,
            disabled,
            expires,
            not_before,
        } => {
            let value = match (value, file) {
                (Some(value), _) => value,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("read {}", path.display()))?,
                (None, None) => bail!("pass --value or --file"),
            };
            let mut attributes = json!({"enabled": !disabled});
            if let Some(exp) = expires {
                attributes["exp"] = json!(exp);
            }
            if let Some(nbf) = not_before {
                attributes["nbf"] = json!(nbf);
            }
            let mut body = json!({"value": value, "attributes": attributes});
            if let Some(content_type) = content_type {
                body["contentType"] = json!(content_type);
            }
            if let Some(tags) = tags {
                body["tags"] = arm::parse_tags(&tags)?;
            }
            named(
                data.call(reqwest::Method::PUT, &format!("secrets/{}", target.name), Some(&body))
                    .await?,
            )
        }
        SecretCommand::Show { target, version } => {
            let path = format!("secrets/{}/{}", target.name, version.unwrap_or_default());
            named(data.call(reqwest::Method::GET, &path, None).await?)
        }
        SecretCommand::List { .. } => {
            Value::Array(data.list("secrets").await?.into_iter().map(named).collect())
        }
        SecretCommand::ListVersions { target } => Value::Array(
            data.list(&format!("secrets/{}/versions", target.name))
                .await?
                .into_iter()
                .map(named)
                .collect(),
        ),
        SecretCommand::Delete { target } => named(
            data.call(reqwest::Method::DELETE, &format!("secrets/{}", target.name), None).await?,
        ),
        SecretCommand::ListDeleted { .. } => {
            Value::Array(data.list("deletedsecrets").await?.into_iter().map(named).collect())
        }
        SecretCommand::ShowDeleted { target } => named(
            data.call(reqwest::Method::GET, &format!("deletedsecrets/{}", target.name), None)
                .await?,
        ),
        SecretCommand::Recover { target } => named(
            data.call(
                reqwest::Method::POST,
                &format!("deletedsecrets/{}/recover", target.name),
                None,
            )
            .await?,
        ),
        SecretCommand::Purge { target } => {
            data.call(reqwest::Method::DELETE, &format!("deletedsecrets/{}", target.name), None)
                .await?;
            Value::Null
        }
    }))
}

struct DataPlane<'a> {
    client: &'a client::Client,
    uri: String,
    scope: String,
}

impl DataPlane<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}?api-version={API_SECRETS}", self.uri);
        Ok(self.client.data_request(method, &url, &self.scope, body).await?)
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut url = format!("{}{path}?api-version={API_SECRETS}&maxresults=25", self.uri);
        for _ in 0..arm::LIST_PAGES_MAX {
            let page =
                self.client.data_request(reqwest::Method::GET, &url, &self.scope, None).await?;
            items.extend(page["value"].as_array().cloned().unwrap_or_default());
            match page["nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => return Ok(items),
            }
        }
        Ok(items)
    }
}

/// `https://v.vault.localhost:8443/` → `https://vault.localhost:8443/.default`: the resource
/// Key Vault's challenge names for this vault.
/// When the vault's host name does not resolve here (hosts files have no wildcards, and not
/// every resolver answers for `*.localhost`), the warning naming the exact `/etc/hosts` line that
/// makes SDK clients reach it; `None` when it resolves.
fn hosts_hint(vault_uri: &str, server_url: &str) -> Option<String> {
    let host = host_of(vault_uri)?;
    if resolves(&host) {
        return None;
    }
    let address = host_of(server_url)
        .and_then(|server| {
            if server.parse::<std::net::IpAddr>().is_ok() {
                return Some(server);
            }
            resolve(&server).map(|address| address.to_string())
        })
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    Some(hosts_hint_text(&host, &address))
}

fn hosts_hint_text(host: &str, address: &str) -> String {
    format!(
        "warning: {host} does not resolve on this machine; for SDK clients outside \
         `ambient run --isolate`, add this line to /etc/hosts (as root):\n{address} {host}"
    )
}

/// The host name of an `https://host[:port]/...` URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    (!host.is_empty()).then(|| host.to_owned())
}

fn resolve(host: &str) -> Option<std::net::IpAddr> {
    use std::net::ToSocketAddrs as _;
    let mut addresses: Vec<std::net::SocketAddr> = (host, 443).to_socket_addrs().ok()?.collect();
    // Prefer IPv4, which every hosts file and client handles.
    addresses.sort_by_key(|address| !address.is_ipv4());
    addresses.first().map(|address| address.ip())
}

fn resolves(host: &str) -> bool {
    resolve(host).is_some()
}

fn scope_of(vault_uri: &str) -> Result<String> {
    let host = vault_uri.trim_start_matches("https://").trim_end_matches('/');
    let (_, rest) =
        host.split_once('.').context("a vault URI has a host name with a vault label")?;
    Ok(format!("https://{rest}/.default"))
}

/// Adds `name` from the id, as az prints secrets.
fn named(mut value: Value) -> Value {
    let name = value["id"]
        .as_str()
        .and_then(|id| id.split("/secrets/").nth(1).or_else(|| id.split("/deletedsecrets/").nth(1)))
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned());
    if let (Some(map), Some(name)) = (value.as_object_mut(), name) {
        map.insert("name".to_owned(), json!(name));
    }
    value
}

fn with_group(mut value: Value) -> Value {
    let group = value["id"].as_str().and_then(|id| id.split('/').nth(4)).map(str::to_owned);
    if let (Some(map), Some(group)) = (value.as_object_mut(), group) {
        map.insert("resourceGroup".to_owned(), json!(group));
    }
    value
}

async fn find_vault(arm: &Arm, name: &str, group: Option<&str>) -> Result<Value> {
    let scope = match group {
        Some(group) => arm::group_id(&arm.subscription, group),
        None => format!("/subscriptions/{}", arm.subscription),
    };
    let vaults = arm
        .list(
            arm::path(&format!("{scope}/providers/Microsoft.KeyVault/vaults"), API_KEY_VAULT),
            usize::MAX,
        )
        .await?;
    vaults
        .into_iter()
        .find(|vault| {
            vault["name"].as_str().is_some_and(|vault_name| vault_name.eq_ignore_ascii_case(name))
        })
        .with_context(|| vault_not_found(name, group))
}

/// The error of a vault that is not there, coded and worded as az's.
fn vault_not_found(name: &str, group: Option<&str>) -> String {
    match group {
        Some(group) => format!(
            "ResourceNotFound: The Resource 'Microsoft.KeyVault/vaults/{name}' under resource group '{group}' was not found."
        ),
        None => format!("ResourceNotFound: The Vault '{name}' not found within subscription."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_the_challenge_resource() {
        assert_eq!(
            scope_of("https://v1.vault.localhost:8443/").unwrap(),
            "https://vault.localhost:8443/.default"
        );
        assert_eq!(named(json!({"id": "https://v.vault.x/secrets/db/abc"}))["name"], "db");
        assert_eq!(named(json!({"id": "https://v.vault.x/deletedsecrets/db"}))["name"], "db");
    }

    #[test]
    fn hosts_hint_names_the_vault() {
        // Goal: `keyvault create` tells exactly which line makes a vault name resolve.
        assert_eq!(
            host_of("https://stockvault.vault.localhost:8443/").as_deref(),
            Some("stockvault.vault.localhost")
        );
        assert_eq!(host_of("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(host_of("https://ambient.example.com").as_deref(), Some("ambient.example.com"));
        expect_test::expect![[r#"
            warning: stockvault.vault.localhost does not resolve on this machine; for SDK clients outside `ambient run --isolate`, add this line to /etc/hosts (as root):
            127.0.0.1 stockvault.vault.localhost"#]]
        .assert_eq(&hosts_hint_text("stockvault.vault.localhost", "127.0.0.1"));
        // A name that resolves needs no hint; `.invalid` never resolves (RFC 6761).
        assert_eq!(hosts_hint("https://localhost:8443/", "https://localhost:8443"), None);
        let hint = hosts_hint("https://v1.vault.invalid:8443/", "https://127.0.0.1:8443").unwrap();
        assert!(hint.ends_with("\n127.0.0.1 v1.vault.invalid"), "{hint}");
    }

    #[test]
    fn a_missing_vault_has_a_code() {
        expect_test::expect!["ResourceNotFound: The Vault 'nope' not found within subscription."]
            .assert_eq(&vault_not_found("nope", None));
        expect_test::expect!["ResourceNotFound: The Resource 'Microsoft.KeyVault/vaults/nope' under resource group 'rg' was not found."]
            .assert_eq(&vault_not_found("nope", Some("rg")));
    }
}
