//! The `identity` crate against a real `ambient dev` server and its agent (issue 7): service
//! principals with a secret, a certificate and from environment variables; a federated token
//! file; the managed identities of a VM through IMDS, App Service and the legacy endpoint; the
//! CLI credential running the real `ambient` binary; and `DefaultAzureCredential` with what
//! `ambient run --as` gives a workload.
//!
//! Tokens are checked by their claims (decoded here, independently of the crate). Safety: every
//! managed-identity credential gets the agent's loopback endpoint, injected through an `Env`
//! map or the IMDS base option, so nothing is ever sent to 169.254.169.254.

use ::identity::{
    AccessToken, CliCredential, CliCredentialOptions, ClientCertificateCredential,
    ClientCertificateCredentialOptions, ClientOptions, ClientSecretCredential,
    DefaultAzureCredential, DefaultAzureCredentialOptions, Env, EnvironmentCredential, Error,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, ManagedIdentityId,
    ManagedIdentitySource, TokenCredential, TokenRequestOptions, WorkloadIdentityCredential,
};
use serde_json::{Value, json};

use crate::agent::endpoint_of;
use crate::control_plane::Arm;
use crate::{Ambient, cli_json, tempdir};

const VAULT: &str = "https://vault.azure.net/.default";
const MANAGEMENT: &str = "https://management.azure.com/.default";

