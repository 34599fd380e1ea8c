//! Reads one Key Vault secret with `DefaultAzureCredential` (or `ManagedIdentityCredential`)
//! and prints its value.
//!
//! ```text
//! read_secret [--credential default|managed-identity] [--json] VAULT_URL SECRET_NAME
//! ```
//!
//! `--credential managed-identity` uses `ManagedIdentityCredential` with the system-assigned
//! identity (or the only one a resource has), as `ManagedIdentityCredential()` with no
//! arguments does in the other SDKs. `--json` prints
//! `{"value": ..., "oid": ..., "credential": ..., "source": ...}` instead of the bare value: the
//! token's `oid` claim and, for the managed identity, the source it detected (`AppService`,
//! `ServiceFabric`, ...), so a test can see which protocol was spoken.
//!
//! The program uses the process's real environment, so it authenticates as whatever the
//! environment offers: a service principal in `AZURE_*` variables, a workload identity, the
//! managed identity of the machine, or the CLI's login. Under
//! `ambient run --as VM -g RG [--isolate] -- target/debug/examples/read_secret URL NAME` that is
//! the VM's managed identity.
//!
//! It does Key Vault's challenge itself, as the Azure SDKs' Key Vault clients do:
//!
//! 1. `GET {vault}/secrets/{name}?api-version=7.5` without a token; the vault answers 401 with
//!    `WWW-Authenticate: Bearer authorization="...", resource="https://vault.azure.net"`;
//! 2. check that the resource's host is a parent domain of the vault's host (so a forged
//!    challenge cannot make us send a token for another audience), and get a token for
//!    `{resource}/.default`;
//! 3. repeat the request with `Authorization: Bearer {token}` and print `value`.
//!
//! TLS trusts the platform's roots plus the PEM file named by `REQUESTS_CA_BUNDLE` or
//! `SSL_CERT_FILE` when set (`ambient run` sets both to Ambient's CA). Host names under
//! `.localhost` (Ambient's default vault names) resolve to 127.0.0.1, as RFC 6761 reserves them.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use base64::Engine as _;
use identity::{
    ClientOptions, DefaultAzureCredential, DefaultAzureCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, ManagedIdentityId,
    TokenCredential, TokenRequestOptions,
};

/// The Key Vault data-plane API version the example speaks.
const API_VERSION: &str = "7.5";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("read_secret: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The credential `--credential` names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Choice {
    Default,
    ManagedIdentity,
}

const USAGE: &str =
    "usage: read_secret [--credential default|managed-identity] [--json] VAULT_URL SECRET_NAME";

async fn run() -> Result<String, BoxError> {
    let mut choice = Choice::Default;
    let mut json = false;
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--credential" => {
                choice = match args.next().as_deref() {
                    Some("default") => Choice::Default,
                    Some("managed-identity") => Choice::ManagedIdentity,
                    _ => return Err(USAGE.into()),
                }
            }
            "--json" => json = true,
            _ if arg.starts_with("--") => return Err(USAGE.into()),
            _ => positional.push(arg),
        }
    }
    let [vault, name] = <[String; 2]>::try_from(positional).map_err(|_| USAGE)?;
    let vault = reqwest::Url::parse(&vault)?;
    if vault.scheme() != "https" {
        return Err(format!("the vault URL must be https, got {vault}").into());
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("{name:?} is not a secret name (letters, digits and '-')").into());
    }
    let ca_pem = ca_bundle()?;
    let http = http_client(&vault, ca_pem.as_deref())?;
    let mut url = vault.join(&format!("secrets/{name}"))?;
    url.query_pairs_mut().append_pair("api-version", API_VERSION);

    // 1. The challenge names the resource (audience) the vault accepts tokens for.
    let challenge = http.get(url.clone()).send().await?;
    if challenge.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Err(
            format!("expected a 401 challenge from the vault, got {}", challenge.status()).into()
        );
    }
    let header = challenge
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .ok_or("the vault's 401 has no WWW-Authenticate header")?;
    let resource = challenge_resource(header)
        .ok_or_else(|| format!("no resource in the challenge {header:?}"))?;
    verify_challenge_resource(&vault, &resource)?;

    // 2. A token for that resource, from whichever credential this environment offers.
    let client_options = ClientOptions {
        extra_root_certificates_pem: ca_pem.into_iter().collect(),
        ..ClientOptions::default()
    };
    let (credential, source): (Box<dyn TokenCredential>, _) = match choice {
        Choice::Default => {
            let options = DefaultAzureCredentialOptions { client_options, ..Default::default() };
            (Box::new(DefaultAzureCredential::new(options)?), None)
        }
        Choice::ManagedIdentity => {
            let options = ManagedIdentityCredentialOptions { client_options, ..Default::default() };
            let credential = ManagedIdentityCredential::new(ManagedIdentityId::System, options)?;
            let source = format!("{:?}", credential.source());
            (Box::new(credential), Some(source))
        }
    };
    let scope = format!("{}/.default", resource.trim_end_matches('/'));
    let token = credential.get_token(&[&scope], &TokenRequestOptions::default()).await?;

    // 3. The secret itself.
    let response = http.get(url).bearer_auth(token.token.expose()).send().await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("the vault answered {status}: {}", body["error"]).into());
    }
    let value = body["value"].as_str().ok_or("the vault's answer has no value")?;
    if !json {
        return Ok(value.to_owned());
    }
    let credential = match choice {
        Choice::Default => "DefaultAzureCredential",
        Choice::ManagedIdentity => "ManagedIdentityCredential",
    };
    let oid = token_claims(token.token.expose())?["oid"].clone();
    let report = serde_json::json!({
        "value": value,
        "oid": oid,
        "credential": credential,
        "source": source,
    });
    Ok(report.to_string())
}

