//! `ambient ad sp ...`: service principals and their credentials, as `az ad sp` does them.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::GlobalArgs;
use crate::output::Columns;
use crate::profile;

#[derive(Debug, Subcommand)]
pub enum AdCommand {
    /// Service principals.
    #[command(subcommand)]
    Sp(SpCommand),
}

#[derive(Debug, Subcommand)]
pub enum SpCommand {
    /// Create an application with a service principal and a credential.
    CreateForRbac(CreateForRbacArgs),
    /// List service principals.
    List {
        /// Only those with this display name.
        #[arg(long)]
        display_name: Option<String>,
        /// List every service principal (accepted for az compatibility; the default).
        #[arg(long)]
        all: bool,
    },
    /// Show one service principal.
    Show {
        /// Object id or app id.
        #[arg(long)]
        id: String,
    },
    /// Delete a service principal with its credentials and role assignments.
    Delete {
        /// Object id or app id.
        #[arg(long)]
        id: String,
    },
    /// Credentials of a service principal.
    #[command(subcommand)]
    Credential(CredentialCommand),
}

#[derive(Debug, Args)]
pub struct CreateForRbacArgs {
    /// The display name.
    #[arg(long, short = 'n')]
    name: String,
    /// Create a certificate credential instead of a secret; the PEM (certificate and private
    /// key) is written under the data directory and its path printed.
    #[arg(long)]
    create_cert: bool,
    /// Years the credential is valid.
    #[arg(long, default_value_t = 1)]
    years: u32,
    /// Assign this role (name or GUID) to the new principal at each of --scopes.
    #[arg(long, requires = "scopes")]
    role: Option<String>,
    /// The scopes for --role.
    #[arg(long, num_args = 1.., requires = "role")]
    scopes: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Replace the credentials with a new one (or add one with `--append`).
    Reset {
        /// Object id or app id.
        #[arg(long)]
        id: String,
        /// Keep the existing credentials.
        #[arg(long)]
        append: bool,
        /// Create a certificate instead of a secret.
        #[arg(long)]
        create_cert: bool,
        /// Years the credential is valid.
        #[arg(long, default_value_t = 1)]
        years: u32,
        /// The credential's display name.
        #[arg(long, default_value = "rbac")]
        display_name: String,
    },
    /// List the credentials (never their values).
    List {
        /// Object id or app id.
        #[arg(long)]
        id: String,
        /// List certificate credentials instead of secrets.
        #[arg(long)]
        cert: bool,
    },
}

/// `az ad sp list -o table`'s columns.
pub(crate) const SP_COLUMNS: Columns = &[
    ("DisplayName", "displayName"),
    ("Id", "id"),
    ("AppId", "appId"),
    ("CreatedDateTime", "createdDateTime"),
];

/// The table columns of `command`'s output, where az has its own.
pub fn columns(command: &AdCommand) -> Option<Columns> {
    let AdCommand::Sp(command) = command;
    matches!(command, SpCommand::List { .. } | SpCommand::Show { .. }).then_some(SP_COLUMNS)
}

pub async fn run(command: AdCommand, global: &GlobalArgs) -> Result<Value> {
    let AdCommand::Sp(command) = command;
    let profile = profile::load(&global.home)?;
    let client = profile::client(&global.home, &profile)?;
    match command {
        SpCommand::CreateForRbac(args) => {
            if args.years == 0 || args.years > 10 {
                bail!("--years must be between 1 and 10");
            }
            let sp = client.create_service_principal(&args.name).await?;
            let id = text(&sp, "id")?;
            let app_id = text(&sp, "appId")?;
            let mut out = json!({"appId": app_id, "displayName": sp["displayName"], "tenant": profile.tenant});
            let credential = issue_credential(
                &client,
                &id,
                &app_id,
                args.create_cert,
                args.years,
                "rbac",
                &global.home,
            )
            .await?;
            merge(&mut out, credential);
            if let Some(role) = &args.role {
                let arm = crate::arm::Arm::connect(
                    global,
                    &crate::arm::SubscriptionArgs { subscription: None },
                )?;
                for scope in &args.scopes {
                    crate::role::create_assignment(
                        &arm,
                        &crate::role::NewAssignment {
                            principal_id: &id,
                            principal_type: "ServicePrincipal",
                            role,
                            scope,
                            description: None,
                            name: None,
                        },
                    )
                    .await
                    .with_context(|| format!("assign {role} at {scope}"))?;
                }
            }
            Ok(out)
        }
        SpCommand::List { display_name, all: _ } => {
            Ok(Value::Array(client.list_service_principals(display_name.as_deref()).await?))
        }
        SpCommand::Show { id } => Ok(client.get_service_principal(&id).await?),
        SpCommand::Delete { id } => {
            client.delete_service_principal(&id).await?;
            Ok(Value::Null)
        }
        SpCommand::Credential(CredentialCommand::Reset {
            id,
            append,
            create_cert,
            years,
            display_name,
        }) => {
            let sp = client.get_service_principal(&id).await?;
            let object_id = text(&sp, "id")?;
            let app_id = text(&sp, "appId")?;
            let credential = issue_credential(
                &client,
                &object_id,
                &app_id,
                create_cert,
                years,
                &display_name,
                &global.home,
            )
            .await?;
            if !append {
                let (list, kind) = if create_cert {
                    ("keyCredentials", "Key")
                } else {
                    ("passwordCredentials", "Password")
                };
                let new_id =
                    credential.get("keyId").and_then(Value::as_str).unwrap_or_default().to_owned();
                for old in sp[list].as_array().cloned().unwrap_or_default() {
                    let key_id = text(&old, "keyId")?;
                    if key_id != new_id {
                        client.remove_credential(&object_id, kind, &key_id).await?;
                    }
                }
            }
            let mut out = json!({"appId": app_id, "tenant": profile.tenant});
            merge(&mut out, credential);
            Ok(out)
        }
        SpCommand::Credential(CredentialCommand::List { id, cert }) => {
            let sp = client.get_service_principal(&id).await?;
            Ok(sp[if cert { "keyCredentials" } else { "passwordCredentials" }].clone())
        }
    }
}

/// Adds a secret or a generated certificate; returns the fields az prints for it (and
/// `keyId`, removed by the caller's printing when not wanted).
async fn issue_credential(
    client: &client::Client,
    object_id: &str,
    app_id: &str,
    create_cert: bool,
    years: u32,
    display_name: &str,
    home: &Path,
) -> Result<Value> {
    if create_cert {
        let created = client.create_certificate(object_id, years * 365).await?;
        let pem =
            format!("{}{}", text(&created, "privateKeyPem")?, text(&created, "certificatePem")?);
        let dir = home.join("certs");
        profile::create_private_dir(&dir)?;
        let path = dir.join(format!("{app_id}.pem"));
        profile::write_private(&path, pem.as_bytes())?;
        Ok(
            json!({"fileWithCertAndPrivateKey": path.display().to_string(), "password": null, "keyId": created["keyId"]}),
        )
    } else {
        let end = time::OffsetDateTime::now_utc() + time::Duration::days(365 * i64::from(years));
        let end = end
            .format(&time::format_description::well_known::Rfc3339)
            .context("format end date")?;
        let created = client.add_password(object_id, display_name, Some(&end)).await?;
        Ok(json!({"password": text(&created, "secretText")?, "keyId": created["keyId"]}))
    }
}

fn merge(out: &mut Value, extra: Value) {
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        for (key, value) in extra {
            if key != "keyId" {
                out.insert(key, value);
            }
        }
    }
}

fn text(value: &Value, field: &str) -> Result<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("the server's answer has no {field}"))
}
