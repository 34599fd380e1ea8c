//! `ambient identity ...`: user-assigned managed identities and their federated identity
//! credentials, as `az identity` manages them. Like az, identities print flattened: `clientId`,
//! `principalId` and `tenantId` at the top level next to `id`, `name` and `resourceGroup`.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::GlobalArgs;
use crate::arm::{self, API_MANAGED_IDENTITY, Arm, Request, SubscriptionArgs, TargetArgs};
use crate::output::{Columns, Printed};

/// The resource type of user-assigned identities.
pub const IDENTITY_TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

/// The audience az puts on a federated credential when none is given.
const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

#[derive(Debug, Args)]
pub struct IdentityArgs {
    #[command(subcommand)]
    command: IdentityCommand,
    #[command(flatten)]
    subscription: SubscriptionArgs,
}

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create a user-assigned identity (or update its tags).
    Create {
        /// The resource group.
        #[arg(long, short = 'g')]
        resource_group: String,
        /// The identity name.
        #[arg(long, short = 'n')]
        name: String,
        /// The location.
        #[arg(long, short = 'l', default_value = "local")]
        location: String,
        /// Tags: KEY=VALUE ... ("" clears them).
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
    },
    /// List identities of a resource group, or of the subscription.
    List {
        /// Only this resource group.
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Show identities.
    Show(TargetArgs),
    /// Delete identities.
    Delete(TargetArgs),
    /// Federated identity credentials of an identity (workload identity federation).
    #[command(subcommand, name = "federated-credential")]
    FederatedCredential(FederatedCredentialCommand),
}

#[derive(Debug, Args)]
pub struct ParentArgs {
    /// The resource group.
    #[arg(long, short = 'g')]
    resource_group: String,
    /// The identity the credential belongs to.
    #[arg(long)]
    identity_name: String,
}