fn claims(token: &AccessToken) -> Value {
    use base64::Engine as _;
    let payload = token.token.expose().split('.').nth(1).expect("three-part token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Options that point at the server and trust its CA.
fn client_options(ambient: &Ambient) -> ClientOptions {
    ClientOptions {
        authority_host: ambient.url().to_owned(),
        extra_root_certificates_pem: vec![std::fs::read(ambient.var("AMBIENT_CA_BUNDLE")).unwrap()],
        ..ClientOptions::default()
    }
}

async fn get(credential: &dyn TokenCredential, scope: &str) -> Result<AccessToken, Error> {
    credential.get_token(&[scope], &TokenRequestOptions::default()).await
}

/// A VM with a system identity and one user-assigned identity; returns (vm id, identity body,
/// the VM's system principal id).
async fn vm_with_identities(arm: &Arm, group: &str, vm: &str) -> (String, Value, String) {
    arm.put(&arm.group(group), json!({"location": "westus"})).await;
    let uami = arm.uami(group, &format!("{vm}-id"));
    let (status, identity) = arm.put(&uami, json!({"location": "westus"})).await;
    assert!(status == 200 || status == 201, "{identity}");
    let vm_id = arm.vm(group, vm);
    let (status, body) = arm
        .put(&vm_id, json!({"location": "westus", "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uami: {}}}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let system = body["identity"]["principalId"].as_str().unwrap().to_owned();
    (vm_id, identity, system)
}

#[tokio::test]
async fn service_principals_with_secret_certificate_and_environment_variables() {
    let dir = tempdir("identity-sp");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let tenant = ambient.var("AMBIENT_TENANT_ID");
    let secret_sp = cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "identity-secret"]);
    let cert_sp = cli_json(
        &ambient,
        &["ad", "sp", "create-for-rbac", "-n", "identity-cert", "--create-cert"],
    );
    let secret_app = secret_sp["appId"].as_str().unwrap();
    let password = secret_sp["password"].as_str().unwrap();
    let cert_app = cert_sp["appId"].as_str().unwrap();
    let cert_file = cert_sp["fileWithCertAndPrivateKey"].as_str().unwrap();

    let secret =
        ClientSecretCredential::new(tenant, secret_app, password, client_options(&ambient))
            .unwrap();
    let token = get(&secret, MANAGEMENT).await.unwrap();
    let claims_secret = claims(&token);
    assert_eq!(claims_secret["appid"], secret_app);
    assert_eq!(claims_secret["appidacr"], "1");
    assert_eq!(claims_secret["tid"], tenant);
    assert!(token.expires_on > token.refresh_on.unwrap());

    let certificate = ClientCertificateCredential::new(
        tenant,
        cert_app,
        &std::fs::read(cert_file).unwrap(),
        ClientCertificateCredentialOptions {
            client_options: client_options(&ambient),
            send_certificate_chain: false,
        },
    )
    .unwrap();
    let claims_cert = claims(&get(&certificate, VAULT).await.unwrap());
    assert_eq!(claims_cert["appid"], cert_app);
    assert_eq!(claims_cert["appidacr"], "2");
    assert_eq!(claims_cert["aud"], "https://vault.azure.net");

    // The same two principals described by environment variables.
    let trust_only = ClientOptions {
        extra_root_certificates_pem: client_options(&ambient).extra_root_certificates_pem,
        ..ClientOptions::default()
    };
    for (name, value, app) in [
        ("AZURE_CLIENT_SECRET", password, secret_app),
        ("AZURE_CLIENT_CERTIFICATE_PATH", cert_file, cert_app),
    ] {
        let env = Env::from_pairs([
            ("AZURE_TENANT_ID", tenant),
            ("AZURE_CLIENT_ID", app),
            (name, value),
            ("AZURE_AUTHORITY_HOST", ambient.url()),
        ]);
        let credential = EnvironmentCredential::from_env(&env, trust_only.clone()).unwrap();
        assert_eq!(claims(&get(&credential, VAULT).await.unwrap())["appid"], app, "{name}");
    }

    // A wrong secret is Entra's refusal, with its code.
    let wrong =
        ClientSecretCredential::new(tenant, secret_app, "wrong", client_options(&ambient)).unwrap();
    let error = get(&wrong, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::Authentication { description, .. } if description.contains("AADSTS7000215")),
        "{error:?}"
    );
}

#[tokio::test]
async fn managed_identity_through_imds_app_service_and_the_legacy_endpoint() {
    let dir = tempdir("identity-mi");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vm_id, identity, system) = vm_with_identities(&arm, "rg", "vm1").await;
    let (endpoint, header) = endpoint_of(&arm, &vm_id).await;
    let uami_id = identity["id"].as_str().unwrap().to_owned();
    let client_id = identity["properties"]["clientId"].as_str().unwrap().to_owned();
    let object_id = identity["properties"]["principalId"].as_str().unwrap().to_owned();

    let imds = Env::default();
    let app_service = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{endpoint}/msi/token")),
        ("IDENTITY_HEADER", header.clone()),
    ]);
    let legacy = Env::from_pairs([
        ("MSI_ENDPOINT", format!("{endpoint}/msi/token")),
        ("MSI_SECRET", header.clone()),
    ]);
    let options = ManagedIdentityCredentialOptions {
        imds_endpoint: Some(endpoint.clone()),
        ..ManagedIdentityCredentialOptions::default()
    };
    for (flavour, env, source) in [
        ("imds", &imds, ManagedIdentitySource::Imds),
        ("appService", &app_service, ManagedIdentitySource::AppService),
        ("legacy", &legacy, ManagedIdentitySource::LegacyMsi),
    ] {
        let mut ids = vec![
            (ManagedIdentityId::System, system.as_str()),
            (ManagedIdentityId::ClientId(client_id.clone()), object_id.as_str()),
        ];
        if source != ManagedIdentitySource::LegacyMsi {
            ids.push((ManagedIdentityId::ObjectId(object_id.clone()), object_id.as_str()));
            ids.push((ManagedIdentityId::ResourceId(uami_id.clone()), object_id.as_str()));
        }
        for (id, oid) in ids {
            let credential =
                ManagedIdentityCredential::from_env(env, id.clone(), options.clone()).unwrap();
            assert_eq!(credential.source(), source);
            let token = get(&credential, "https://storage.azure.com/.default")
                .await
                .unwrap_or_else(|error| panic!("{flavour} {id:?}: {error}"));
            let claims = claims(&token);
            assert_eq!(claims["oid"], oid, "{flavour} {id:?}: {claims}");
            assert_eq!(claims["aud"], "https://storage.azure.com", "{flavour} {id:?}");
            assert_eq!(claims["tid"], ambient.var("AMBIENT_TENANT_ID"), "{flavour} {id:?}");
            // Managed-identity tokens live long and are refreshed at half-life.
            assert!(
                token.expires_on - token.refresh_on.unwrap() >= 3600,
                "{flavour} {id:?}: {token:?}"
            );
        }
    }

    // An identity the VM does not hold: IMDS says so and the credential is "unavailable".
    let stranger = ManagedIdentityCredential::from_env(
        &imds,
        ManagedIdentityId::ClientId(uuid::Uuid::new_v4().to_string()),
        options.clone(),
    )
    .unwrap();
    let error = get(&stranger, VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("has not been assigned")),
        "{error:?}"
    );
    // A wrong App Service secret is refused.
    let wrong = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{endpoint}/msi/token")),
        ("IDENTITY_HEADER", "wrong".to_owned()),
    ]);
    let credential =
        ManagedIdentityCredential::from_env(&wrong, ManagedIdentityId::System, options).unwrap();
    assert!(get(&credential, VAULT).await.is_err());
}

#[tokio::test]
async fn cli_credential_runs_the_ambient_cli() {
    let dir = tempdir("identity-cli");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
    let tenant = ambient.var("AMBIENT_TENANT_ID");
    let cli = |home: &std::path::Path, tenant_id: Option<&str>| {
        let options = CliCredentialOptions {
            executable: Some(crate::BINARY.into()),
            extra_env: vec![
                ("AMBIENT_HOME".to_owned(), home.display().to_string()),
                ("AMBIENT_LOG".to_owned(), "warn".to_owned()),
            ],
            tenant_id: tenant_id.map(str::to_owned),
            ..CliCredentialOptions::default()
        };
        // The child sees only these variables: the test process's environment stays out.
        CliCredential::from_env(&Env::default(), options).unwrap()
    };

    let token = get(&cli(&dir, None), VAULT).await.unwrap();
    let claims_default = claims(&token);
    assert_eq!(claims_default["appid"], admin["appId"]);
    assert_eq!(claims_default["aud"], "https://vault.azure.net");
    assert_eq!(token.expires_on, claims_default["exp"].as_i64().unwrap());

    let token = get(&cli(&dir, Some(tenant)), MANAGEMENT).await.unwrap();
    assert_eq!(claims(&token)["tid"], tenant);

    // A home without a profile: the CLI says to log in, so the credential is "unavailable".
    let empty = tempdir("identity-cli-empty");
    let error = get(&cli(&empty, None), VAULT).await.unwrap_err();
    assert!(
        matches!(&error, Error::CredentialUnavailable(m) if m.contains("ambient login")),
        "{error:?}"
    );
}

