//! Reads one Key Vault secret with `DefaultAzureCredential` and prints its value.
//!
//! ```text
//! read_secret VAULT_URL SECRET_NAME
//! ```
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

use identity::{
    ClientOptions, DefaultAzureCredential, DefaultAzureCredentialOptions, TokenCredential,
    TokenRequestOptions,
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

async fn run() -> Result<String, BoxError> {
    let mut args = std::env::args().skip(1);
    let (Some(vault), Some(name), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: read_secret VAULT_URL SECRET_NAME".into());
    };
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
    let options = DefaultAzureCredentialOptions {
        client_options: ClientOptions {
            extra_root_certificates_pem: ca_pem.into_iter().collect(),
            ..ClientOptions::default()
        },
        ..DefaultAzureCredentialOptions::default()
    };
    let credential = DefaultAzureCredential::new(options)?;
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
    Ok(value.to_owned())
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
