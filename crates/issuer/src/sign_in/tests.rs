//! Tests for the sign-in log over a real SQLite store: Graph JSON snapshots, filters, ordering,
//! and that a burst of concurrent events is stored completely after a flush.

use domain::UnixTime;
use expect_test::expect;
use serde_json::Value;

use crate::test_support::{TENANT, TempStore};
use crate::{SignInEvent, SignInLog};

const START_SECS: i64 = 1_704_067_200;

fn mi_event(seconds_after_start: i64) -> SignInEvent {
    SignInEvent {
        id: format!("00000000-0000-4000-8000-{seconds_after_start:012}"),
        principal_id: Some("9f1a4c6e-0000-4000-8000-000000000001".to_owned()),
        app_id: Some("be5947ed-3560-4afe-9504-59967a63f810".to_owned()),
        principal_display_name: Some("id1".to_owned()),
        resource: Some("https://vault.azure.net".to_owned()),
        client_ip: Some("10.0.0.4".to_owned()),
        correlation_id: Some("c0ffee00-0000-4000-8000-000000000000".to_owned()),
        host_id: Some("host-1".to_owned()),
        compute_resource_id: Some(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
                .to_owned(),
        ),
        endpoint: Some("imds".to_owned()),
        ..SignInEvent::new(
            UnixTime::from_secs(START_SECS + seconds_after_start),
            TENANT,
            "ManagedIdentity",
            "managedIdentity",
        )
    }
}

fn failed_app_event(seconds_after_start: i64) -> SignInEvent {
    SignInEvent {
        id: format!("00000000-0000-4000-9000-{seconds_after_start:012}"),
        app_id: Some("66666666-7777-4888-8999-aaaaaaaaaaaa".to_owned()),
        resource: Some("https://management.azure.com/".to_owned()),
        success: false,
        error_code: Some(7_000_215),
        failure_reason: Some("Invalid client secret provided.".to_owned()),
        endpoint: Some("token".to_owned()),
        ..SignInEvent::new(
            UnixTime::from_millis((START_SECS + seconds_after_start) * 1000 + 250),
            TENANT,
            "ServicePrincipal",
            "clientSecret",
        )
    }
}