#[derive(Debug, Subcommand)]
pub enum FederatedCredentialCommand {
    /// Create a federated credential (or replace one of the same name).
    Create {
        #[command(flatten)]
        parent: ParentArgs,
        /// The credential name.
        #[arg(long, short = 'n')]
        name: String,
        /// The token issuer (`iss`) to trust.
        #[arg(long)]
        issuer: String,
        /// The token subject (`sub`) to trust.
        #[arg(long)]
        subject: String,
        /// The token audiences (`aud`) to accept.
        #[arg(long, num_args = 1.., default_value = DEFAULT_AUDIENCE)]
        audiences: Vec<String>,
    },
    /// List the federated credentials of an identity.
    List {
        #[command(flatten)]
        parent: ParentArgs,
    },
    /// Show a federated credential.
    Show {
        #[command(flatten)]
        parent: ParentArgs,
        /// The credential name.
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Delete a federated credential.
    Delete {
        #[command(flatten)]
        parent: ParentArgs,
        /// The credential name.
        #[arg(long, short = 'n')]
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `az identity list --output table` columns.
pub(crate) const IDENTITY_COLUMNS: Columns = &[
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("ClientId", "clientId"),
    ("PrincipalId", "principalId"),
];

pub(crate) const CREDENTIAL_COLUMNS: Columns = &[
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Issuer", "issuer"),
    ("Subject", "subject"),
];

pub async fn run(args: IdentityArgs, global: &GlobalArgs) -> Result<Printed> {
    let arm = Arm::connect(global, &args.subscription)?;
    let subscription = arm.subscription.clone();
    Ok(match args.command {
        IdentityCommand::Create { resource_group, name, location, tags } => {
            let id = arm::resource_id(&subscription, &resource_group, IDENTITY_TYPE, &name);
            let body = arm::location_and_tags(&location, tags.as_deref())?;
            let created =
                arm.send(&Request::put(arm::path(&id, API_MANAGED_IDENTITY), body)).await?;
            Printed::with_columns(flatten(&created), IDENTITY_COLUMNS)
        }
        IdentityCommand::List { resource_group } => {
            let scope = match &resource_group {
                Some(group) => arm::group_id(&subscription, group),
                None => format!("/subscriptions/{subscription}"),
            };
            let path =
                arm::path(&format!("{scope}/providers/{IDENTITY_TYPE}"), API_MANAGED_IDENTITY);
            let items = arm.list(path, usize::MAX).await?;
            Printed::with_columns(
                Value::Array(items.iter().map(flatten).collect()),
                IDENTITY_COLUMNS,
            )
        }
        IdentityCommand::Show(target) => {
            let mut shown = Vec::new();
            for id in target.resource_ids(&subscription, IDENTITY_TYPE)? {
                shown.push(flatten(&arm.get(arm::path(&id, API_MANAGED_IDENTITY)).await?));
            }
            Printed::with_columns(one_or_many(shown), IDENTITY_COLUMNS)
        }
        IdentityCommand::Delete(target) => {
            for id in target.resource_ids(&subscription, IDENTITY_TYPE)? {
                arm.send(&Request::delete(arm::path(&id, API_MANAGED_IDENTITY))).await?;
            }
            Printed::nothing()
        }
        IdentityCommand::FederatedCredential(command) => run_credential(&arm, command).await?,
    })
}

async fn run_credential(arm: &Arm, command: FederatedCredentialCommand) -> Result<Printed> {
    let parent = |args: &ParentArgs| {
        format!(
            "{}/federatedIdentityCredentials",
            arm::resource_id(
                &arm.subscription,
                &args.resource_group,
                IDENTITY_TYPE,
                &args.identity_name
            )
        )
    };
    Ok(match command {
        FederatedCredentialCommand::Create { parent: args, name, issuer, subject, audiences } => {
            let request = credential_request(&parent(&args), &name, &issuer, &subject, &audiences);
            Printed::with_columns(flatten(&arm.send(&request).await?), CREDENTIAL_COLUMNS)
        }
        FederatedCredentialCommand::List { parent: args } => {
            let items =
                arm.list(arm::path(&parent(&args), API_MANAGED_IDENTITY), usize::MAX).await?;
            Printed::with_columns(
                Value::Array(items.iter().map(flatten).collect()),
                CREDENTIAL_COLUMNS,
            )
        }
        FederatedCredentialCommand::Show { parent: args, name } => {
            let path = arm::path(&format!("{}/{name}", parent(&args)), API_MANAGED_IDENTITY);
            Printed::with_columns(flatten(&arm.get(path).await?), CREDENTIAL_COLUMNS)
        }
        FederatedCredentialCommand::Delete { parent: args, name, yes } => {
            arm::confirm(yes)?;
            let path = arm::path(&format!("{}/{name}", parent(&args)), API_MANAGED_IDENTITY);
            arm.send(&Request::delete(path)).await?;
            Printed::nothing()
        }
    })
}

/// An identity or credential as az prints it: `properties` at the top level, `resourceGroup`
/// added.
pub fn flatten(resource: &Value) -> Value {
    arm::flatten_properties(resource, &[])
}

/// One object for one id, an array for several (az prints `--ids` results the same way).
pub fn one_or_many(mut items: Vec<Value>) -> Value {
    if items.len() == 1 { items.remove(0) } else { Value::Array(items) }
}

fn credential_request(
    parent: &str,
    name: &str,
    issuer: &str,
    subject: &str,
    audiences: &[String],
) -> Request {
    let body =
        json!({"properties": {"issuer": issuer, "subject": subject, "audiences": audiences}});
    Request::put(arm::path(&format!("{parent}/{name}"), API_MANAGED_IDENTITY), body)
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn identities_print_flattened_like_az() {
        // The API's shape goes in; az's flattened shape (with resourceGroup) comes out.
        let returned = json!({
            "id": "/subscriptions/s1/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
            "name": "id1",
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "location": "local",
            "tags": {},
            "properties": {"tenantId": "t1", "principalId": "p1", "clientId": "c1"}
        });
        expect![[r#"
            {
              "id": "/subscriptions/s1/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
              "name": "id1",
              "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
              "location": "local",
              "tags": {},
              "tenantId": "t1",
              "principalId": "p1",
              "clientId": "c1",
              "resourceGroup": "rg1"
            }"#]]
        .assert_eq(&serde_json::to_string_pretty(&flatten(&returned)).unwrap());
        expect![[r#"
            Name  ResourceGroup  Location  ClientId  PrincipalId
            ----  -------------  --------  --------  -----------
            id1   rg1            local     c1        p1"#]]
        .assert_eq(&crate::output::table_with_columns(&flatten(&returned), IDENTITY_COLUMNS));
    }

    #[test]
    fn federated_credential_body() {
        let parent = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials";
        let request = credential_request(
            parent,
            "fic1",
            "https://issuer",
            "system:serviceaccount:ns:sa",
            &[DEFAULT_AUDIENCE.to_owned()],
        );
        expect![[r#"
            Request {
                method: Put,
                path: "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/fic1?api-version=2024-11-30",
                body: Some(
                    Object {
                        "properties": Object {
                            "issuer": String("https://issuer"),
                            "subject": String("system:serviceaccount:ns:sa"),
                            "audiences": Array [
                                String("api://AzureADTokenExchange"),
                            ],
                        },
                    },
                ),
            }
        "#]]
        .assert_debug_eq(&request);
    }
}
