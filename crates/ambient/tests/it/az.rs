//! The real Azure CLI (issue 12): every `az` command of the seeds (`/work/shared/seeds`), run
//! unmodified against `ambient dev` but for their placeholders (group, names, the subscription
//! for `--scope mySubscription`), plus what a user does around them: endpoint discovery with
//! `az cloud register`, Graph look-ups, role assignment tables, Key Vault, App Service, and
//! template deployments with the seeds' identity block.
//!
//! Method: azure-cli 2.91 from PyPI in a venv of its own, a fresh `AZURE_CONFIG_DIR` and `HOME`,
//! the deployment's CA in `REQUESTS_CA_BUNDLE`. Vault names (`{vault}.vault.localhost`) need a
//! hosts entry: as root the Key Vault commands run in a private mount namespace whose
//! `/etc/hosts` has it (nothing on the machine changes).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{Ambient, BINARY, tempdir};

/// An `az` with its own configuration, pointed at one Ambient.
struct Az {
    bin: PathBuf,
    home: PathBuf,
    ca: String,
}

impl Az {
    fn new(ambient: &Ambient) -> Az {
        let home = tempdir("az-home");
        Az { bin: crate::az(), home, ca: ambient.var("REQUESTS_CA_BUNDLE").to_owned() }
    }

    fn command(&self, hosts: Option<&Path>) -> Command {
        let mut command = match hosts {
            Some(hosts) => {
                let mut command = Command::new("unshare");
                command
                    .args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg(format!("mount --bind {} /etc/hosts && exec \"$@\"", hosts.display()))
                    .arg("sh")
                    .arg(&self.bin);
                command
            }
            None => Command::new(&self.bin),
        };
        command
            .env("AZURE_CONFIG_DIR", self.home.join(".azure"))
            .env("HOME", &self.home)
            .env("REQUESTS_CA_BUNDLE", &self.ca)
            .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
            .env("AZURE_CORE_NO_COLOR", "true")
            .env_remove("AZURE_CLIENT_ID")
            .env_remove("AZURE_CLIENT_SECRET")
            .env_remove("AZURE_TENANT_ID")
            .env_remove("IDENTITY_ENDPOINT")
            .env_remove("MSI_ENDPOINT");
        command
    }

    /// Runs `az ARGS` and returns (exit code, stdout, stderr).
    fn run_in(&self, hosts: Option<&Path>, args: &[&str]) -> (i32, String, String) {
        let output = self.command(hosts).args(args).output().expect("run az");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_in(None, args)
    }

    /// Runs `az ARGS -o json`, which must succeed, and parses its output.
    fn json_in(&self, hosts: Option<&Path>, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let (code, stdout, stderr) = self.run_in(hosts, &args);
        assert_eq!(code, 0, "az {args:?} failed:\n{stderr}");
        serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("az {args:?} printed no JSON ({error}): {stdout}"))
    }

    fn json(&self, args: &[&str]) -> Value {
        self.json_in(None, args)
    }

    /// Runs `az ARGS`, which must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, 0, "az {args:?} failed:\n{stderr}");
        stdout
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