fn ids(events: &[Value]) -> Vec<&str> {
    events.iter().map(|event| event["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn events_are_listed_as_graph_sign_ins() {
    let temp = TempStore::new().await;
    let log = SignInLog::start(temp.store.clone());
    log.record(mi_event(0)).await;
    log.record(failed_app_event(1)).await;
    log.flush().await;
    let events = SignInLog::list(temp.store.as_ref(), TENANT, None, None, 100).await.unwrap();
    expect![[r#"
        [
          {
            "id": "00000000-0000-4000-8000-000000000000",
            "createdDateTime": "2024-01-01T00:00:00Z",
            "appId": "be5947ed-3560-4afe-9504-59967a63f810",
            "appDisplayName": "id1",
            "servicePrincipalId": "9f1a4c6e-0000-4000-8000-000000000001",
            "servicePrincipalName": "id1",
            "resourceDisplayName": "https://vault.azure.net",
            "resourceId": "https://vault.azure.net",
            "ipAddress": "10.0.0.4",
            "correlationId": "c0ffee00-0000-4000-8000-000000000000",
            "status": {
              "errorCode": 0,
              "failureReason": null
            },
            "credentialType": "managedIdentity",
            "principalType": "ManagedIdentity",
            "hostId": "host-1",
            "computeResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
            "endpoint": "imds"
          },
          {
            "id": "00000000-0000-4000-9000-000000000001",
            "createdDateTime": "2024-01-01T00:00:01.25Z",
            "appId": "66666666-7777-4888-8999-aaaaaaaaaaaa",
            "appDisplayName": null,
            "servicePrincipalId": null,
            "servicePrincipalName": null,
            "resourceDisplayName": "https://management.azure.com/",
            "resourceId": "https://management.azure.com/",
            "ipAddress": null,
            "correlationId": null,
            "status": {
              "errorCode": 7000215,
              "failureReason": "Invalid client secret provided."
            },
            "credentialType": "clientSecret",
            "principalType": "ServicePrincipal",
            "hostId": null,
            "computeResourceId": null,
            "endpoint": "token"
          }
        ]"#]]
    .assert_eq(&serde_json::to_string_pretty(&events).unwrap());
}

#[tokio::test]
async fn list_filters_by_principal_since_and_limit() {
    let temp = TempStore::new().await;
    let log = SignInLog::start(temp.store.clone());
    for seconds in 0..3 {
        log.record(mi_event(seconds * 10)).await;
        log.record(failed_app_event(seconds * 10 + 5)).await;
    }
    let mut other_tenant = mi_event(99);
    other_tenant.tenant_id = "other-tenant".to_owned();
    log.record(other_tenant).await;
    log.flush().await;
    let list = |principal, since, limit| {
        let store = temp.store.clone();
        async move {
            let events = SignInLog::list(store.as_ref(), TENANT, principal, since, limit).await;
            ids(&events.unwrap()).join(" ").replace("00000000-0000-4000-", "")
        }
    };
    expect!["8000-000000000000 9000-000000000005 8000-000000000010 9000-000000000015 8000-000000000020 9000-000000000025"]
        .assert_eq(&list(None, None, 100).await);
    // By object id.
    expect!["8000-000000000000 8000-000000000010 8000-000000000020"]
        .assert_eq(&list(Some("9f1a4c6e-0000-4000-8000-000000000001"), None, 100).await);
    // By app id.
    expect!["9000-000000000005 9000-000000000015 9000-000000000025"]
        .assert_eq(&list(Some("66666666-7777-4888-8999-aaaaaaaaaaaa"), None, 100).await);
    expect!["8000-000000000010 9000-000000000015 8000-000000000020 9000-000000000025"]
        .assert_eq(&list(None, Some(UnixTime::from_secs(START_SECS + 10)), 100).await);
    expect!["8000-000000000000 9000-000000000005"].assert_eq(&list(None, None, 2).await);
    expect![""].assert_eq(&list(Some("unknown"), None, 100).await);
}

#[tokio::test]
async fn a_burst_of_concurrent_events_is_stored_completely() {
    // Goal: more events than one batch, from several tasks at once, all arrive after a flush;
    // each task's events keep their order.
    let temp = TempStore::new().await;
    let log = SignInLog::start(temp.store.clone());
    let mut tasks = Vec::new();
    for task in 0..4_i64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..150_i64 {
                let mut event = mi_event(task * 1000 + n);
                event.app_id = Some(format!("app-{task}"));
                log.record(event).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    log.flush().await;
    let all = SignInLog::list(temp.store.as_ref(), TENANT, None, None, 1000).await.unwrap();
    assert_eq!(all.len(), 600);
    for task in 0..4 {
        let events =
            SignInLog::list(temp.store.as_ref(), TENANT, Some(&format!("app-{task}")), None, 1000)
                .await
                .unwrap();
        let expected: Vec<String> =
            (0..150).map(|n| format!("00000000-0000-4000-8000-{:012}", task * 1000 + n)).collect();
        assert_eq!(ids(&events), expected);
    }
}

#[tokio::test]
async fn flush_without_events_returns() {
    let temp = TempStore::new().await;
    let log = SignInLog::start(temp.store.clone());
    log.flush().await;
    log.flush().await;
    assert!(SignInLog::list(temp.store.as_ref(), TENANT, None, None, 10).await.unwrap().is_empty());
}

#[test]
fn stored_rows_carry_status_and_keys() {
    let record = failed_app_event(1).to_record();
    assert_eq!(record.status, "failure");
    assert_eq!(record.timestamp, (START_SECS + 1) * 1000 + 250);
    assert_eq!(record.app_id.as_deref(), Some("66666666-7777-4888-8999-aaaaaaaaaaaa"));
    assert_eq!(record.principal_id, None);
    assert_eq!(mi_event(0).to_record().status, "success");
    let body: Value = serde_json::from_str(&record.body).unwrap();
    assert_eq!(body, failed_app_event(1).to_graph_json());
}

#[test]
fn new_events_get_distinct_guids() {
    let a = SignInEvent::new(UnixTime::from_secs(0), TENANT, "ServicePrincipal", "clientSecret");
    let b = SignInEvent::new(UnixTime::from_secs(0), TENANT, "ServicePrincipal", "clientSecret");
    assert_ne!(a.id, b.id);
    assert!(a.id.parse::<domain::Guid>().is_ok());
    assert!(a.success);
}
