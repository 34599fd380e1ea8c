//! `ambient run --as RESOURCE -- COMMAND...`: runs a command as a workload of a compute resource.
//!
//! Plain mode sets the variables the Azure SDKs read (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`
//! for the App Service protocol, `AZURE_POD_IDENTITY_AUTHORITY_HOST` for IMDS clients) and the
//! CA bundle variables. `--flavour` (or the resource's `properties.ambient.identityFlavour`)
//! sets exactly what one platform sets instead (docs/flavours.md):
//!
//! | flavour      | variables                                                              |
//! |--------------|------------------------------------------------------------------------|
//! | `imds`       | `AZURE_POD_IDENTITY_AUTHORITY_HOST`                                    |
//! | `appservice` | `IDENTITY_ENDPOINT`, `IDENTITY_HEADER`                                 |
//! | `arc`        | `IDENTITY_ENDPOINT` (`/arc/...`), `IMDS_ENDPOINT`; root only           |
//! | `ml`         | `MSI_ENDPOINT` (`/msi/token`, 2017-09-01), `MSI_SECRET`                |
//! | `cloudshell` | `MSI_ENDPOINT` (`/cloudshell/token`)                                   |
//! | `servicefabric` | `IDENTITY_ENDPOINT` (`https://.../servicefabric/token`), `IDENTITY_HEADER`, |
//! |              | `IDENTITY_SERVER_THUMBPRINT` (the agent's certificate); the CA bundle  |
//! |              | variables gain the CA that issued that certificate                     |
//! | `workload`   | `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`,    |
//! |              | `AZURE_AUTHORITY_HOST`, as Azure Workload Identity's webhook does      |
//!
//! Every flavour also sets `AZURE_POD_IDENTITY_AUTHORITY_HOST` to the agent, so an SDK that
//! falls back to IMDS reaches the agent on loopback, never 169.254.169.254. The workload
//! flavour's token file holds the resource's identity's token for `api://AzureADTokenExchange`
//! (from the agent) and is rewritten at half its lifetime while the command runs. `--isolate` (Linux, root) runs the command in a network namespace of
//! its own instead, where `169.254.169.254:80` is the resource's IMDS and the server's and
//! vaults' names resolve, so code with no variables at all gets its identity, as on a VM.
//!
//! Isolation touches nothing on the host's network: inside the namespace a forwarder
//! (`ambient netns-forward`) listens on `169.254.169.254:80` and on the server's port on the
//! namespace's loopback, and passes each connection through a Unix socket to this process,
//! which connects it to the agent or the server on the host's loopback. The namespace, its
//! hosts file and the sockets are removed afterwards.
//!
//! A resource with workload selectors serves its identities only to matching processes
//! ([`WORKLOAD_HELP`], docs/flavours.md "Workload attestation"): as root, `ambient run` starts
//! the command as the selected user and group; otherwise it must already run as them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use api_types::hosting::IdentityFlavour;
use clap::Args;
use serde_json::Value;

use crate::GlobalArgs;
use crate::arm::{self, Arm, SubscriptionArgs};
use crate::profile;

/// What `ambient run --help` says of workload selectors.
pub const WORKLOAD_HELP: &str = "\
Workload selectors: a resource whose properties.ambient.workloadSelectors name a user or a group serves its identities only to processes of that user or group.
Run as root, ambient run starts COMMAND as that user (and its primary group, or the selected group) so that it matches; run as another user, it refuses to start unless it already matches.
Selectors on the executable, systemd unit, cgroup or container are the command's to meet: start the right program in the right place.
--isolate cannot be used with a resource that has selectors, because the agent then sees connections from ambient run itself.
--flavour workload needs ambient run itself to match, since it fetches the federated token: run it as the selected user.";

/// Variables that would make a workload use another credential than its identity.
const CLEARED: &[&str] = &[
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_TENANT_ID",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
];

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The resource to run as: its id, or its name with -g.
    #[arg(long = "as", value_name = "RESOURCE")]
    resource: String,
    /// The resource group, when --as is a name.
    #[arg(long, short = 'g')]
    resource_group: Option<String>,
    /// Run in a network namespace where 169.254.169.254:80 is the resource's IMDS and the
    /// server's and vaults' names resolve (Linux, root).
    #[arg(long)]
    isolate: bool,
    /// The managed-identity protocol to present: imds, appservice, arc, servicefabric, ml,
    /// cloudshell or workload (default: the resource's identityFlavour, else App Service and
    /// IMDS both).
    #[arg(long, value_parser = parse_flavour, conflicts_with = "isolate")]
    flavour: Option<IdentityFlavour>,
    #[command(flatten)]
    subscription: SubscriptionArgs,
    /// The command and its arguments (after --).
    #[arg(
        trailing_var_arg = true,
        required = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// Runs the command and returns its exit code.
