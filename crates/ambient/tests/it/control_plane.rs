//! The control plane as users meet it (issue 4): ARM requests with real tokens, the identity
//! lifecycle rules, RBAC on every call (the seed scenarios), the activity log, and the Python
//! management SDKs.

use serde_json::{Value, json};

use crate::{Ambient, cli_json, run_python, tempdir};

/// ARM calls as one principal.
pub struct Arm {
    client: reqwest::Client,
    base: String,
    token: String,
    /// A Graph-audience token for the directory (`/v1.0/...`), which refuses management ones.
    graph_token: String,
    pub subscription: String,
}

impl Arm {
    /// Signs in with client credentials.
    pub async fn sign_in(ambient: &Ambient, app_id: &str, secret: &str) -> Arm {
        let client = ambient.client();
        let url =
            format!("{}/{}/oauth2/v2.0/token", ambient.url(), ambient.var("AMBIENT_TENANT_ID"));
        let mut tokens = Vec::new();
        for scope in
            ["https://management.azure.com/.default", "https://graph.microsoft.com/.default"]
        {
            let response = client
                .post(&url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", app_id),
                    ("client_secret", secret),
                    ("scope", scope),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            tokens.push(body["access_token"].as_str().unwrap().to_owned());
        }
        let graph_token = tokens.pop().unwrap();
        Arm {
            client,
            base: ambient.url().to_owned(),
            token: tokens.pop().unwrap(),
            graph_token,
            subscription: ambient.var("AMBIENT_SUBSCRIPTION_ID").to_owned(),
        }
    }

    pub async fn admin(ambient: &Ambient) -> Arm {
        let admin: Value =
            serde_json::from_slice(&std::fs::read(ambient.data_dir.join("admin.json")).unwrap())
                .unwrap();
        Arm::sign_in(ambient, admin["appId"].as_str().unwrap(), admin["password"].as_str().unwrap())
            .await
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = if path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}{separator}api-version=2024-11-30", self.base)
        };
        let token = if path.starts_with("/v1.0/") { &self.graph_token } else { &self.token };
        let mut request = self.client.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    pub fn group(&self, name: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{name}", self.subscription)
    }

    pub fn vm(&self, group: &str, name: &str) -> String {
        format!("{}/providers/Microsoft.Compute/virtualMachines/{name}", self.group(group))
    }

    pub fn uami(&self, group: &str, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
            self.group(group)
        )
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Assigns `role` (name) to `principal` at `scope` and returns the assignment id.
    pub async fn assign(&self, role: &str, principal: &str, scope: &str) -> String {
        self.assign_role_id(rbac_id(role), principal, scope).await
    }