#[tokio::test]
async fn workload_identity_exchanges_a_federated_token_file() {
    let dir = tempdir("identity-wi");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let tenant = ambient.var("AMBIENT_TENANT_ID");
    arm.put(&arm.group("wi"), json!({"location": "westus"})).await;
    let uami = arm.uami("wi", "workload");
    let (_, identity) = arm.put(&uami, json!({"location": "westus"})).await;
    let identity_client_id = identity["properties"]["clientId"].as_str().unwrap();

    // The "external" issuer is Ambient itself: a service principal's token for the
    // token-exchange audience plays the Kubernetes service-account token.
    let workload = cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "wi-workload"]);
    let workload_credential = ClientSecretCredential::new(
        tenant,
        workload["appId"].as_str().unwrap(),
        workload["password"].as_str().unwrap(),
        client_options(&ambient),
    )
    .unwrap();
    let federated = get(&workload_credential, "api://AzureADTokenExchange/.default").await.unwrap();
    let federated_claims = claims(&federated);
    let issuer = federated_claims["iss"].as_str().unwrap().to_owned();
    let v1 = format!("{}/{tenant}/", ambient.url());
    let v2 = format!("{}/{tenant}/v2.0", ambient.url());
    assert!(issuer == v1 || issuer == v2, "{issuer}");
    let subject = cli_json(
        &ambient,
        &["ad", "sp", "show", "--id", workload["appId"].as_str().unwrap()],
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(federated_claims["sub"], subject.as_str());
    let (status, body) = arm
        .put(
            &format!("{uami}/federatedIdentityCredentials/fic1"),
            json!({"properties": {"issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}}),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");

    let token_file = tempdir("identity-wi-file").join("token");
    std::fs::write(&token_file, format!("{}\n", federated.token.expose())).unwrap();
    let env = Env::from_pairs([
        ("AZURE_TENANT_ID", tenant),
        ("AZURE_CLIENT_ID", identity_client_id),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AZURE_AUTHORITY_HOST", ambient.url()),
    ]);
    let trust_only = ClientOptions {
        extra_root_certificates_pem: client_options(&ambient).extra_root_certificates_pem,
        ..ClientOptions::default()
    };
    let credential = WorkloadIdentityCredential::from_env(&env, trust_only).unwrap();
    let token = get(&credential, VAULT)
        .await
        .unwrap_or_else(|error| panic!("federated exchange refused: {error}"));
    let claims = claims(&token);
    assert_eq!(claims["oid"], identity["properties"]["principalId"]);
    assert_eq!(claims["appid"], identity_client_id);
    assert_eq!(claims["aud"], "https://vault.azure.net");

    // The file is read again for the next request: a token that is not the FIC's is refused.
    std::fs::write(&token_file, token.token.expose()).unwrap();
    let error = get(&credential, MANAGEMENT).await.unwrap_err();
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
}

#[tokio::test]
async fn default_credential_gets_the_vm_token_with_what_ambient_run_provides() {
    let dir = tempdir("identity-default");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let (vm_id, _, system) = vm_with_identities(&arm, "rg", "vm1").await;
    let (endpoint, header) = endpoint_of(&arm, &vm_id).await;
    let options = || DefaultAzureCredentialOptions {
        managed_identity: ManagedIdentityCredentialOptions {
            imds_endpoint: Some(endpoint.clone()),
            ..ManagedIdentityCredentialOptions::default()
        },
        cli: CliCredentialOptions {
            executable: Some("/nonexistent/ambient".into()),
            ..CliCredentialOptions::default()
        },
        ..DefaultAzureCredentialOptions::default()
    };

    // `ambient run --as` (plain): the App Service variables, and the IMDS override.
    let run_env = Env::from_pairs([
        ("IDENTITY_ENDPOINT", format!("{endpoint}/msi/token")),
        ("IDENTITY_HEADER", header.clone()),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", endpoint.clone()),
    ]);
    let credential = DefaultAzureCredential::from_env(&run_env, options()).unwrap();
    let token = get(&credential, VAULT).await.unwrap();
    assert_eq!(claims(&token)["oid"], system.as_str());
    assert_eq!(claims(&token)["xms_mirid"], vm_id.as_str());

    // `ambient run --as --isolate`: no variables at all, IMDS at the VM's address (here the
    // agent's loopback endpoint, injected), found by the chain's probe.
    let credential = DefaultAzureCredential::from_env(&Env::default(), options()).unwrap();
    let token = get(&credential, MANAGEMENT).await.unwrap();
    assert_eq!(claims(&token)["oid"], system.as_str());
}
