//! The command-line client, shaped like `az`: `ambient <group> <verb> [flags]`.
//!
//! [`Command`] is the clap subcommand tree the `ambient` binary flattens into its own; [`run`]
//! executes one. The CLI talks to the server only through `client` and the public API, signs in
//! with the `identity` library, and keeps its profile under the data directory
//! (`$AMBIENT_HOME/profile.json`, written by `ambient dev` or `ambient login`).

mod ad;
mod output;
mod profile;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

pub use crate::output::Output;

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
    /// Logs.
    #[command(subcommand)]
    Monitor(MonitorCommand),
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
    #[arg(long, short = 'p', value_name = "SECRET_OR_PEM")]
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

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// The sign-in log.
    #[command(subcommand, name = "sign-in-log")]
    SignInLog(SignInLogCommand),
}

#[derive(Debug, Subcommand)]
pub enum SignInLogCommand {
    /// List sign-ins (every token issued or refused), oldest first.
    List {
        /// Only this principal (object id or app id).
        #[arg(long)]
        principal: Option<String>,
        /// Only sign-ins at or after this time (RFC 3339, e.g. 2024-01-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        top: u32,
    },
}

/// Runs one CLI command.
pub async fn run(command: Command, global: GlobalArgs) -> Result<()> {
    let value = match command {
        Command::Login(args) => login(args, &global).await?,
        Command::Account(AccountCommand::Show) => {
            profile::account_view(&profile::load(&global.home)?)
        }
        Command::Account(AccountCommand::GetAccessToken(args)) => {
            get_access_token(args, &global).await?
        }
        Command::Ad(command) => ad::run(command, &global).await?,
        Command::TokenKeys(TokenKeysCommand::Rotate { activate_in }) => {
            let client = profile::client(&profile::load(&global.home)?)?;
            client
                .post(
                    "/v1.0/ambient/signingKeys/rotate",
                    &serde_json::json!({"activateInSeconds": activate_in}),
                )
                .await?
        }
        Command::TokenKeys(TokenKeysCommand::List) => {
            let client = profile::client(&profile::load(&global.home)?)?;
            serde_json::Value::Array(
                client
                    .get("/v1.0/ambient/signingKeys")
                    .await?
                    .get("keys")
                    .and_then(|keys| keys.as_array())
                    .cloned()
                    .unwrap_or_default(),
            )
        }
        Command::Monitor(MonitorCommand::SignInLog(SignInLogCommand::List {
            principal,
            since,
            top,
        })) => {
            let client = profile::client(&profile::load(&global.home)?)?;
            let mut clauses = Vec::new();
            if let Some(principal) = principal {
                clauses.push(format!("appId eq '{}'", principal.replace('\'', "''")));
            }
            if let Some(since) = since {
                clauses.push(format!("createdDateTime ge {since}"));
            }
            let mut path = format!("/v1.0/auditLogs/signIns?$top={top}");
            if !clauses.is_empty() {
                path.push_str(&format!("&$filter={}", client::encode(&clauses.join(" and "))));
            }
            let events = client::values(client.get(&path).await?);
            if global.output == Output::Json {
                serde_json::Value::Array(events)
            } else {
                serde_json::Value::Array(events.iter().map(sign_in_row).collect())
            }
        }
    };
    if !value.is_null() {
        println!("{}", output::render(&value, global.output));
    }
    Ok(())
}

/// The columns of a sign-in worth a table row.
fn sign_in_row(event: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "time": event["createdDateTime"],
        "appId": event["appId"],
        "principal": event["servicePrincipalName"],
        "credential": event["credentialType"],
        "resource": event["resourceId"],
        "result": if event["status"]["errorCode"] == 0 { "success" } else { "failure" },
        "errorCode": event["status"]["errorCode"],
        "ip": event["ipAddress"],
    })
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
    let token = profile::credential(&profile)?.get_token(&[scope.as_str()], &options).await?;
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