fn template(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/templates")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_az_commands_run_against_ambient() {
    let dir = tempdir("az");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let url = ambient.url().to_owned();
    let subscription = ambient.var("AMBIENT_SUBSCRIPTION_ID").to_owned();
    let tenant = ambient.var("AMBIENT_TENANT_ID").to_owned();
    let az = Az::new(&ambient);
    let scope = format!("/subscriptions/{subscription}");

    // Endpoint discovery alone configures the cloud (the banner prints these lines).
    let (_, banner) = ("", std::fs::read_to_string(dir.join("env.sh")).unwrap());
    assert!(
        banner.contains(&format!("az cloud register -n Ambient --endpoint-resource-manager {url}")),
        "{banner}"
    );
    az.ok(&["cloud", "register", "-n", "Ambient", "--endpoint-resource-manager", &url]);
    az.ok(&["cloud", "set", "-n", "Ambient"]);
    az.ok(&["config", "set", "core.instance_discovery=false"]);
    let cloud = az.json(&["cloud", "show", "-n", "Ambient"]);
    assert_eq!(cloud["endpoints"]["activeDirectory"], url.as_str(), "{cloud}");
    assert_eq!(cloud["endpoints"]["microsoftGraphResourceId"], format!("{url}/"), "{cloud}");
    assert!(
        cloud["suffixes"]["keyvaultDns"].as_str().unwrap().starts_with(".vault.localhost:"),
        "{cloud}"
    );

    // `az login` (seed 004), as a service principal.
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
    let accounts = az.json(&[
        "login",
        "--service-principal",
        "-u",
        admin["appId"].as_str().unwrap(),
        "-p",
        admin["password"].as_str().unwrap(),
        "--tenant",
        &tenant,
    ]);
    assert_eq!(accounts[0]["id"], subscription.as_str(), "{accounts}");
    let group = az.json(&["group", "create", "-n", "myResourceGroup", "-l", "westus"]);
    assert_eq!(group["id"], format!("{scope}/resourceGroups/myResourceGroup"));

    // Seed 004: a VM with a system-assigned identity and a role at the subscription (the seed's
    // `--scope mySubscription` placeholder is the subscription's id).
    let vm = az.json(&[
        "vm",
        "create",
        "--resource-group",
        "myResourceGroup",
        "--name",
        "myVM",
        "--image",
        "win2016datacenter",
        "--generate-ssh-keys",
        "--assign-identity",
        "--role",
        "contributor",
        "--scope",
        &scope,
        "--admin-username",
        "azureuser",
        "--admin-password",
        "myPassword12",
    ]);
    assert_eq!(vm["powerState"], "VM running", "{vm}");
    assert_eq!(
        vm["id"],
        format!(
            "{scope}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM"
        )
    );
    let vm_principal = vm["identity"]["systemAssignedIdentity"].as_str().unwrap().to_owned();
    assert!(!vm_principal.is_empty(), "{vm}");
    let granted = az.json(&["role", "assignment", "list", "--assignee", &vm_principal, "--all"]);
    assert_eq!(granted[0]["roleDefinitionName"], "Contributor", "{granted}");
    assert_eq!(granted[0]["scope"], scope.as_str());

    // Seed 004: a user-assigned identity, then a VM with it. With `--role/--scope` az itself
    // refuses (they apply to system identities only), as against Azure.
    let identity =
        az.json(&["identity", "create", "-g", "myResourceGroup", "-n", "myUserAssignedIdentity"]);
    let identity_id = identity["id"].as_str().unwrap().to_owned();
    let identity_principal = identity["principalId"].as_str().unwrap().to_owned();
    assert!(identity["clientId"].as_str().is_some_and(|id| id.len() == 36), "{identity}");
    let (code, _, stderr) = az.run(&[
        "vm",
        "create",
        "--resource-group",
        "myResourceGroup",
        "--name",
        "myVM2",
        "--image",
        "Ubuntu2204",
        "--admin-username",
        "azureuser",
        "--admin-password",
        "Passw0rd!2345",
        "--assign-identity",
        "myUserAssignedIdentity",
        "--role",
        "Reader",
        "--scope",
        &scope,
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("'--scope'/'--role' is only applicable when assign system identity"),
        "{stderr}"
    );
    let vm2 = az.json(&[
        "vm",
        "create",
        "--resource-group",
        "myResourceGroup",
        "--name",
        "myVM2",
        "--image",
        "Ubuntu2204",
        "--admin-username",
        "azureuser",
        "--admin-password",
        "Passw0rd!2345",
        "--assign-identity",
        "myUserAssignedIdentity",
    ]);
    assert!(
        vm2["identity"]["userAssignedIdentities"]
            .as_object()
            .unwrap()
            .keys()
            .any(|key| key.eq_ignore_ascii_case(&identity_id)),
        "{vm2}"
    );

    // Seed 001: an App Service app with the user-assigned identity.
    az.json(&[
        "appservice",
        "plan",
        "create",
        "-g",
        "myResourceGroup",
        "-n",
        "myPlan",
        "--is-linux",
        "--sku",
        "B1",
    ]);
    let app = az.json(&[
        "webapp",
        "create",
        "-g",
        "myResourceGroup",
        "-p",
        "myPlan",
        "-n",
        "myApp",
        "--runtime",
        "PYTHON:3.11",
    ]);
    assert_eq!(app["name"], "myApp", "{app}");
    // The seed's `--identities <identity-name>`: a bare name, which Azure refuses the same way.
    let (code, _, stderr) = az.run(&[
        "webapp",
        "identity",
        "assign",
        "--resource-group",
        "myResourceGroup",
        "--name",
        "myApp",
        "--identities",
        "myUserAssignedIdentity",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("LinkedInvalidPropertyId"), "{stderr}");
    let assigned = az.json(&[
        "webapp",
        "identity",
        "assign",
        "--resource-group",
        "myResourceGroup",
        "--name",
        "myApp",
        "--identities",
        &identity_id,
    ]);
    assert_eq!(
        assigned["userAssignedIdentities"][&identity_id]["principalId"],
        identity_principal.as_str(),
        "{assigned}"
    );
    // A function app's system identity.
    let (code, _, stderr) = crate::run_ambient(
        &["functionapp", "create", "-g", "myResourceGroup", "-n", "myFunctions"],
        &[("AMBIENT_HOME", dir.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{stderr}");
    let function_identity = az.json(&[
        "functionapp",
        "identity",
        "assign",
        "-g",
        "myResourceGroup",
        "-n",
        "myFunctions",
    ]);
    assert_eq!(function_identity["type"], "SystemAssigned", "{function_identity}");

    // Enterprise applications filtered to managed identities (the portal's filter, in Graph).
    let managed =
        az.json(&["ad", "sp", "list", "--filter", "servicePrincipalType eq 'ManagedIdentity'"]);
    let ids: Vec<&str> =
        managed.as_array().unwrap().iter().filter_map(|sp| sp["id"].as_str()).collect();
    assert!(
        ids.contains(&vm_principal.as_str()) && ids.contains(&identity_principal.as_str()),
        "{managed}"
    );
    assert!(
        managed
            .as_array()
            .unwrap()
            .iter()
            .all(|sp| sp["servicePrincipalType"] == "ManagedIdentity")
    );

    // Role assignments by assignee (a Graph look-up) and the table view.
    let assignment = az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        &identity_principal,
        "--role",
        "Reader",
        "--scope",
        group["id"].as_str().unwrap(),
    ]);
    assert!(
        assignment["roleDefinitionId"]
            .as_str()
            .unwrap()
            .ends_with("/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        "{assignment}"
    );
    assert_eq!(assignment["principalType"], "ServicePrincipal");
    let table = az.ok(&["role", "assignment", "list", "--all", "-o", "table"]);
    assert!(
        table.contains("Reader") && table.contains("Contributor") && table.contains("Owner"),
        "{table}"
    );
    let app_sp = az.json(&[
        "ad",
        "sp",
        "create-for-rbac",
        "-n",
        "ci-app",
        "--role",
        "Reader",
        "--scopes",
        group["id"].as_str().unwrap(),
    ]);
    assert_eq!(app_sp["tenant"], tenant.as_str(), "{app_sp}");
    assert!(app_sp["password"].as_str().is_some_and(|password| password.len() > 20));

    // Key Vault: the vault and a secret through the data plane az computes from the suffix.
    let vault = az.json(&[
        "keyvault",
        "create",
        "-g",
        "myResourceGroup",
        "-n",
        "stockvault",
        "-l",
        "westus",
    ]);
    let me = az.json(&["ad", "sp", "list", "--display-name", "ambient-admin"]);
    az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        me[0]["id"].as_str().unwrap(),
        "--assignee-principal-type",
        "ServicePrincipal",
        "--role",
        "Key Vault Secrets Officer",
        "--scope",
        vault["id"].as_str().unwrap(),
    ]);
    if is_root() {
        let hosts = dir.join("hosts");
        let mut text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        text.push_str("\n127.0.0.1 stockvault.vault.localhost\n");
        std::fs::write(&hosts, text).unwrap();
        let set = az.json_in(
            Some(&hosts),
            &[
                "keyvault",
                "secret",
                "set",
                "--vault-name",
                "stockvault",
                "-n",
                "db-password",
                "--value",
                "s3cr3t",
            ],
        );
        assert_eq!(set["value"], "s3cr3t", "{set}");
        let shown = az.json_in(
            Some(&hosts),
            &["keyvault", "secret", "show", "--vault-name", "stockvault", "-n", "db-password"],
        );
        assert_eq!(shown["value"], "s3cr3t");
        assert!(
            shown["id"]
                .as_str()
                .unwrap()
                .starts_with(vault["properties"]["vaultUri"].as_str().unwrap()),
            "{shown}"
        );
    } else {
        eprintln!(
            "NOTE: az keyvault secret set/show need a hosts entry for stockvault.vault.localhost, made in a private mount namespace: run as root to include them"
        );
    }

    // Template deployments: the seeds' identity block, and identity + VM + role assignment in
    // dependency order.
    let seeded = az.json(&[
        "deployment",
        "group",
        "create",
        "-g",
        "myResourceGroup",
        "--template-file",
        &template("seed-identity-block.json"),
        "--parameters",
        "appName=seedApp",
    ]);
    assert_eq!(seeded["properties"]["provisioningState"], "Succeeded", "{seeded}");
    let seeded_app =
        az.json(&["webapp", "identity", "show", "-g", "myResourceGroup", "-n", "seedApp"]);
    let (seeded_id, seeded_identity) =
        seeded_app["userAssignedIdentities"].as_object().unwrap().iter().next().unwrap();
    assert!(seeded_id.ends_with("/userAssignedIdentities/app-identity"), "{seeded_app}");
    assert_eq!(seeded["properties"]["outputs"]["clientId"]["value"], seeded_identity["clientId"]);
    let what_if = az.ok(&[
        "deployment",
        "group",
        "what-if",
        "-g",
        "myResourceGroup",
        "--template-file",
        &template("seed-identity-block.json"),
        "--parameters",
        "appName=seedApp",
        "--no-pretty-print",
    ]);
    assert!(what_if.contains("NoChange"), "{what_if}");
    let deployed = az.json(&[
        "deployment",
        "group",
        "create",
        "-g",
        "myResourceGroup",
        "-n",
        "identity-vm-role",
        "--template-file",
        &template("identity-vm-role.json"),
        "--parameters",
        "vmName=templateVm",
        "identityName=templateIdentity",
    ]);
    assert_eq!(deployed["properties"]["provisioningState"], "Succeeded", "{deployed}");
    let principal = deployed["properties"]["outputs"]["principalId"]["value"].as_str().unwrap();
    let roles =
        az.json(&["role", "assignment", "list", "--assignee", principal, "-g", "myResourceGroup"]);
    assert_eq!(roles[0]["roleDefinitionName"], "Reader", "{roles}");
    let operations = az.json(&[
        "deployment",
        "operation",
        "group",
        "list",
        "-g",
        "myResourceGroup",
        "-n",
        "identity-vm-role",
    ]);
    assert_eq!(operations.as_array().unwrap().len(), 3, "{operations}");

    // `az login --identity` as the VM's workload: the VM's own managed identity.
    let identity_login = Command::new(BINARY)
        .args(["run", "--as", "myVM", "-g", "myResourceGroup", "--"])
        .arg(&az.bin)
        .args(["login", "--identity", "-o", "json"])
        .env("AMBIENT_HOME", &dir)
        .env("AZURE_CONFIG_DIR", az.home.join(".azure"))
        .env("HOME", &az.home)
        .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
        .output()
        .unwrap();
    assert!(identity_login.status.success(), "{}", String::from_utf8_lossy(&identity_login.stderr));
    let logged: Value = serde_json::from_slice(&identity_login.stdout).unwrap();
    assert_eq!(logged[0]["user"]["type"], "servicePrincipal", "{logged}");
    assert_eq!(logged[0]["id"], subscription.as_str());
    drop(ambient);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&az.home).ok();
}