    /// Assigns the role with GUID `role_id` to `principal` at `scope`.
    pub async fn assign_role_id(&self, role_id: &str, principal: &str, scope: &str) -> String {
        let name = uuid::Uuid::new_v4();
        let (status, body) = self
            .put(
                &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                json!({"properties": {"roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role_id}", self.subscription), "principalId": principal}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

pub fn rbac_id(role: &str) -> &'static str {
    match role {
        "Owner" => "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "Reader" => "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Virtual Machine Contributor" => "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
        "Managed Identity Operator" => "f1a07417-d97a-45cb-824c-7a7467783830",
        "Key Vault Secrets User" => "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets Officer" => "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        other => panic!("no GUID for {other}"),
    }
}

async fn principal_exists(arm: &Arm, object_id: &str) -> bool {
    arm.get(&format!("/v1.0/servicePrincipals/{object_id}")).await.0 == 200
}

#[tokio::test]
async fn identities_follow_their_lifecycle_rules() {
    let dir = tempdir("arm-lifecycle");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    assert_eq!(arm.put(&arm.group("rg1"), json!({"location": "westus"})).await.0, 201);
    assert_eq!(
        arm.put(&arm.group("rg1"), json!({"location": "westus", "tags": {"a": "b"}})).await.0,
        200
    );

    // A user-assigned identity: 201 then 200, PATCH tags, principal and client ids.
    let uami = arm.uami("rg1", "id1");
    let (status, created) = arm.put(&uami, json!({"location": "westus"})).await;
    assert_eq!(status, 201, "{created}");
    for field in ["principalId", "clientId", "tenantId"] {
        assert!(created["properties"][field].is_string(), "{created}");
    }
    let (status, again) =
        arm.put(&uami, json!({"location": "westus", "tags": {"env": "dev"}})).await;
    assert_eq!(status, 200);
    assert_eq!(
        again["properties"]["principalId"], created["properties"]["principalId"],
        "the principal lives as long as the identity"
    );
    let (_, patched) = arm.patch(&uami, json!({"tags": {"env": "prod"}})).await;
    assert_eq!(patched["tags"]["env"], "prod");

    // A VM with a system identity gets its own principal, visible at identities/default.
    let vm = arm.vm("rg1", "vm1");
    let (status, body) =
        arm.put(&vm, json!({"location": "westus", "identity": {"type": "SystemAssigned"}})).await;
    assert_eq!(status, 201, "{body}");
    let first_principal = body["identity"]["principalId"].as_str().unwrap().to_owned();
    assert_eq!(body["identity"]["tenantId"], ambient.var("AMBIENT_TENANT_ID"));
    assert_eq!(body["properties"]["hostId"], "local");
    let (status, default) =
        arm.get(&format!("{vm}/providers/Microsoft.ManagedIdentity/identities/default")).await;
    assert_eq!(status, 200);
    assert_eq!(default["properties"]["principalId"], first_principal.as_str());
    let assignment = arm.assign("Reader", &first_principal, &arm.group("rg1")).await;

    // Disabling deletes the principal and its role assignments; enabling makes a new one.
    let (_, body) = arm.patch(&vm, json!({"identity": {"type": "None"}})).await;
    assert_eq!(body["identity"]["type"], "None");
    assert!(!principal_exists(&arm, &first_principal).await);
    assert_eq!(arm.get(&assignment).await.0, 404);
    let (_, body) = arm.patch(&vm, json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uami.clone(): {}}}})).await;
    let second_principal = body["identity"]["principalId"].as_str().unwrap().to_owned();
    assert_ne!(second_principal, first_principal);
    let attached = &body["identity"]["userAssignedIdentities"][&uami];
    assert_eq!(attached["clientId"], created["properties"]["clientId"]);

    // Removing the user identity with null keeps the system one.
    let (_, body) =
        arm.patch(&vm, json!({"identity": {"userAssignedIdentities": {uami.clone(): null}}})).await;
    assert_eq!(body["identity"]["type"], "SystemAssigned");
    assert_eq!(body["identity"]["principalId"], second_principal.as_str());

    // Deleting the VM deletes its principal; deleting again is 204.
    assert_eq!(arm.delete(&vm).await.0, 200);
    assert!(!principal_exists(&arm, &second_principal).await);
    assert_eq!(arm.delete(&vm).await.0, 204);
    assert_eq!(arm.get(&vm).await.0, 404);

    // Deleting the group deletes what it holds, the identity's principal included.
    let uami_principal = created["properties"]["principalId"].as_str().unwrap();
    assert_eq!(arm.delete(&arm.group("rg1")).await.0, 200);
    assert_eq!(arm.get(&uami).await.0, 404);
    assert!(!principal_exists(&arm, uami_principal).await);
}