pub async fn run(args: RunArgs, global: &GlobalArgs) -> Result<i32> {
    let profile = profile::load(&global.home)?;
    let arm = Arm::connect(global, &args.subscription)?;
    let resource_id = resolve(&arm, &args.resource, args.resource_group.as_deref()).await?;
    let Endpoint {
        endpoint,
        header,
        flavour: resource_flavour,
        thumbprint,
        service_fabric_ca,
        selectors,
    } = endpoint(&arm, &resource_id).await?;
    let flavour = args.flavour.or(resource_flavour);
    let account = match &selectors {
        None => None,
        Some(selectors) => workload_account(
            &resource_id,
            selectors,
            &Host::read(),
            args.isolate,
            flavour == Some(IdentityFlavour::Workload),
        )?,
    };
    let ca = profile.ca_bundle.clone().map(PathBuf::from);
    let bundle = ca.as_ref().map(|ca| {
        let sibling = ca.with_file_name("ca-bundle.pem");
        if sibling.exists() { sibling } else { ca.clone() }
    });
    let mut env: Vec<(String, String)> = Vec::new();
    if let (Some(ca), Some(bundle)) = (&ca, &bundle) {
        env.push(("REQUESTS_CA_BUNDLE".to_owned(), bundle.display().to_string()));
        env.push(("SSL_CERT_FILE".to_owned(), bundle.display().to_string()));
        env.push(("NODE_EXTRA_CA_CERTS".to_owned(), ca.display().to_string()));
        env.push(("AMBIENT_CA_BUNDLE".to_owned(), ca.display().to_string()));
    }
    if args.isolate {
        let vaults = vault_hosts(&arm).await;
        return run_isolated(&args.command, &env, &endpoint, &profile.server, &vaults).await;
    }
    // The safety net of every flavour: IMDS is the agent.
    env.push(("AZURE_POD_IDENTITY_AUTHORITY_HOST".to_owned(), endpoint.clone()));
    let mut token_file = None;
    let mut trust_file = None;
    match flavour {
        None => {
            env.push(("IDENTITY_ENDPOINT".to_owned(), format!("{endpoint}/msi/token")));
            env.push(("IDENTITY_HEADER".to_owned(), header));
        }
        Some(IdentityFlavour::Imds) => {}
        Some(IdentityFlavour::AppService) => {
            env.push(("IDENTITY_ENDPOINT".to_owned(), format!("{endpoint}/msi/token")));
            env.push(("IDENTITY_HEADER".to_owned(), header));
        }
        Some(IdentityFlavour::Arc) => {
            if !is_root() {
                bail!(
                    "--flavour arc needs root: the SDKs read Azure Arc's key files only from /var/opt/azcmagent/tokens, which the agent (running as root) writes"
                );
            }
            env.push((
                "IDENTITY_ENDPOINT".to_owned(),
                format!("{endpoint}/arc/metadata/identity/oauth2/token"),
            ));
            env.push(("IMDS_ENDPOINT".to_owned(), endpoint.clone()));
        }
        Some(IdentityFlavour::Ml) => {
            env.push(("MSI_ENDPOINT".to_owned(), format!("{endpoint}/msi/token")));
            env.push(("MSI_SECRET".to_owned(), header));
        }
        Some(IdentityFlavour::CloudShell) => {
            env.push(("MSI_ENDPOINT".to_owned(), format!("{endpoint}/cloudshell/token")));
        }
        Some(IdentityFlavour::ServiceFabric) => {
            let Some(thumbprint) = thumbprint else {
                bail!("the agent serving {resource_id} reports no Service Fabric certificate")
            };
            let https = endpoint.replacen("http://", "https://", 1);
            env.push(("IDENTITY_ENDPOINT".to_owned(), format!("{https}/servicefabric/token")));
            env.push(("IDENTITY_HEADER".to_owned(), header));
            env.push(("IDENTITY_SERVER_THUMBPRINT".to_owned(), thumbprint));
            // Clients that validate the chain instead of pinning the thumbprint (MSAL Node)
            // trust the agent's certificate through its CA, as a node trusts its cluster's
            // certificate.
            if let Some(service_fabric_ca) = service_fabric_ca {
                let bundles = ServiceFabricTrust::write(
                    ca.as_deref(),
                    bundle.as_deref(),
                    &service_fabric_ca,
                )?;
                env.retain(|(name, _)| !TRUST_VARIABLES.contains(&name.as_str()));
                if let Some(bundle) = &bundles.bundle {
                    env.push(("REQUESTS_CA_BUNDLE".to_owned(), bundle.display().to_string()));
                    env.push(("SSL_CERT_FILE".to_owned(), bundle.display().to_string()));
                }
                env.push(("NODE_EXTRA_CA_CERTS".to_owned(), bundles.extra.display().to_string()));
                trust_file = Some(bundles);
            }
        }
        Some(IdentityFlavour::Workload) => {
            let file = WorkloadTokenFile::start(&endpoint).await?;
            env.push(("AZURE_CLIENT_ID".to_owned(), file.client_id.clone()));
            env.push(("AZURE_TENANT_ID".to_owned(), file.tenant_id.clone()));
            env.push(("AZURE_AUTHORITY_HOST".to_owned(), profile.server.clone()));
            env.push(("AZURE_FEDERATED_TOKEN_FILE".to_owned(), file.path.display().to_string()));
            token_file = Some(file);
        }
    }
    let mut command = tokio::process::Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    for name in CLEARED {
        command.env_remove(name);
    }
    command.envs(env);
    if let Some(account) = &account {
        command.uid(account.uid).gid(account.gid);
        command.env("USER", &account.name).env("LOGNAME", &account.name);
        command.env("HOME", &account.home);
    }
    let status = command.status().await.with_context(|| format!("run {}", args.command[0]));
    drop(token_file);
    drop(trust_file);
    Ok(exit_code(status?))
}