/// The claims of a JWT, read without verifying it: only to report whose token it is.
fn token_claims(token: &str) -> Result<serde_json::Value, BoxError> {
    let payload = token.split('.').nth(1).ok_or("the token is not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// The PEM file named by `REQUESTS_CA_BUNDLE` or `SSL_CERT_FILE`, if either is set.
fn ca_bundle() -> Result<Option<Vec<u8>>, BoxError> {
    let path = ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()));
    match path {
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|error| format!("read {path}: {error}"))?;
            Ok(Some(pem))
        }
        None => Ok(None),
    }
}

fn http_client(vault: &reqwest::Url, ca_pem: Option<&[u8]>) -> Result<reqwest::Client, BoxError> {
    let mut builder = reqwest::Client::builder();
    if let Some(pem) = ca_pem {
        builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem)?);
    }
    if let Some(host) = vault.host_str()
        && host.ends_with(".localhost")
    {
        let port = vault.port_or_known_default().unwrap_or(443);
        builder = builder.resolve(host, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    Ok(builder.build()?)
}

/// The `resource` parameter of a `Bearer` challenge, or its `scope` without `/.default`.
fn challenge_resource(header: &str) -> Option<String> {
    let parameters = header.trim().strip_prefix("Bearer")?;
    let mut scope = None;
    for parameter in parameters.split(',') {
        let Some((key, value)) = parameter.trim().split_once('=') else { continue };
        let value = value.trim().trim_matches('"');
        match key.trim().to_ascii_lowercase().as_str() {
            "resource" => return Some(value.to_owned()),
            "scope" => scope = Some(value.trim_end_matches("/.default").to_owned()),
            _ => {}
        }
    }
    scope
}

/// The resource's host must be the vault's host or a parent domain of it, as the Azure SDKs'
/// Key Vault clients check (`verify_challenge_resource`).
fn verify_challenge_resource(vault: &reqwest::Url, resource: &str) -> Result<(), BoxError> {
    let resource_url = reqwest::Url::parse(resource)?;
    let (Some(vault_host), Some(resource_host)) = (vault.host_str(), resource_url.host_str())
    else {
        return Err(format!("challenge resource {resource:?} has no host").into());
    };
    let vault_host = vault_host.to_ascii_lowercase();
    let resource_host = resource_host.to_ascii_lowercase();
    if vault_host != resource_host && !vault_host.ends_with(&format!(".{resource_host}")) {
        return Err(format!(
            "the challenge resource {resource:?} does not match the vault host {vault_host:?}"
        )
        .into());
    }
    Ok(())
}
