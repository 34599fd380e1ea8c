//! The command-line client, shaped like `az`: `ambient <group> <verb> [flags]`.
//!
//! [`Command`] is the clap subcommand tree the `ambient` binary flattens into its own; [`run`]
//! executes one. The CLI talks to the server only through `client` and the public API, signs in
//! with the `identity` library, and keeps its profile under the data directory
//! (`$AMBIENT_HOME/profile.json`, written by `ambient dev` or `ambient login`).
//!
//! Control-plane groups (`group`, `identity`, `vm`, `webapp`, `functionapp`, `role`,
//! `monitor activity-log`) build their requests with pure functions and send them through
//! `arm::Arm`; every command returns an `output::Printed` that `--query` and `--output` shape.

mod ad;
mod arm;
mod compute;
mod group;
mod host;
mod identity_cmd;
mod keyvault;
mod monitor;
mod output;
mod profile;
mod query;
mod role;
mod run;
mod token_cache;

pub use crate::output::print_line;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

pub use crate::output::Output;
use crate::output::Printed;

/// Flags every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The data directory holding the CLI profile (as written by `ambient dev` or `ambient login`).
    #[arg(
        long = "home",
        env = "AMBIENT_HOME",
        global = true,
        value_name = "DIR",
        default_value = ".ambient"
    )]
    pub home: PathBuf,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "json")]
    pub output: Output,
    /// A JMESPath query applied to the result before output (as az's `--query`).
    #[arg(long, global = true, value_name = "JMESPATH")]
    pub query: Option<String>,
}

/// The CLI's command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in with a service principal and keep the profile under the data directory.
    Login(LoginArgs),
    /// The signed-in account and its tokens.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Directory objects (service principals).
    #[command(subcommand)]
    Ad(ad::AdCommand),
    /// The token service's signing keys.
    #[command(subcommand, name = "token-keys")]
    TokenKeys(TokenKeysCommand),
    /// Logs: sign-ins and control-plane activity.
    #[command(subcommand)]
    Monitor(monitor::MonitorCommand),
    /// Resource groups.
    Group(group::GroupArgs),
    /// User-assigned managed identities and their federated credentials.
    Identity(identity_cmd::IdentityArgs),
    /// Virtual machines and their managed identities.
    Vm(compute::ComputeArgs),
    /// Web apps and their managed identities.
    Webapp(compute::ComputeArgs),
    /// Function apps and their managed identities.
    Functionapp(compute::ComputeArgs),
    /// Role-based access control: role assignments and definitions.
    Role(role::RoleArgs),
    /// Key Vault: vaults and their secrets.
    Keyvault(keyvault::KeyvaultArgs),
    /// Hosts that run agents, and their join tokens.
    #[command(subcommand)]
    Host(host::HostCommand),
    /// Run a command as a workload of a compute resource (its managed identities).
    #[command(after_help = run::WORKLOAD_HELP)]
    Run(run::RunArgs),
    /// (internal) The forwarder `ambient run --isolate` starts inside its namespace.
    #[command(name = "netns-forward", hide = true)]
    NetnsForward {
        /// ADDR=SOCKET: listen on ADDR, pass connections to the Unix socket.
        #[arg(long = "map", required = true)]
        maps: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Sign in as a service principal (the only kind of login the CLI supports).
    #[arg(long)]
    service_principal: bool,
    /// The application (client) id.
    #[arg(long, short = 'u', value_name = "APP_ID")]
    username: String,
    /// The client secret, or the path of a PEM file with the certificate and private key.
    /// (Secrets may start with `-`.)
    #[arg(long, short = 'p', value_name = "SECRET_OR_PEM", allow_hyphen_values = true)]
    password: String,
    /// The tenant id.
    #[arg(long, short = 't')]
    tenant: String,
    /// The server URL [default: $AMBIENT_URL].
    #[arg(long, env = "AMBIENT_URL")]
    server: String,
    /// A PEM file with the CA that signed the server's certificate [default: $AMBIENT_CA_BUNDLE].
    #[arg(long, env = "AMBIENT_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    /// The default subscription [default: $AMBIENT_SUBSCRIPTION_ID].
    #[arg(long, env = "AMBIENT_SUBSCRIPTION_ID")]
    subscription: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Print the current account: server, tenant, subscription and principal.
    Show,
    /// Print an access token, as `az account get-access-token` does.
    GetAccessToken(GetAccessTokenArgs),
}

