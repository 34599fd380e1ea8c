//! The token service as users meet it (issue 3): service principals made with the CLI, tokens
//! from Python `azure-identity` checked independently by PyJWT, Entra-shaped errors, CLI login
//! and `get-access-token`, key rotation and the sign-in log.

use crate::{Ambient, cli_json, run_ambient, run_python, tempdir};

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("three-part token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn real_clients_get_tokens_that_verify_independently() {
    let dir = tempdir("sts");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let secret_sp = cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "e2e-secret"]);
    let cert_sp =
        cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "e2e-cert", "--create-cert"]);
    assert_eq!(secret_sp["tenant"], ambient.var("AMBIENT_TENANT_ID"));
    assert!(secret_sp["password"].as_str().unwrap().len() >= 43, "at least 256 bits");
    let cert_file = cert_sp["fileWithCertAndPrivateKey"].as_str().unwrap().to_owned();
    assert!(std::fs::read_to_string(&cert_file).unwrap().contains("BEGIN PRIVATE KEY"));

    let result = run_python(
        "sts_clients.py",
        &[
            ("AMBIENT_URL", ambient.url()),
            ("AMBIENT_TENANT_ID", ambient.var("AMBIENT_TENANT_ID")),
            ("AMBIENT_CA_BUNDLE", ambient.var("AMBIENT_CA_BUNDLE")),
            ("REQUESTS_CA_BUNDLE", ambient.var("AMBIENT_CA_BUNDLE")),
            ("SECRET_APP_ID", secret_sp["appId"].as_str().unwrap()),
            ("SECRET", secret_sp["password"].as_str().unwrap()),
            ("CERT_APP_ID", cert_sp["appId"].as_str().unwrap()),
            ("CERT_FILE", &cert_file),
        ],
    );
    assert_eq!(result["secret"]["appid"], secret_sp["appId"]);
    assert_eq!(result["secret"]["appidacr"], "1");
    assert_eq!(result["secret"]["ver"], "1.0");
    assert_eq!(result["secret"]["lifetime"], 3600);
    assert_eq!(result["secret"]["expires_on_matches"], true);
    assert_eq!(result["certificate"]["appid"], cert_sp["appId"]);
    assert_eq!(result["certificate"]["appidacr"], "2");
    assert_eq!(result["certificate"]["tid"], ambient.var("AMBIENT_TENANT_ID"));
    assert_eq!(result["expired_assertion"]["status"], 401);
    assert_eq!(result["expired_assertion"]["codes"], serde_json::json!([700024]));
    assert_eq!(result["replayed_assertion"]["first"], 200);
    assert_eq!(result["replayed_assertion"]["status"], 401);
    assert_eq!(result["replayed_assertion"]["codes"], serde_json::json!([700025]));
}