/// The CA bundle variables `--flavour servicefabric` extends with the agent's CA.
const TRUST_VARIABLES: &[&str] = &["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"];

/// The CA files of `--flavour servicefabric`: the profile's bundle and its CA, each followed
/// by the agent's Service Fabric CA, in a private directory removed on drop.
struct ServiceFabricTrust {
    directory: PathBuf,
    /// The full bundle (`REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`), when the profile has one to
    /// extend: these variables replace the platform's roots, so they are not set otherwise.
    bundle: Option<PathBuf>,
    /// The extra CAs only (`NODE_EXTRA_CA_CERTS`, which Node adds to its own roots).
    extra: PathBuf,
}

impl ServiceFabricTrust {
    fn write(ca: Option<&Path>, bundle: Option<&Path>, agent_ca_pem: &str) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        if !agent_ca_pem.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
            bail!("the agent's Service Fabric CA is not a PEM certificate");
        }
        let directory =
            std::env::temp_dir().join(format!("ambient-servicefabric-{}", std::process::id()));
        // A directory of this name is left over from an earlier process with this id.
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&directory)
            .with_context(|| format!("create {}", directory.display()))?;
        let trust = ServiceFabricTrust {
            bundle: bundle.map(|_| directory.join("ca-bundle.pem")),
            extra: directory.join("extra-ca.pem"),
            directory,
        };
        let read = |path: Option<&Path>| -> Result<String> {
            let Some(path) = path else { return Ok(String::new()) };
            let mut text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            Ok(text)
        };
        if let Some(path) = &trust.bundle {
            std::fs::write(path, format!("{}{agent_ca_pem}", read(bundle)?))
                .with_context(|| format!("write {}", path.display()))?;
        }
        std::fs::write(&trust.extra, format!("{}{agent_ca_pem}", read(ca)?))
            .with_context(|| format!("write {}", trust.extra.display()))?;
        Ok(trust)
    }
}

impl Drop for ServiceFabricTrust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// The workload selectors `ambient run` can act on; the others are named only to say they
/// exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Selectors {
    user: Option<String>,
    group: Option<String>,
    /// The other selectors given (`executable`, `systemdUnit`, ...), by name.
    others: Vec<String>,
}