#[derive(Debug, Args)]
pub struct GetAccessTokenArgs {
    /// The resource the token is for (`https://vault.azure.net`) [default: the management API].
    #[arg(long, conflicts_with = "scope")]
    resource: Option<String>,
    /// The scope the token is for (`https://vault.azure.net/.default`).
    #[arg(long)]
    scope: Option<String>,
    /// Ask for a token from this tenant (only the profile's tenant is served).
    #[arg(long)]
    tenant: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenKeysCommand {
    /// Publish a new signing key now; it signs from `--activate-in` seconds on.
    Rotate {
        /// Seconds until the new key starts signing (it is published at once).
        #[arg(long, default_value_t = 0)]
        activate_in: i64,
    },
    /// List the published signing keys (the JWKS).
    List,
}

/// `command` (the binary's whole command tree, which flattens [`Command`]) with the help texts
/// of the compute groups naming their own resource: `vm`, `webapp` and `functionapp` share one
/// argument type, whose own texts can only say "resources".
pub fn refine_help(command: clap::Command) -> clap::Command {
    let groups = [
        ("vm", "virtual machine", "virtual machines"),
        ("webapp", "web app", "web apps"),
        ("functionapp", "function app", "function apps"),
    ];
    groups.into_iter().fold(command, |command, (group, one, many)| {
        command.mut_subcommand(group, |command| {
            command
                .mut_subcommand("create", |command| {
                    command.about(format!(
                        "Create (or update) a {one}, optionally with managed identities"
                    ))
                })
                .mut_subcommand("show", |command| {
                    command.about(format!("Show a {one} (or several, by --ids)"))
                })
                .mut_subcommand("update", |command| {
                    command.about(format!(
                        "Update a {one} (or several, by --ids): workload selectors, or any property with --set and --remove"
                    ))
                })
                .mut_subcommand("list", |command| {
                    command.about(format!(
                        "List the {many} of a resource group, or of the subscription"
                    ))
                })
                .mut_subcommand("delete", |command| {
                    command.about(format!(
                        "Delete a {one} (or several, by --ids); its system-assigned identity goes with it"
                    ))
                })
                .mut_subcommand("identity", |command| {
                    command.about(format!("Managed identities of a {one}"))
                })
        })
    })
}

/// Runs one CLI command.
pub async fn run(command: Command, global: GlobalArgs) -> Result<()> {
    // A bad query fails before the command changes anything.
    let query = global.query.as_deref().map(query::Query::parse).transpose()?;
    let printed = match command {
        Command::Login(args) => Printed::plain(login(args, &global).await?),
        Command::Account(AccountCommand::Show) => {
            Printed::plain(profile::account_view(&profile::load(&global.home)?))
        }
        Command::Account(AccountCommand::GetAccessToken(args)) => {
            Printed::plain(get_access_token(args, &global).await?)
        }
        Command::Ad(command) => {
            let columns = ad::columns(&command);
            Printed { value: ad::run(command, &global).await?, columns }
        }
        Command::TokenKeys(TokenKeysCommand::Rotate { activate_in }) => {
            let client = profile::client(&global.home, &profile::load(&global.home)?)?;
            Printed::plain(
                client
                    .post(
                        "/v1.0/ambient/signingKeys/rotate",
                        &serde_json::json!({"activateInSeconds": activate_in}),
                    )
                    .await?,
            )
        }
        Command::TokenKeys(TokenKeysCommand::List) => {
            let client = profile::client(&global.home, &profile::load(&global.home)?)?;
            Printed::plain(serde_json::Value::Array(
                client
                    .get("/v1.0/ambient/signingKeys")
                    .await?
                    .get("keys")
                    .and_then(|keys| keys.as_array())
                    .cloned()
                    .unwrap_or_default(),
            ))
        }
        Command::Monitor(command) => monitor::run(command, &global).await?,
        Command::Group(args) => group::run(args, &global).await?,
        Command::Identity(args) => identity_cmd::run(args, &global).await?,
        Command::Vm(args) => compute::run(&compute::VM, args, &global).await?,
        Command::Webapp(args) => compute::run(&compute::WEBAPP, args, &global).await?,
        Command::Functionapp(args) => compute::run(&compute::FUNCTIONAPP, args, &global).await?,
        Command::Role(args) => role::run(args, &global).await?,
        Command::Keyvault(args) => keyvault::run(args, &global).await?,
        Command::Host(command) => host::run(command, &global).await?,
        Command::Run(args) => {
            let code = run::run(args, &global).await?;
            std::process::exit(code);
        }
        Command::NetnsForward { maps } => {
            run::forward(&maps).await?;
            output::Printed::nothing()
        }
    };
    if let Some(text) = output::finish(printed, query.as_ref(), global.output)? {
        output::print_line(&text).context("write to standard output")?;
    }
    Ok(())
}

async fn login(args: LoginArgs, global: &GlobalArgs) -> Result<serde_json::Value> {
    if !args.service_principal {
        bail!("only service principals can sign in: pass --service-principal");
    }
    profile::check_server(&args.server)?;
    let home = &global.home;
    profile::create_private_dir(home)?;
    let ca_bundle = match &args.ca_bundle {
        Some(path) => Some(
            std::fs::canonicalize(path).with_context(|| format!("CA bundle {}", path.display()))?,
        ),
        None => None,
    };
    let password_path = PathBuf::from(&args.password);
    let credential = if password_path.is_file() {
        let absolute = std::fs::canonicalize(&password_path)?;
        api_types::profile::ProfileCredential::Certificate {
            app_id: args.username.clone(),
            certificate_file: absolute.display().to_string(),
        }
    } else {
        let path = profile::secret_path(home, &args.username);
        profile::create_private_dir(path.parent().expect("secret files live in a directory"))?;
        profile::write_private(
            &path,
            &serde_json::to_vec(&serde_json::json!({"password": args.password}))?,
        )?;
        api_types::profile::ProfileCredential::Secret {
            app_id: args.username.clone(),
            secret_file: path.display().to_string(),
        }
    };
    let profile = api_types::profile::Profile {
        server: args.server.trim_end_matches('/').to_owned(),
        tenant: args.tenant,
        subscription: args.subscription,
        ca_bundle: ca_bundle.map(|path| path.display().to_string()),
        credential,
    };
    // Prove the credential works before keeping it, as `az login` does.
    profile::credential(&profile)?
        .get_token(&[client::MANAGEMENT_SCOPE], &identity::TokenRequestOptions::default())
        .await
        .context("sign-in failed")?;
    profile::save(home, &profile)?;
    Ok(serde_json::Value::Array(vec![profile::account_view(&profile)]))
}

async fn get_access_token(
    args: GetAccessTokenArgs,
    global: &GlobalArgs,
) -> Result<serde_json::Value> {
    let profile = profile::load(&global.home)?;
    let scope = match (args.scope, args.resource) {
        (Some(scope), _) => scope,
        (None, Some(resource)) => format!("{}/.default", resource.trim_end_matches("/.default")),
        (None, None) => client::MANAGEMENT_SCOPE.to_owned(),
    };
    let options = identity::TokenRequestOptions { tenant_id: args.tenant.clone() };
    let token = profile::cached_credential(&global.home, &profile)?
        .get_token(&[scope.as_str()], &options)
        .await?;
    let expires = time::OffsetDateTime::from_unix_timestamp(token.expires_on)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]"
    );
    let mut value = serde_json::json!({
        "accessToken": token.token.expose(),
        "expiresOn": expires.format(&format).unwrap_or_default(),
        "expires_on": token.expires_on,
        "subscription": profile.subscription,
        "tenant": profile.tenant,
        "tokenType": "Bearer",
    });
    if args.tenant.is_some()
        && let Some(map) = value.as_object_mut()
    {
        map.remove("subscription");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};

    use super::*;

    /// The CLI as the `ambient` binary flattens it.
    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: Command,
        #[command(flatten)]
        global: GlobalArgs,
    }

    #[test]
    fn command_tree_is_consistent() {
        refine_help(TestCli::command()).debug_assert();
    }

    #[test]
    fn compute_help_names_the_resource() {
        // Goal: `ambient webapp --help` speaks of web apps, not "resources".
        let mut command = refine_help(TestCli::command());
        let webapp = command.find_subcommand_mut("webapp").unwrap();
        let abouts: Vec<String> = webapp
            .get_subcommands()
            .map(|sub| format!("{}: {}", sub.get_name(), sub.get_about().unwrap()))
            .collect();
        expect_test::expect![[r#"
            [
                "create: Create (or update) a web app, optionally with managed identities",
                "show: Show a web app (or several, by --ids)",
                "update: Update a web app (or several, by --ids): workload selectors, or any property with --set and --remove",
                "list: List the web apps of a resource group, or of the subscription",
                "delete: Delete a web app (or several, by --ids); its system-assigned identity goes with it",
                "identity: Managed identities of a web app",
            ]
        "#]]
        .assert_debug_eq(&abouts);
    }

    #[test]
    fn az_spellings_parse() {
        // Goal: the command lines people copy from az docs parse; method: parse each one.
        let lines = [
            "group create -n rg1 -l local --tags env=dev owner=me",
            "group delete -g rg1 --yes --no-wait",
            "identity create -g rg1 -n id1 --subscription s2",
            "identity show --ids /subscriptions/s/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1 --query clientId -o tsv",
            "identity federated-credential create -g rg1 --identity-name id1 -n fic1 --issuer https://i --subject s --audiences a b",
            "identity federated-credential delete -g rg1 --identity-name id1 -n fic1 --yes",
            "vm create -g rg1 -n vm1 --image Ubuntu2204 --assign-identity --role Reader --scope /subscriptions/s",
            "vm create -g rg1 -n vm1 --assign-identity [system] id1 --host h1",
            "vm identity assign -g rg1 -n vm1 --identities id1 [system]",
            "vm identity remove -g rg1 -n vm1",
            "vm create -g rg1 -n vm1 --assign-identity --workload-user alice --workload-executable /usr/bin/python3",
            "vm update -g rg1 -n vm1 --set properties.ambient.workloadSelectors.user=alice --remove tags.env",
            "webapp update --ids /subscriptions/s/resourceGroups/rg1/providers/Microsoft.Web/sites/app1 --clear-workload-selectors",
            "vm delete -g rg1 -n vm1 -y",
            "webapp create -g rg1 -n app1 --assign-identity",
            "functionapp identity show -g rg1 -n f1 -o none",
            "role assignment create --assignee 00000000-0000-0000-0000-000000000001 --role Reader --scope /subscriptions/s",
            "role assignment list --all --assignee x --include-groups -o table",
            "role assignment delete --ids /a /b --yes",
            "role definition create --role-definition @role.json",
            "role definition list --custom-role-only --name Custom",
            "monitor activity-log list -g rg1 --offset 1d --max-events 10",
            "monitor sign-in-log list --top 5",
        ];
        for line in lines {
            let argv = std::iter::once("ambient").chain(line.split(' '));
            if let Err(error) = TestCli::try_parse_from(argv) {
                panic!("`{line}` does not parse: {error}");
            }
        }
        let rejected = [
            "identity show --ids /x -g rg1",
            "role assignment list --scope /s -g rg1",
            "monitor activity-log list -g rg1 --correlation-id c",
        ];
        for line in rejected {
            let argv = std::iter::once("ambient").chain(line.split(' '));
            assert!(TestCli::try_parse_from(argv).is_err(), "`{line}` should be refused");
        }
    }

    #[test]
    fn table_columns_are_valid_queries() {
        let all = [
            group::GROUP_COLUMNS,
            identity_cmd::IDENTITY_COLUMNS,
            identity_cmd::CREDENTIAL_COLUMNS,
            compute::COMPUTE_COLUMNS,
            role::ASSIGNMENT_COLUMNS,
            role::DEFINITION_COLUMNS,
            monitor::ACTIVITY_COLUMNS,
            monitor::SIGN_IN_COLUMNS,
            ad::SP_COLUMNS,
        ];
        for columns in all {
            for (header, expression) in columns {
                assert!(query::Query::parse(expression).is_ok(), "column {header}: {expression}");
            }
        }
    }
}
