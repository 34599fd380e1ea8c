//! `ambient group ...`: resource groups, as `az group` manages them.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::GlobalArgs;
use crate::arm::{self, API_RESOURCE_GROUPS, Arm, Request, SubscriptionArgs};
use crate::output::{Columns, Printed};

#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
    #[command(flatten)]
    subscription: SubscriptionArgs,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a resource group (or update its tags).
    Create {
        /// The resource group name.
        #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
        name: String,
        /// The location.
        #[arg(long, short = 'l', default_value = "local")]
        location: String,
        /// Tags: KEY=VALUE ... ("" clears them).
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
    },
    /// List the resource groups of the subscription.
    List,
    /// Show a resource group.
    Show {
        /// The resource group name.
        #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
        name: String,
    },
    /// Print whether a resource group exists (`true` or `false`).
    Exists {
        /// The resource group name.
        #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
        name: String,
    },
    /// Delete a resource group and everything in it.
    Delete {
        /// The resource group name.
        #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Accepted for az compatibility: the server deletes synchronously.
        #[arg(long)]
        no_wait: bool,
    },
}

/// `az group list --output table` columns.
pub(crate) const GROUP_COLUMNS: Columns =
    &[("Name", "name"), ("Location", "location"), ("Status", "properties.provisioningState")];

pub async fn run(args: GroupArgs, global: &GlobalArgs) -> Result<Printed> {
    let arm = Arm::connect(global, &args.subscription)?;
    let subscription = arm.subscription.clone();
    Ok(match args.command {
        GroupCommand::Create { name, location, tags } => {
            let request = create_request(&subscription, &name, &location, tags.as_deref())?;
            Printed::with_columns(arm.send(&request).await?, GROUP_COLUMNS)
        }
        GroupCommand::List => {
            let path = arm::path(
                &format!("/subscriptions/{subscription}/resourceGroups"),
                API_RESOURCE_GROUPS,
            );
            Printed::with_columns(Value::Array(arm.list(path, usize::MAX).await?), GROUP_COLUMNS)
        }
        GroupCommand::Show { name } => {
            Printed::with_columns(arm.get(group_path(&subscription, &name)).await?, GROUP_COLUMNS)
        }
        GroupCommand::Exists { name } => Printed::plain(Value::Bool(
            arm.get_optional(group_path(&subscription, &name)).await?.is_some(),
        )),
        GroupCommand::Delete { name, yes, no_wait: _ } => {
            arm::confirm(yes)?;
            arm.send(&Request::delete(group_path(&subscription, &name))).await?;
            Printed::nothing()
        }
    })
}

fn group_path(subscription: &str, name: &str) -> String {
    arm::path(&format!("/subscriptions/{subscription}/resourceGroups/{name}"), API_RESOURCE_GROUPS)
}

fn create_request(
    subscription: &str,
    name: &str,
    location: &str,
    tags: Option<&[String]>,
) -> Result<Request> {
    Ok(Request::put(group_path(subscription, name), arm::location_and_tags(location, tags)?))
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn create_puts_location_and_tags() {
        let request = create_request("s1", "rg1", "local", Some(&["env=dev".to_owned()])).unwrap();
        expect![[r#"
            Request {
                method: Put,
                path: "/subscriptions/s1/resourceGroups/rg1?api-version=2021-04-01",
                body: Some(
                    Object {
                        "location": String("local"),
                        "tags": Object {
                            "env": String("dev"),
                        },
                    },
                ),
            }
        "#]]
        .assert_debug_eq(&request);
    }
}
