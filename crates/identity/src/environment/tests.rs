//! Tests of [`EnvironmentCredential`]: which credential the variables select, what is reported
//! missing, and PEM versus PKCS#12 files, against the fake Entra endpoint.

use std::sync::Arc;

use crate::clock::FakeClock;
use crate::env::Env;
use crate::environment::EnvironmentCredential;
use crate::testing::{FakeEntra, PKI, thumbprint};
use crate::{ClientOptions, Error, TokenCredential, TokenRequestOptions};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "3f9c2a1e-0000-4000-8000-000000000011";
const VAULT: &str = "https://vault.azure.net/.default";

/// Options trusting the test CA, with an authority that must be replaced by the variables.
fn options() -> ClientOptions {
    PKI.client_options("https://authority.invalid")
}

fn build(env: &Env, clock: &Arc<FakeClock>) -> Result<EnvironmentCredential, Error> {
    EnvironmentCredential::with_clock(env, options(), clock.clone())
}

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("identity-env-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[track_caller]
fn check_unavailable(pairs: &[(&str, &str)], missing: &str) {
    let clock = FakeClock::new();
    let credential = build(&Env::from_pairs(pairs.iter().copied()), &clock).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let error = runtime
        .block_on(credential.get_token(&[VAULT], &TokenRequestOptions::default()))
        .unwrap_err();
    let Error::CredentialUnavailable(message) = &error else { panic!("{error:?}") };
    assert!(message.ends_with(&format!("missing {missing}")), "{message}");
}

#[test]
fn missing_variables_are_named() {
    let or = "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH";
    check_unavailable(&[], &format!("AZURE_TENANT_ID, AZURE_CLIENT_ID, {or}"));
    check_unavailable(&[("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", CLIENT_ID)], or);
    check_unavailable(
        &[("AZURE_CLIENT_ID", CLIENT_ID), ("AZURE_CLIENT_SECRET", "s"), ("AZURE_TENANT_ID", "")],
        "AZURE_TENANT_ID",
    );
}

#[tokio::test]
async fn secret_variables_select_a_client_secret_credential_at_the_authority_host() {
    let clock = FakeClock::new();
    let fake = FakeEntra::start(clock.clone()).await;
    fake.register_secret(CLIENT_ID, "s3cr3t");
    let env = Env::from_pairs([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_CLIENT_SECRET", "s3cr3t"),
        // The secret wins over the certificate, as in azure-identity.
        ("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent.pem"),
        ("AZURE_AUTHORITY_HOST", fake.authority.as_str()),
    ]);
    let credential = build(&env, &clock).unwrap();
    assert!(format!("{credential:?}").contains("ClientSecretCredential"), "{credential:?}");
    let token = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();
    assert_eq!(token.token.expose(), "fake-token-1");
    assert_eq!(fake.requests()[0].tenant, TENANT);
    assert!(!format!("{credential:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn certificate_variables_select_a_certificate_credential() {
    let clock = FakeClock::new();
    let fake = FakeEntra::start(clock.clone()).await;
    fake.register_certificate(CLIENT_ID, &PKI.client.public_key, &thumbprint(&PKI.client.cert_der));
    let pem = format!("{}{}", PKI.client.cert_pem, PKI.client.key_pem);
    let path = temp_file("cert.pem", pem.as_bytes());
    let env = Env::from_pairs([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap()),
        ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true"),
        ("AZURE_AUTHORITY_HOST", fake.authority.as_str()),
    ]);
    let credential = build(&env, &clock).unwrap();
    credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();
    let assertion = &fake.requests()[0].form["client_assertion"];
    let header = crate::testing::jwt_json(assertion.split('.').next().unwrap());
    assert!(header["x5c"].is_array(), "{header}");
}

const PFX: &[u8] = include_bytes!("../pkcs12/testdata/modern.pfx");
const PFX_LEGACY: &[u8] = include_bytes!("../pkcs12/testdata/legacy.pfx");
const PFX_KEY_PEM: &[u8] = include_bytes!("../pkcs12/testdata/key.pem");
const PFX_CERT_PEM: &[u8] = include_bytes!("../pkcs12/testdata/cert.pem");

fn certificate_env(authority: &str, path: &std::path::Path, password: Option<&str>) -> Env {
    let mut pairs = vec![
        ("AZURE_TENANT_ID", TENANT.to_owned()),
        ("AZURE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("AZURE_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap().to_owned()),
        ("AZURE_AUTHORITY_HOST", authority.to_owned()),
    ];
    if let Some(password) = password {
        pairs.push(("AZURE_CLIENT_CERTIFICATE_PASSWORD", password.to_owned()));
    }
    Env::from_pairs(pairs)
}

/// Goal: a `.pfx` exported by OpenSSL 3 with its defaults signs in like the PEM it came from.
/// Method: register the fixture's public key and thumbprint with the fake Entra, then ask the
/// credential built from the `.pfx` and its password for a token.
#[tokio::test]
async fn pkcs12_file_with_password_gets_a_token() {
    use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
    use rustls_pki_types::pem::{PemObject, SectionKind};

    let der = |pem: &[u8], kind: SectionKind| {
        <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
            .map(Result::unwrap)
            .find(|(found, _)| *found == kind)
            .unwrap()
            .1
    };
    let key = RsaKeyPair::from_pkcs8(&der(PFX_KEY_PEM, SectionKind::PrivateKey)).unwrap();
    let cert_der = der(PFX_CERT_PEM, SectionKind::Certificate);
    let clock = FakeClock::new();
    let fake = FakeEntra::start(clock.clone()).await;
    fake.register_certificate(CLIENT_ID, key.public_key().as_ref(), &thumbprint(&cert_der));
    let path = temp_file("cert.pfx", PFX);
    let credential =
        build(&certificate_env(&fake.authority, &path, Some("secret")), &clock).unwrap();
    let token = credential.get_token(&[VAULT], &TokenRequestOptions::default()).await.unwrap();
    assert_eq!(token.token.expose(), "fake-token-1");
    assert!(!format!("{credential:?}").contains("secret"), "{credential:?}");
}

#[test]
fn pkcs12_and_unusable_files_are_refused_with_a_clear_message() {
    let clock = FakeClock::new();
    let der = temp_file("cert.der", &[0x30, 0x82, 0x01, 0x00]);
    let text = temp_file("cert.txt", b"not a certificate");
    let pfx = temp_file("cert.pfx", PFX);
    let legacy = temp_file("legacy.p12", PFX_LEGACY);
    let nonexistent = std::path::PathBuf::from("/nonexistent/cert.pem");
    for (path, password, fragment) in [
        (&pfx, Some("wrong"), "wrong password or damaged file"),
        (&pfx, None, "wrong password or damaged file"),
        (&legacy, Some("secret"), "legacy cipher"),
        (&legacy, Some("secret"), "openssl pkcs12 -export -out new.pfx"),
        (&der, None, "PKCS#12 file is malformed"),
        (&text, None, "not a PEM file or a PKCS#12 file"),
        (&nonexistent, None, "read AZURE_CLIENT_CERTIFICATE_PATH"),
    ] {
        let env = certificate_env("https://authority.invalid", path, password);
        let error = build(&env, &clock).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidConfig(message) if message.contains(fragment)),
            "{path:?}: {error:?}"
        );
    }
}

#[test]
fn bad_authority_host_is_refused() {
    let env = Env::from_pairs([
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_CLIENT_SECRET", "s"),
        ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:1"),
    ]);
    let error = build(&env, &FakeClock::new()).unwrap_err();
    assert!(matches!(&error, Error::InvalidConfig(m) if m.contains("https")), "{error:?}");
}