#[tokio::test]
async fn one_user_identity_on_ten_vms_and_deleting_it_detaches_everywhere() {
    let dir = tempdir("arm-shared");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    arm.put(&arm.group("front"), json!({"location": "westus"})).await;
    let uami = arm.uami("front", "shared");
    let (_, identity) = arm.put(&uami, json!({"location": "westus"})).await;
    for index in 0..10 {
        let (status, vm) = arm
            .put(&arm.vm("front", &format!("web{index}")), json!({"location": "westus", "identity": {"type": "UserAssigned", "userAssignedIdentities": {uami.clone(): {}}}}))
            .await;
        assert_eq!(status, 201, "{vm}");
        assert_eq!(
            vm["identity"]["userAssignedIdentities"][&uami]["principalId"],
            identity["properties"]["principalId"]
        );
    }
    // Listing pages with nextLink.
    let (_, page) = arm
        .get(&format!("{}/providers/Microsoft.Compute/virtualMachines?$top=4", arm.group("front")))
        .await;
    assert_eq!(page["value"].as_array().unwrap().len(), 4);
    let mut seen = 4;
    let mut next = page["nextLink"].as_str().map(str::to_owned);
    while let Some(link) = next {
        let (_, page) = arm.get(&link).await;
        seen += page["value"].as_array().unwrap().len();
        next = page["nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 10);

    assert_eq!(arm.delete(&uami).await.0, 200);
    for index in 0..10 {
        let (_, vm) = arm.get(&arm.vm("front", &format!("web{index}"))).await;
        assert_eq!(vm["identity"]["type"], "None", "{vm}");
        assert!(vm["identity"].get("userAssignedIdentities").is_none());
    }
}

#[tokio::test]
async fn rbac_guards_every_write() {
    let dir = tempdir("arm-rbac");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let admin = Arm::admin(&ambient).await;
    admin.put(&admin.group("rg"), json!({"location": "westus"})).await;
    let uami = admin.uami("rg", "ops");
    admin.put(&uami, json!({"location": "westus"})).await;

    let reader_sp = cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "reader"]);
    let operator_sp = cli_json(&ambient, &["ad", "sp", "create-for-rbac", "-n", "vm-operator"]);
    let object_id = |sp: &Value| -> String {
        let listed =
            cli_json(&ambient, &["ad", "sp", "show", "--id", sp["appId"].as_str().unwrap()]);
        listed["id"].as_str().unwrap().to_owned()
    };
    let reader_oid = object_id(&reader_sp);
    let operator_oid = object_id(&operator_sp);
    admin.assign("Reader", &reader_oid, &format!("/subscriptions/{}", admin.subscription)).await;
    admin.assign("Virtual Machine Contributor", &operator_oid, &admin.group("rg")).await;
    admin.assign("Reader", &operator_oid, &admin.group("rg")).await;

    // A Reader reads, and gets 403 AuthorizationFailed naming itself on every write.
    let reader = Arm::sign_in(
        &ambient,
        reader_sp["appId"].as_str().unwrap(),
        reader_sp["password"].as_str().unwrap(),
    )
    .await;
    assert_eq!(reader.get(&uami).await.0, 200);
    let (_, subscriptions) = reader.get("/subscriptions").await;
    assert_eq!(subscriptions["value"].as_array().unwrap().len(), 1);
    let role_assignment = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{}",
        admin.group("rg"),
        uuid::Uuid::new_v4()
    );
    for (status, body) in [
        reader.put(&reader.group("rg2"), json!({"location": "westus"})).await,
        reader.patch(&uami, json!({"tags": {"x": "y"}})).await,
        reader.delete(&uami).await,
        reader.put(&reader.vm("rg", "vm"), json!({"location": "westus"})).await,
        reader.put(&role_assignment, json!({"properties": {"roleDefinitionId": rbac_id("Owner"), "principalId": reader_oid}})).await,
    ] {
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "AuthorizationFailed");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&reader_oid), "{message}");
    }

    // VM Contributor alone cannot attach a user-assigned identity...
    let operator = Arm::sign_in(
        &ambient,
        operator_sp["appId"].as_str().unwrap(),
        operator_sp["password"].as_str().unwrap(),
    )
    .await;
    let vm_body = json!({"location": "westus", "identity": {"type": "UserAssigned", "userAssignedIdentities": {uami.clone(): {}}}});
    let (status, body) = operator.put(&operator.vm("rg", "app"), vm_body.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "LinkedAuthorizationFailed");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("userAssignedIdentities/assign/action")
    );
    assert_eq!(operator.get(&operator.vm("rg", "app")).await.0, 404, "nothing was written");
    // ...but can create a VM with a system identity, and attaches once it is Managed Identity Operator.
    let (status, _) = operator
        .put(
            &operator.vm("rg", "sys"),
            json!({"location": "westus", "identity": {"type": "SystemAssigned"}}),
        )
        .await;
    assert_eq!(status, 201);
    admin.assign("Managed Identity Operator", &operator_oid, &uami).await;
    let (status, body) = operator.put(&operator.vm("rg", "app"), vm_body).await;
    assert_eq!(status, 201, "{body}");

    // Role assignment errors in ARM's words.
    let (status, body) = admin.put(&role_assignment, json!({"properties": {"roleDefinitionId": rbac_id("Reader"), "principalId": "00000000-0000-4000-8000-00000000dead"}})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("PrincipalNotFound")));
    let (status, body) = admin
        .put(
            &format!(
                "{}/providers/Microsoft.Authorization/roleAssignments/not-a-guid",
                admin.group("rg")
            ),
            json!({}),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("InvalidRoleAssignmentId")));
    let (status, body) = admin.put(&role_assignment, json!({"properties": {"roleDefinitionId": rbac_id("Reader"), "principalId": operator_oid}})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("RoleAssignmentExists")),
        "{body}"
    );
    let (_, listed) = admin
        .get(&format!(
            "{}/providers/Microsoft.Authorization/roleAssignments?$filter={}",
            admin.group("rg"),
            "principalId%20eq%20%27".to_owned() + &operator_oid + "%27"
        ))
        .await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 3, "{listed}");

    // The activity log has Started and Succeeded events for the writes, and Failed for refusals.
    let (_, log) = admin.get(&format!("/subscriptions/{}/providers/Microsoft.Insights/eventtypes/management/values?$filter=eventTimestamp%20ge%20%272020-01-01T00:00:00Z%27", admin.subscription)).await;
    let events = log["value"].as_array().unwrap();
    let statuses: Vec<&str> =
        events.iter().filter_map(|event| event["status"]["value"].as_str()).collect();
    assert!(
        statuses.contains(&"Started")
            && statuses.contains(&"Succeeded")
            && statuses.contains(&"Failed"),
        "{statuses:?}"
    );
    let vm_write = events
        .iter()
        .find(|event| {
            event["operationName"]["value"] == "Microsoft.Compute/virtualMachines/write"
                && event["status"]["value"] == "Succeeded"
        })
        .unwrap();
    for field in ["caller", "correlationId", "eventTimestamp", "resourceId"] {
        assert!(vm_write[field].is_string(), "{field}: {vm_write}");
    }
}