impl Selectors {
    fn of(value: &Value) -> Option<Selectors> {
        let map = value.as_object().filter(|map| !map.is_empty())?;
        let text = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_owned);
        let others =
            map.keys().filter(|name| !matches!(name.as_str(), "user" | "group")).cloned().collect();
        Some(Selectors { user: text("user"), group: text("group"), others })
    }
}

/// What `ambient run` knows of the host's accounts and of itself.
#[derive(Debug, Clone, Default)]
struct Host {
    /// `/etc/passwd`.
    passwd: String,
    /// `/etc/group`.
    group: String,
    /// This process's effective uid, gid and supplementary groups.
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

/// The account the command runs as when `ambient run` (as root) switches to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

impl Host {
    fn read() -> Host {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|ids| ids.split_whitespace().filter_map(|id| id.parse().ok()).collect())
                .unwrap_or_default()
        };
        // `Uid:` and `Gid:` list the real, effective, saved and filesystem ids.
        Host {
            passwd: std::fs::read_to_string("/etc/passwd").unwrap_or_default(),
            group: std::fs::read_to_string("/etc/group").unwrap_or_default(),
            uid: field("Uid:").get(1).copied().unwrap_or(u32::MAX),
            gid: field("Gid:").get(1).copied().unwrap_or(u32::MAX),
            groups: field("Groups:"),
        }
    }

    /// The passwd entry of a user name or uid.
    fn user(&self, user: &str) -> Option<Account> {
        self.passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let (name, uid, gid, home) =
                (fields.first()?, fields.get(2)?, fields.get(3)?, fields.get(5)?);
            if *name != user && *uid != user {
                return None;
            }
            Some(Account {
                name: (*name).to_owned(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: (*home).to_owned(),
            })
        })
    }

    /// The gid of a group name or number.
    fn group_id(&self, group: &str) -> Option<u32> {
        if !group.is_empty() && group.bytes().all(|byte| byte.is_ascii_digit()) {
            return group.parse().ok();
        }
        self.group.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&group)).then(|| fields.get(2)?.parse().ok())?
        })
    }
}

/// How the command comes to match the resource's user and group selectors: `None` to run it
/// as this process is (which matches), or the account to switch to (as root); an error when
/// it cannot match.
fn workload_account(
    resource_id: &str,
    selectors: &Selectors,
    host: &Host,
    isolate: bool,
    token_file: bool,
) -> Result<Option<Account>> {
    if isolate {
        bail!(
            "--isolate cannot be used with {resource_id}: it has workload selectors, and the agent would see ambient run itself instead of the command"
        );
    }
    if selectors.user.is_none() && selectors.group.is_none() {
        if token_file {
            bail!(
                "--flavour workload cannot be used with {resource_id}: ambient run fetches the federated token itself and cannot match its selectors ({})",
                selectors.others.join(", ")
            );
        }
        return Ok(None);
    }
    let user = match &selectors.user {
        None => None,
        Some(user) => Some(host.user(user).with_context(|| {
            format!("{resource_id} selects user {user}, who does not exist on this host")
        })?),
    };
    let group = match &selectors.group {
        None => None,
        Some(group) => Some(host.group_id(group).with_context(|| {
            format!("{resource_id} selects group {group}, which does not exist on this host")
        })?),
    };
    let user_matches = user.as_ref().is_none_or(|user| user.uid == host.uid);
    let group_matches = group.is_none_or(|gid| host.gid == gid || host.groups.contains(&gid));
    if user_matches && group_matches {
        return Ok(None);
    }
    let wanted = [
        selectors.user.as_ref().map(|user| format!("user {user}")),
        selectors.group.as_ref().map(|group| format!("group {group}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    if host.uid != 0 {
        bail!(
            "{resource_id} serves its identities only to processes of {wanted} (its workload selectors): run ambient run as {wanted}, or as root to start the command as them"
        );
    }
    if token_file {
        bail!(
            "--flavour workload cannot switch to {wanted}: ambient run fetches the federated token itself, so run it as {wanted}"
        );
    }
    let mut account = match user {
        Some(account) => account,
        None => Account {
            name: "root".to_owned(),
            uid: host.uid,
            gid: host.gid,
            home: std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned()),
        },
    };
    if let Some(gid) = group {
        account.gid = gid;
    }
    Ok(Some(account))
}

fn parse_flavour(name: &str) -> Result<IdentityFlavour, String> {
    IdentityFlavour::parse(name).ok_or_else(|| {
        let names: Vec<&str> =
            IdentityFlavour::ALL.iter().map(|flavour| flavour.as_str()).collect();
        format!("one of {}", names.join(", "))
    })
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0)
}

