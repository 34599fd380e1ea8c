//! Property tests of control-plane request bodies (issue 17): arbitrary JSON, valid bodies
//! with one part replaced by arbitrary JSON, and bytes that are not JSON, sent as the PUT body
//! of a virtual machine, a user-assigned identity, a vault and a role assignment, never panic:
//! each answer is a 2xx, or a 4xx in ARM's error shape (`{"error":{"code","message"}}`), and
//! the resources created before still read back (GET answers 200).
//!
//! Method: one in-process server (`testing::Harness`), requests handed to the real router;
//! each case's body goes to an existing resource or to a new name of the same type.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::testing::{Harness, json_value, run_cases, runtime};

/// Names the planners read, so random objects often carry them.
const BODY_KEYS: &[&str] = &[
    "location",
    "properties",
    "identity",
    "type",
    "userAssignedIdentities",
    "tags",
    "roleDefinitionId",
    "principalId",
    "principalType",
    "tenantId",
    "sku",
    "accessPolicies",
    "enableRbacAuthorization",
    "hardwareProfile",
    "osProfile",
    "storageProfile",
    "name",
    "id",
];

const CASES: u32 = 64;

/// How a case builds its body from the resource type's valid body.
#[derive(Debug, Clone)]
enum Body {
    /// Arbitrary JSON in place of the whole body.
    Arbitrary(Value),
    /// The valid body with the part at one of its JSON pointers (picked by index) replaced.
    Replaced(usize, Value),
    /// Bytes that need not be JSON at all.
    Bytes(Vec<u8>),
}

fn any_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => json_value(BODY_KEYS).prop_map(Body::Arbitrary),
        3 => (any::<usize>(), json_value(BODY_KEYS)).prop_map(|(at, value)| Body::Replaced(at, value)),
        1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
    ]
}

/// Every JSON pointer inside `value`, the root (`""`) first.
fn pointers(value: &Value, at: String, all: &mut Vec<String>) {
    all.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(inner, format!("{at}/{escaped}"), all);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                pointers(inner, format!("{at}/{index}"), all);
            }
        }
        _ => {}
    }
}

fn render(body: &Body, valid: &Value) -> Vec<u8> {
    match body {
        Body::Arbitrary(value) => value.to_string().into_bytes(),
        Body::Replaced(at, value) => {
            let mut all = Vec::new();
            pointers(valid, String::new(), &mut all);
            let mut replaced = valid.clone();
            *replaced.pointer_mut(&all[at % all.len()]).unwrap() = value.clone();
            replaced.to_string().into_bytes()
        }
        Body::Bytes(bytes) => bytes.clone(),
    }
}

/// A success, or a client error in ARM's shape.
fn assert_answer(status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(status.is_success() || status.is_client_error(), "status {status}: {body}");
    if status.is_client_error() {
        prop_assert!(body["error"]["code"].as_str().is_some_and(|code| !code.is_empty()), "{body}");
        prop_assert!(body["error"]["message"].as_str().is_some(), "{body}");
    }
    Ok(())
}

#[test]
fn issue_17_arbitrary_put_bodies_answer_2xx_or_arm_errors_and_stored_resources_stay_readable() {
    let runtime = runtime();
    let harness = runtime.block_on(Harness::start());
    let token = runtime.block_on(harness.token(
        &harness.admin_app_id,
        &harness.admin_secret,
        "https://management.azure.com/.default",
    ));
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
    )
    .unwrap();
    let admin_id = claims["oid"].as_str().unwrap().to_owned();
    let send = |method: Method, path: &str, body: Option<&[u8]>| {
        runtime.block_on(harness.arm(&token, method, path, body))
    };
    let subscription = format!("/subscriptions/{}", harness.subscription_id());
    let group = format!("{subscription}/resourceGroups/prop");
    let (status, body) = send(Method::PUT, &group, Some(br#"{"location":"westus"}"#));
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let identities = format!("{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities");
    let vms = format!("{group}/providers/Microsoft.Compute/virtualMachines");
    let vaults = format!("{group}/providers/Microsoft.KeyVault/vaults");
    let assignments = format!("{subscription}/providers/Microsoft.Authorization/roleAssignments");
    let reader = format!(
        "{subscription}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
    );
    // Per type: the collection, a valid body, the existing resource's name.
    let kinds = [
        (identities.clone(), json!({"location": "westus", "tags": {"a": "1"}}), "id1".to_owned()),
        (
            vms,
            json!({"location": "westus", "identity": {
                "type": "SystemAssigned,UserAssigned",
                "userAssignedIdentities": {format!("{identities}/id1"): {}},
            }}),
            "vm1".to_owned(),
        ),
        (vaults, json!({"location": "westus", "properties": {}}), "kvprop1".to_owned()),
        (
            assignments,
            json!({"properties": {"roleDefinitionId": reader, "principalId": admin_id}}),
            "0b5f8c3e-9c7a-4f7e-9a4e-0c1d2e3f4a5b".to_owned(),
        ),
    ];
    for (collection, valid, name) in &kinds {
        let path = format!("{collection}/{name}");
        let (status, body) = send(Method::PUT, &path, Some(valid.to_string().as_bytes()));
        assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
    }

    let case = (0..kinds.len(), any::<bool>(), "[a-z][a-z0-9]{2,8}", any_body());
    run_cases(CASES * 4, case, |(kind, existing, new_name, body)| {
        let (collection, valid, name) = &kinds[kind];
        // Role assignment names are GUIDs: a new one gets a fresh GUID.
        let new_name = match kind {
            3 => domain::Guid::new_random().to_string(),
            _ => new_name,
        };
        let path = format!("{collection}/{}", if existing { name } else { &new_name });
        let (status, answer) = send(Method::PUT, &path, Some(&render(&body, valid)));
        assert_answer(status, &answer)?;
        let existing_path = format!("{collection}/{name}");
        let (status, answer) = send(Method::GET, &existing_path, None);
        prop_assert_eq!(status, StatusCode::OK, "{}: {}", existing_path, answer);
        Ok(())
    });
    for (collection, _, name) in &kinds {
        let path = format!("{collection}/{name}");
        let (status, body) = send(Method::GET, &path, None);
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, body) = send(Method::GET, &format!("{group}/resources"), None);
    assert_eq!(status, StatusCode::OK, "{body}");
}