#[tokio::test]
async fn errors_have_arm_shape() {
    let dir = tempdir("arm-errors");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let arm = Arm::admin(&ambient).await;
    let client = ambient.client();
    let unauthenticated = client
        .get(format!("{}/subscriptions?api-version=2022-12-01", ambient.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert!(
        unauthenticated.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );
    let missing_version = client
        .get(format!("{}/subscriptions/{}", ambient.url(), arm.subscription))
        .bearer_auth(&arm.token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing_version.status(), 400);
    let body: Value = missing_version.json().await.unwrap();
    assert_eq!(body["error"]["code"], "MissingApiVersionParameter");
    let (status, body) = arm
        .put(&format!("{}/providers/Microsoft.Sql/servers/s1", arm.group("nope")), json!({}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("InvalidResourceType")));
    let (status, body) = arm.put(&arm.vm("nope", "vm"), json!({"location": "x"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("ResourceGroupNotFound")));
    arm.put(&arm.group("rg"), json!({"location": "westus"})).await;
    let (status, body) = arm.get(&arm.vm("rg", "ghost")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("ResourceNotFound")));
    // Issue 15: a resource in a group that does not exist is the group's error, as on ARM.
    let (status, body) = arm.get(&arm.vm("nope", "ghost")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("ResourceGroupNotFound")));
    let (status, body) =
        arm.put(&arm.vm("rg", "bad"), json!({"identity": {"type": "Sometimes"}})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("InvalidIdentityType")));
    let (status, body) = arm.put(&arm.vm("rg", "bad name!"), json!({})).await;
    assert_eq!(status, 400, "{body}");
    let endpoints: Value = client
        .get(format!("{}/metadata/endpoints?api-version=2015-01-01", ambient.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(endpoints["authentication"]["loginEndpoint"], ambient.url());
}

#[tokio::test]
async fn python_management_sdks_drive_the_control_plane() {
    let dir = tempdir("arm-python");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
    let result = run_python(
        "mgmt_clients.py",
        &[
            ("AMBIENT_URL", ambient.url()),
            ("AMBIENT_TENANT_ID", ambient.var("AMBIENT_TENANT_ID")),
            ("AMBIENT_SUBSCRIPTION_ID", ambient.var("AMBIENT_SUBSCRIPTION_ID")),
            ("REQUESTS_CA_BUNDLE", ambient.var("AMBIENT_CA_BUNDLE")),
            ("CLIENT_ID", admin["appId"].as_str().unwrap()),
            ("CLIENT_SECRET", admin["password"].as_str().unwrap()),
        ],
    );
    assert_eq!(result["created"]["name"], "py-identity");
    assert!(result["created"]["principal_id"].is_string());
    assert_eq!(result["updated_tags"], json!({"team": "platform"}));
    assert_eq!(result["listed_in_group"], json!(["py-identity"]));
    assert!(result["listed_in_subscription"].as_array().unwrap().contains(&json!("py-identity")));
    assert_eq!(result["fic_subjects"], json!(["system:serviceaccount:default:app"]));
    assert_eq!(result["assignment"]["principal_id"], result["created"]["principal_id"]);
    assert!(result["assignments_for_principal"].as_u64().unwrap() >= 1);
    assert_eq!(result["deleted_then_get"], "ResourceNotFoundError");
}

#[tokio::test]
async fn the_az_shaped_cli_drives_the_control_plane() {
    let dir = tempdir("arm-cli");
    let ambient = Ambient::start("dev", &dir, &[], &[]);
    let subscription = ambient.var("AMBIENT_SUBSCRIPTION_ID").to_owned();
    cli_json(&ambient, &["group", "create", "-n", "rg", "-l", "westus"]);
    let identity = cli_json(&ambient, &["identity", "create", "-g", "rg", "-n", "id1"]);
    for field in ["id", "clientId", "principalId", "tenantId"] {
        assert!(
            identity[field].is_string(),
            "identity create prints {field} at the top level: {identity}"
        );
    }
    let vm = cli_json(
        &ambient,
        &["vm", "create", "-g", "rg", "-n", "vm1", "--assign-identity", "[system]", "id1"],
    );
    assert_eq!(vm["identity"]["type"], "SystemAssigned, UserAssigned");
    assert!(vm["identity"]["principalId"].is_string(), "{vm}");
    let shown = cli_json(&ambient, &["vm", "identity", "show", "-g", "rg", "-n", "vm1"]);
    assert_eq!(shown["principalId"], vm["identity"]["principalId"]);
    let removed = cli_json(
        &ambient,
        &["vm", "identity", "remove", "-g", "rg", "-n", "vm1", "--identities", "id1"],
    );
    assert!(
        removed.to_string().contains(vm["identity"]["principalId"].as_str().unwrap()),
        "{removed}"
    );

    let scope = format!("/subscriptions/{subscription}/resourceGroups/rg");
    let assignment = cli_json(
        &ambient,
        &[
            "role",
            "assignment",
            "create",
            "--assignee",
            vm["identity"]["principalId"].as_str().unwrap(),
            "--role",
            "Reader",
            "--scope",
            &scope,
        ],
    );
    assert_eq!(assignment["roleDefinitionName"], "Reader");
    let listed = cli_json(
        &ambient,
        &["role", "assignment", "list", "--scope", &scope, "--query", "[].principalId"],
    );
    assert!(listed.as_array().unwrap().contains(&vm["identity"]["principalId"]), "{listed}");

    let sp = cli_json(
        &ambient,
        &[
            "ad",
            "sp",
            "create-for-rbac",
            "-n",
            "deployer",
            "--role",
            "Contributor",
            "--scopes",
            &scope,
        ],
    );
    let mine = cli_json(
        &ambient,
        &["role", "assignment", "list", "--assignee", sp["appId"].as_str().unwrap(), "--all"],
    );
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["roleDefinitionName"], "Contributor");

    let log = cli_json(
        &ambient,
        &[
            "monitor",
            "activity-log",
            "list",
            "--max-events",
            "500",
            "--query",
            "[].operationName.value",
        ],
    );
    assert!(
        log.as_array().unwrap().contains(&json!("Microsoft.Compute/virtualMachines/write")),
        "{log}"
    );
    let (code, table, _) = crate::run_ambient(
        &["identity", "list", "-g", "rg", "-o", "table"],
        &[("AMBIENT_HOME", dir.to_str().unwrap())],
    );
    assert_eq!(code, 0);
    assert!(table.contains("id1"), "{table}");
}