/// The audience of federated assertions (Azure Workload Identity's projected tokens).
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The shortest wait between two rewrites of the federated token file.
const TOKEN_FILE_REWRITE_MIN: Duration = Duration::from_secs(5);

/// The federated token file of `--flavour workload`, rewritten at half its token's lifetime by
/// a background task; the task stops and the file's directory is removed on drop.
struct WorkloadTokenFile {
    path: PathBuf,
    client_id: String,
    tenant_id: String,
    refresher: tokio::task::JoinHandle<()>,
}

impl WorkloadTokenFile {
    async fn start(endpoint: &str) -> Result<WorkloadTokenFile> {
        use std::os::unix::fs::DirBuilderExt as _;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .context("http client")?;
        let info: Value = http
            .get(format!("{endpoint}/metadata/identity/info"))
            .query(&[("api-version", "2018-10-01")])
            .header("Metadata", "true")
            .send()
            .await
            .context("ask the agent for the tenant")?
            .error_for_status()
            .context("ask the agent for the tenant")?
            .json()
            .await?;
        let tenant_id = info["tenantId"].as_str().context("the agent named no tenant")?.to_owned();
        let directory =
            std::env::temp_dir().join(format!("ambient-workload-{}", std::process::id()));
        // A directory of this name is left over from an earlier process with this id.
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&directory)
            .with_context(|| format!("create {}", directory.display()))?;
        let path = directory.join("azure-identity-token");
        let (client_id, expires_in) = write_assertion(&http, endpoint, &path).await?;
        let refresher = tokio::spawn({
            let endpoint = endpoint.to_owned();
            let path = path.clone();
            async move {
                let mut wait = half(expires_in);
                loop {
                    tokio::time::sleep(wait).await;
                    wait = match write_assertion(&http, &endpoint, &path).await {
                        Ok((_, expires_in)) => half(expires_in),
                        Err(error) => {
                            eprintln!(
                                "ambient run: renewing the federated token file failed: {error:#}"
                            );
                            TOKEN_FILE_REWRITE_MIN
                        }
                    };
                }
            }
        });
        Ok(WorkloadTokenFile { path, client_id, tenant_id, refresher })
    }
}