#[tokio::test]
async fn refusals_have_entra_shape_and_unknown_client_looks_like_wrong_secret() {
    let dir = tempdir("sts-errors");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let sp = cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "refusals"]);
    let app_id = sp["appId"].as_str().unwrap();
    let client = ambient.client();
    let tenant = ambient.var("AMBIENT_TENANT_ID");
    let post = |tenant: &str, form: Vec<(&str, &str)>| {
        let request =
            client.post(format!("{}/{tenant}/oauth2/v2.0/token", ambient.url())).form(&form);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let scope = "https://management.azure.com/.default";
    let base = |id: &'static str| {
        vec![("grant_type", "client_credentials"), ("client_id", id), ("scope", scope)]
    };
    let leak = |id: &str| -> &'static str { Box::leak(id.to_owned().into_boxed_str()) };

    let (wrong_status, wrong) =
        post(tenant, [base(leak(app_id)), vec![("client_secret", "nope")]].concat()).await;
    let (unknown_status, unknown) = post(
        tenant,
        [base("00000000-0000-4000-8000-000000000001"), vec![("client_secret", "nope")]].concat(),
    )
    .await;
    assert_eq!(wrong_status, 401);
    assert_eq!(unknown_status, wrong_status);
    assert_eq!(wrong["error"], "invalid_client");
    assert_eq!(unknown["error"], wrong["error"]);
    assert_eq!(unknown["error_codes"], wrong["error_codes"]);
    assert_eq!(wrong["error_codes"], serde_json::json!([7000215]));
    for field in ["error_description", "timestamp", "trace_id", "correlation_id"] {
        assert!(wrong[field].is_string(), "{field} missing: {wrong}");
    }
    assert!(wrong["error_description"].as_str().unwrap().starts_with("AADSTS7000215: "));

    let (status, bad_scope) = post(
        tenant,
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", leak(app_id)),
            ("scope", "https://vault.azure.net"),
            ("client_secret", leak(sp["password"].as_str().unwrap())),
        ],
    )
    .await;
    assert_eq!((status, bad_scope["error"].as_str()), (400, Some("invalid_scope")));
    let (status, no_tenant) =
        post("11111111-2222-4333-8444-555555555555", base(leak(app_id))).await;
    assert_eq!((status, no_tenant["error_codes"][0].as_u64()), (400, Some(90002)));

    // The good secret works through the v1 endpoint with `resource=` and HTTP Basic.
    let response = client
        .post(format!("{}/{tenant}/oauth2/token", ambient.url()))
        .basic_auth(app_id, Some(sp["password"].as_str().unwrap()))
        .form(&[("grant_type", "client_credentials"), ("resource", "https://vault.azure.net")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let v1: serde_json::Value = response.json().await.unwrap();
    assert!(v1["expires_in"].is_string() && v1["expires_on"].is_string(), "{v1}");
    assert_eq!(jwt_claims(v1["access_token"].as_str().unwrap())["aud"], "https://vault.azure.net");

    // Discovery answers for the tenant id and for `organizations`; JWKS carries Entra's members.
    let discovery: serde_json::Value = client
        .get(format!("{}/organizations/v2.0/.well-known/openid-configuration", ambient.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], format!("{}/{{tenantid}}/v2.0", ambient.url()));
    let keys: serde_json::Value = client
        .get(format!("{}/common/discovery/keys", ambient.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &keys["keys"][0];
    for member in ["kty", "use", "kid", "x5t", "n", "e", "x5c"] {
        assert!(!key[member].is_null(), "JWKS key lacks {member}: {key}");
    }
    let instance: serde_json::Value = client
        .get(format!("{}/common/discovery/instance?api-version=1.1&authorization_endpoint={}/{tenant}/oauth2/v2.0/authorize", ambient.url(), ambient.url()))
        .send().await.unwrap().json().await.unwrap();
    assert!(instance["tenant_discovery_endpoint"].as_str().unwrap().starts_with(ambient.url()));
}

#[tokio::test]
async fn cli_login_tokens_rotation_and_sign_in_log() {
    let dir = tempdir("sts-cli");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let secret_sp = cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "cli-secret"]);
    let cert_sp =
        cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "cli-cert", "--create-cert"]);
    let app_id = secret_sp["appId"].as_str().unwrap();

    // `ambient login` in a fresh home, with a secret and then with a certificate file.
    for (login_id, password) in [
        (app_id, secret_sp["password"].as_str().unwrap()),
        (
            cert_sp["appId"].as_str().unwrap(),
            cert_sp["fileWithCertAndPrivateKey"].as_str().unwrap(),
        ),
    ] {
        let home = tempdir("login-home");
        let home = home.to_str().unwrap();
        let env = [
            ("AMBIENT_HOME", home),
            ("AMBIENT_URL", ambient.url()),
            ("AMBIENT_CA_BUNDLE", ambient.var("AMBIENT_CA_BUNDLE")),
        ];
        let tenant = ambient.var("AMBIENT_TENANT_ID");
        let (code, _, stderr) = run_ambient(
            &["login", "--service-principal", "-u", login_id, "-p", password, "--tenant", tenant],
            &env,
        );
        assert_eq!(code, 0, "{stderr}");
        let (code, stdout, stderr) = run_ambient(
            &["account", "get-access-token", "--resource", "https://vault.azure.net"],
            &env,
        );
        assert_eq!(code, 0, "{stderr}");
        let token: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        for field in
            ["accessToken", "expiresOn", "expires_on", "subscription", "tenant", "tokenType"]
        {
            assert!(token.get(field).is_some(), "{field} missing: {token}");
        }
        let claims = jwt_claims(token["accessToken"].as_str().unwrap());
        assert_eq!(claims["aud"], "https://vault.azure.net");
        assert_eq!(claims["appid"], login_id);
        assert_eq!(claims["idtyp"], "app");
    }
    // A wrong secret does not log in.
    let home = tempdir("login-bad");
    let (code, _, stderr) = run_ambient(
        &[
            "login",
            "--service-principal",
            "-u",
            app_id,
            "-p",
            "wrong",
            "--tenant",
            ambient.var("AMBIENT_TENANT_ID"),
        ],
        &[
            ("AMBIENT_HOME", home.to_str().unwrap()),
            ("AMBIENT_URL", ambient.url()),
            ("AMBIENT_CA_BUNDLE", ambient.var("AMBIENT_CA_BUNDLE")),
        ],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("AADSTS7000215"), "{stderr}");
    assert!(!home.join("profile.json").exists());

    // Rotation publishes a second key at once.
    let before = cli_json(&ambient, &["token-keys", "list"]);
    let rotated = cli_json(&ambient, &["token-keys", "rotate", "--activate-in", "600"]);
    let after = cli_json(&ambient, &["token-keys", "list"]);
    assert_eq!(before.as_array().unwrap().len() + 1, after.as_array().unwrap().len());
    assert!(after.as_array().unwrap().iter().any(|key| key["kid"] == rotated["kid"]));

    // Credential reset replaces the secret: the old one stops working.
    let reset = cli_json(&ambient, &["ad", "sp", "credential", "reset", "--id", app_id]);
    assert_ne!(reset["password"], secret_sp["password"]);
    let listed = cli_json(&ambient, &["ad", "sp", "credential", "list", "--id", app_id]);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // The sign-in log holds the successes and the refusal of this principal.
    let log = cli_json(&ambient, &["monitor", "sign-in-log", "list", "--principal", app_id]);
    let events = log.as_array().unwrap();
    assert!(events.iter().any(|event| event["status"]["errorCode"] == 0), "{log}");
    assert!(events.iter().any(|event| event["status"]["errorCode"] == 7000215), "{log}");
    assert!(events.iter().all(|event| event["appId"] == app_id));
    let (code, table, _) = run_ambient(
        &["monitor", "sign-in-log", "list", "--principal", app_id, "--output", "table"],
        &[("AMBIENT_HOME", ambient.data_dir.to_str().unwrap())],
    );
    assert_eq!(code, 0);
    assert!(table.lines().next().unwrap().contains("AppId"), "{table}");

    // Deleting the principal removes it.
    let deleted = run_ambient(
        &["ad", "sp", "delete", "--id", app_id],
        &[("AMBIENT_HOME", ambient.data_dir.to_str().unwrap())],
    );
    assert_eq!(deleted.0, 0, "{}", deleted.2);
    let (code, _, stderr) = run_ambient(
        &["ad", "sp", "show", "--id", app_id],
        &[("AMBIENT_HOME", ambient.data_dir.to_str().unwrap())],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("Request_ResourceNotFound"), "{stderr}");
}