impl Drop for WorkloadTokenFile {
    fn drop(&mut self) {
        self.refresher.abort();
        if let Some(directory) = self.path.parent() {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

fn half(expires_in: u64) -> Duration {
    Duration::from_secs(expires_in / 2).max(TOKEN_FILE_REWRITE_MIN)
}

/// Fetches the identity's token for the token-exchange audience from the agent and replaces
/// the file with it (0600, atomically); returns the identity's client id and the token's
/// remaining lifetime in seconds.
async fn write_assertion(
    http: &reqwest::Client,
    endpoint: &str,
    path: &Path,
) -> Result<(String, u64)> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let answer: Value = http
        .get(format!("{endpoint}/metadata/identity/oauth2/token"))
        .query(&[("api-version", "2018-02-01"), ("resource", TOKEN_EXCHANGE_AUDIENCE)])
        .header("Metadata", "true")
        .send()
        .await
        .context("ask the agent for a federated token")?
        .error_for_status()
        .context("ask the agent for a federated token")?
        .json()
        .await?;
    let token = answer["access_token"].as_str().context("no access_token from the agent")?;
    let client_id = answer["client_id"].as_str().context("no client_id from the agent")?;
    let expires_in = answer["expires_in"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .context("no expires_in from the agent")?;
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("write {}", temporary.display()))?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path).with_context(|| format!("write {}", path.display()))?;
    Ok((client_id.to_owned(), expires_in))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

async fn resolve(arm: &Arm, resource: &str, group: Option<&str>) -> Result<String> {
    if resource.starts_with('/') {
        return Ok(resource.to_owned());
    }
    let Some(group) = group else {
        bail!(
            "--as {resource} is a name: pass its resource group with -g, or give the full resource id"
        )
    };
    let path = arm::path(
        &format!("{}/resources", arm::group_id(&arm.subscription, group)),
        arm::API_RESOURCE_GROUPS,
    );
    let resources = arm.list(path, usize::MAX).await?;
    let compute = [
        "microsoft.compute/virtualmachines",
        "microsoft.compute/virtualmachinescalesets",
        "microsoft.web/sites",
        "microsoft.containerinstance/containergroups",
        "microsoft.containerservice/managedclusters",
        "microsoft.logic/workflows",
        "microsoft.storage/storageaccounts",
    ];
    let matches: Vec<&Value> = resources
        .iter()
        .filter(|item| {
            item["name"].as_str().is_some_and(|name| name.eq_ignore_ascii_case(resource))
        })
        .filter(|item| {
            item["type"]
                .as_str()
                .is_some_and(|kind| compute.contains(&kind.to_ascii_lowercase().as_str()))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one["id"].as_str().context("resource without id")?.to_owned()),
        [] => bail!("no compute resource named {resource} in resource group {group}"),
        _ => bail!("several resources are named {resource} in {group}: give the full resource id"),
    }
}

/// The resource's metadata listener, App Service secret and flavour, waiting briefly for the
/// agent to report a resource that was just created.
struct Endpoint {
    /// `http://IP:PORT`.
    endpoint: String,
    /// The App Service secret.
    header: String,
    /// The resource's `identityFlavour`.
    flavour: Option<IdentityFlavour>,
    /// The Service Fabric certificate's SHA-1 thumbprint.
    thumbprint: Option<String>,
    /// The PEM of the CA that issued the Service Fabric certificate.
    service_fabric_ca: Option<String>,
    /// The resource's `workloadSelectors`, when it has any.
    selectors: Option<Selectors>,
}

async fn endpoint(arm: &Arm, resource_id: &str) -> Result<Endpoint> {
    let path = format!("/hosting/endpoints?resourceId={}", client::encode(resource_id));
    for _ in 0..100 {
        let answer = arm.get(path.clone()).await?;
        if let (Some(endpoint), Some(header)) =
            (answer["endpoint"].as_str(), answer["identityHeader"].as_str())
        {
            return Ok(Endpoint {
                endpoint: endpoint.to_owned(),
                header: header.to_owned(),
                flavour: answer["identityFlavour"].as_str().and_then(IdentityFlavour::parse),
                thumbprint: answer["serviceFabricThumbprint"].as_str().map(str::to_owned),
                service_fabric_ca: answer["serviceFabricCa"].as_str().map(str::to_owned),
                selectors: Selectors::of(&answer["workloadSelectors"]),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no agent serves {resource_id}: is an agent running for its host?")
}

async fn vault_hosts(arm: &Arm) -> Vec<String> {
    let path = arm::path(
        &format!("/subscriptions/{}/providers/Microsoft.KeyVault/vaults", arm.subscription),
        crate::keyvault::API_KEY_VAULT,
    );
    arm.list(path, 10_000)
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|vault| vault["properties"]["vaultUri"].as_str())
        .filter_map(|uri| {
            reqwest::Url::parse(uri).ok().and_then(|url| url.host_str().map(str::to_owned))
        })
        .collect()
}

/// The namespace, its hosts file, the socket directory and the forwarder, removed on drop.
struct Namespace {
    name: String,
    sockets: PathBuf,
    forwarder: Option<tokio::process::Child>,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut forwarder) = self.forwarder.take() {
            let _ = forwarder.start_kill();
        }
        let _ = std::process::Command::new("ip").args(["netns", "delete", &self.name]).output();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
        let _ = std::fs::remove_dir_all(&self.sockets);
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let output =
        std::process::Command::new("ip").args(args).output().context("run ip (iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {} (--isolate needs root on Linux)",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

async fn run_isolated(
    command: &[String],
    env: &[(String, String)],
    endpoint: &str,
    server: &str,
    vaults: &[String],
) -> Result<i32> {
    let imds = reqwest::Url::parse(endpoint).context("agent endpoint URL")?;
    let imds_target = format!(
        "{}:{}",
        imds.host_str().unwrap_or("127.0.0.1"),
        imds.port_or_known_default().unwrap_or(80)
    );
    let server_url = reqwest::Url::parse(server).context("server URL")?;
    let server_host = server_url.host_str().unwrap_or("localhost").to_owned();
    let server_port = server_url.port_or_known_default().unwrap_or(443);
    let server_target = if server_host == "localhost" {
        format!("127.0.0.1:{server_port}")
    } else {
        format!("{server_host}:{server_port}")
    };

    let name = format!("ambient-{}", std::process::id());
    let sockets = std::env::temp_dir().join(format!("ambient-run-{}", std::process::id()));
    ip(&["netns", "add", &name])?;
    let mut namespace = Namespace { name: name.clone(), sockets: sockets.clone(), forwarder: None };
    ip(&["-n", &name, "link", "set", "lo", "up"])?;
    ip(&["-n", &name, "address", "add", "169.254.169.254/32", "dev", "lo"])?;
    let etc = Path::new("/etc/netns").join(&name);
    std::fs::create_dir_all(&etc).with_context(|| format!("create {}", etc.display()))?;
    let suffix_names: Vec<String> =
        vaults.iter().map(|host| host.split(':').next().unwrap_or(host).to_owned()).collect();
    let dns_suffix = suffix_names
        .first()
        .and_then(|host| host.split_once(".vault.").map(|(_, suffix)| suffix.to_owned()));
    let mut names = vec![server_host.clone()];
    if let Some(suffix) = &dns_suffix {
        names.extend([
            format!("login.{suffix}"),
            format!("management.{suffix}"),
            format!("vault.{suffix}"),
        ]);
    }
    names.extend(suffix_names);
    names.sort();
    names.dedup();
    std::fs::write(
        etc.join("hosts"),
        format!("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {}\n", names.join(" ")),
    )
    .context("write the namespace's hosts file")?;
    profile::create_private_dir(&sockets)?;

    let imds_socket = sockets.join("imds.sock");
    let server_socket = sockets.join("server.sock");
    relay(&imds_socket, imds_target)?;
    relay(&server_socket, server_target)?;
    let me = std::env::current_exe().context("find the ambient binary")?;
    let mut forwarder = tokio::process::Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(&me)
        .arg("netns-forward")
        .arg("--map")
        .arg(format!("169.254.169.254:80={}", imds_socket.display()))
        .arg("--map")
        .arg(format!("127.0.0.1:{server_port}={}", server_socket.display()))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start the namespace's forwarder")?;
    let stdout = forwarder.stdout.take().context("forwarder stdout")?;
    namespace.forwarder = Some(forwarder);
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
        Ok(Ok(Some(line))) if line == "ready" => {}
        _ => bail!("the namespace's forwarder did not start"),
    }

    let mut child = tokio::process::Command::new("ip");
    child.args(["netns", "exec", &name]).args(command);
    for cleared in CLEARED {
        child.env_remove(cleared);
    }
    child.envs(env.iter().cloned());
    let status = child.status().await.with_context(|| format!("run {}", command[0]))?;
    drop(namespace);
    Ok(exit_code(status))
}

/// Accepts connections on a Unix socket and joins each to a new TCP connection to `target`.
fn relay(socket: &Path, target: String) -> Result<()> {
    let listener = tokio::net::UnixListener::bind(socket)
        .with_context(|| format!("listen on {}", socket.display()))?;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    Ok(())
}

/// The forwarder that runs inside the namespace: `ADDR=SOCKET` pairs; prints `ready` once every
/// address listens, then serves until killed.
pub async fn forward(maps: &[String]) -> Result<()> {
    let mut listeners = Vec::new();
    for map in maps {
        let (address, socket) =
            map.split_once('=').with_context(|| format!("--map {map} is not ADDR=SOCKET"))?;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listen on {address}"))?;
        listeners.push((listener, PathBuf::from(socket)));
    }
    for (listener, socket) in listeners {
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let socket = socket.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::UnixStream::connect(&socket).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }
    crate::output::print_line("ready").context("write to standard output")?;
    std::future::pending::<()>().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use serde_json::json;

    use super::*;

    const AGENT_CA: &str = "-----BEGIN CERTIFICATE-----\nagent\n-----END CERTIFICATE-----\n";

    #[test]
    fn service_fabric_trust_appends_the_agent_ca_and_is_removed_on_drop() {
        let dir =
            std::env::temp_dir().join(format!("cli-sf-trust-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        let bundle = dir.join("ca-bundle.pem");
        // The profile's files, one without a final newline.
        std::fs::write(&ca, "ambient-ca").unwrap();
        std::fs::write(&bundle, "roots\nambient-ca\n").unwrap();

        let trust = ServiceFabricTrust::write(Some(&ca), Some(&bundle), AGENT_CA).unwrap();
        let written = trust.bundle.clone().unwrap();
        assert_eq!(
            std::fs::read_to_string(&written).unwrap(),
            format!("roots\nambient-ca\n{AGENT_CA}")
        );
        assert_eq!(
            std::fs::read_to_string(&trust.extra).unwrap(),
            format!("ambient-ca\n{AGENT_CA}")
        );
        let directory = trust.directory.clone();
        drop(trust);
        assert!(!directory.exists());

        // Without a profile bundle only NODE_EXTRA_CA_CERTS's file is written.
        let trust = ServiceFabricTrust::write(None, None, AGENT_CA).unwrap();
        assert_eq!(trust.bundle, None);
        assert_eq!(std::fs::read_to_string(&trust.extra).unwrap(), AGENT_CA);
        drop(trust);
        // Anything but a PEM certificate is refused.
        assert!(ServiceFabricTrust::write(None, None, "not a certificate").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The decision for a resource with `selectors`, taken by a process running as `uid`
    /// (gid 100, supplementary group 27) on a host with users alice (1001) and bob (1002) and
    /// the group web (500).
    #[track_caller]
    fn check(selectors: Value, uid: u32, isolate: bool, token_file: bool, expected: Expect) {
        let host = Host {
            passwd: "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/sh\nbob:x:1002:1002::/home/bob:/bin/sh\n".to_owned(),
            group: "root:x:0:\nweb:x:500:alice\n".to_owned(),
            uid,
            gid: 100,
            groups: vec![27],
        };
        let selectors = Selectors::of(&selectors).expect("selectors");
        let outcome = workload_account("vm1", &selectors, &host, isolate, token_file);
        let text = match outcome {
            Ok(None) => "run as is".to_owned(),
            Ok(Some(account)) => format!("switch to {account:?}"),
            Err(error) => format!("error: {error}"),
        };
        expected.assert_eq(&text);
    }

    #[test]
    fn root_starts_the_command_as_the_selected_user_and_group() {
        check(
            json!({"user": "alice"}),
            0,
            false,
            false,
            expect![[
                r#"switch to Account { name: "alice", uid: 1001, gid: 1001, home: "/home/alice" }"#
            ]],
        );
        check(
            json!({"user": "1002", "group": "web"}),
            0,
            false,
            false,
            expect![[
                r#"switch to Account { name: "bob", uid: 1002, gid: 500, home: "/home/bob" }"#
            ]],
        );
        check(
            json!({"user": "carol"}),
            0,
            false,
            false,
            expect!["error: vm1 selects user carol, who does not exist on this host"],
        );
    }

    #[test]
    fn other_users_run_as_they_are_when_they_match_and_are_refused_otherwise() {
        check(json!({"user": "alice"}), 1001, false, false, expect!["run as is"]);
        check(json!({"group": "27"}), 1001, false, false, expect!["run as is"]);
        check(
            json!({"user": "alice"}),
            1002,
            false,
            false,
            expect![
                "error: vm1 serves its identities only to processes of user alice (its workload selectors): run ambient run as user alice, or as root to start the command as them"
            ],
        );
        check(json!({"executable": "/usr/bin/python3"}), 1002, false, false, expect!["run as is"]);
    }

    #[test]
    fn isolation_and_the_token_file_cannot_switch_users() {
        check(
            json!({"user": "alice"}),
            0,
            true,
            false,
            expect![
                "error: --isolate cannot be used with vm1: it has workload selectors, and the agent would see ambient run itself instead of the command"
            ],
        );
        check(
            json!({"user": "alice"}),
            0,
            false,
            true,
            expect![
                "error: --flavour workload cannot switch to user alice: ambient run fetches the federated token itself, so run it as user alice"
            ],
        );
        check(json!({"user": "alice"}), 1001, false, true, expect!["run as is"]);
        check(
            json!({"systemdUnit": "web.service"}),
            0,
            false,
            true,
            expect![
                "error: --flavour workload cannot be used with vm1: ambient run fetches the federated token itself and cannot match its selectors (systemdUnit)"
            ],
        );
    }
}