#[tokio::test]
async fn a_user_assigned_identity_accepts_a_matching_federated_assertion() {
    use serde_json::json;
    let dir = tempdir("sts-federated");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = crate::control_plane::Arm::admin(&ambient).await;
    arm.put(&arm.group("wi"), json!({"location": "westus"})).await;
    let uami = arm.uami("wi", "workload");
    let (_, identity) = arm.put(&uami, json!({"location": "westus"})).await;
    let workload = cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "k8s-workload"]);
    let subject = cli_json(
        &ambient,
        &["ad", "sp", "show", "--id", workload["appId"].as_str().unwrap()],
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant = ambient.var("AMBIENT_TENANT_ID");
    let client = ambient.client();
    let token_url = format!("{}/{tenant}/oauth2/v2.0/token", ambient.url());
    // The "federated token": the workload's own token for the token-exchange audience.
    let federated: serde_json::Value = client
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", workload["appId"].as_str().unwrap()),
            ("client_secret", workload["password"].as_str().unwrap()),
            ("scope", "api://AzureADTokenExchange/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let assertion = federated["access_token"].as_str().unwrap().to_owned();
    let issuer = jwt_claims(&assertion)["iss"].as_str().unwrap().to_owned();
    let exchange = |assertion: String| {
        let request = client.post(&token_url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", identity["properties"]["clientId"].as_str().unwrap()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
            ("scope", "https://vault.azure.net/.default"),
        ]);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
        }
    };
    // No federated credential yet: refused.
    let (status, body) = exchange(assertion.clone()).await;
    assert_eq!((status, body["error_codes"][0].as_u64()), (401, Some(70021)), "{body}");

    let (status, _) = arm
        .put(&format!("{uami}/federatedIdentityCredentials/k8s"), json!({"properties": {"issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}}))
        .await;
    assert_eq!(status, 201);
    let (status, body) = exchange(assertion.clone()).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["oid"], identity["properties"]["principalId"]);
    assert_eq!(claims["xms_mirid"], uami.as_str());
    assert_eq!(claims["aud"], "https://vault.azure.net");

    // A tampered assertion is refused.
    let mut parts: Vec<String> = assertion.split('.').map(str::to_owned).collect();
    let flipped = if parts[2].starts_with('A') { 'B' } else { 'A' };
    parts[2] = format!("{flipped}{}", &parts[2][1..]);
    let (status, body) = exchange(parts.join(".")).await;
    assert_eq!(status, 401, "{body}");
}

#[test]
fn cli_commands_reuse_one_token() {
    // Goal (issue 15): the CLI signs in once and reuses its token, as az does, so the sign-in
    // log is not mostly the CLI's own; method: several commands, then count the admin's
    // sign-ins (the log is written in batches, so poll until the first one shows).
    let dir = tempdir("token-cache");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let admin =
        cli_json(&ambient, &["account", "show"])["user"]["name"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        cli_json(&ambient, &["group", "list"]);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let sign_ins = loop {
        let log = cli_json(&ambient, &["monitor", "sign-in-log", "list", "--principal", &admin]);
        let count = log.as_array().unwrap().len();
        if count > 0 || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(200));
    };
    assert_eq!(sign_ins.as_array().unwrap().len(), 1, "{sign_ins}");
    let cache = dir.join("token-cache.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}
