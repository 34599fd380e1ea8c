//! The backend-independent store checks. `main.rs` runs each as a test of its own on each
//! backend, on a fresh database; a check that needs rows first writes them with the `seed_*`
//! helpers.

use store::*;

use crate::TestStore;

const TENANT: &str = "11111111-1111-4111-8111-111111111111";
const SUB: &str = "22222222-2222-4222-8222-222222222222";

pub async fn answers_ping(db: TestStore) {
    db.store().ping().await.expect("ping");
}

pub async fn tenants_and_subscriptions(db: TestStore) {
    let store = db.store();
    store
        .apply(vec![
            Write::PutTenant(TenantRecord {
                id: TENANT.to_owned(),
                display_name: "Contoso".to_owned(),
                created_at: 1,
            }),
            Write::PutSubscription(SubscriptionRecord {
                id: SUB.to_owned(),
                tenant_id: TENANT.to_owned(),
                display_name: "Default".to_owned(),
                state: "Enabled".to_owned(),
                created_at: 2,
            }),
        ])
        .await
        .unwrap();
    assert_eq!(store.list_tenants().await.unwrap().len(), 1);
    let sub = store.get_subscription(SUB).await.unwrap().expect("subscription stored");
    assert_eq!(sub.tenant_id, TENANT);
    assert_eq!(sub.state, "Enabled");
    assert!(store.get_subscription("nope").await.unwrap().is_none());
}

pub async fn settings_are_replaced(db: TestStore) {
    let store = db.store();
    assert_eq!(store.get_setting("bootstrap").await.unwrap(), None);
    for value in ["started", "done"] {
        store
            .apply(vec![Write::PutSetting { name: "bootstrap".into(), value: value.into() }])
            .await
            .unwrap();
    }
    assert_eq!(store.get_setting("bootstrap").await.unwrap().as_deref(), Some("done"));
}

pub async fn resource_writes_are_conditional(db: TestStore) {
    let store = db.store();
    let id1 = uami_key("id1");
    let record = vm("vm1", std::slice::from_ref(&id1));
    store
        .apply(vec![Write::PutResource { record: record.clone(), expect: Expect::Absent }])
        .await
        .unwrap();
    // Creating the same key again is a conflict, and the stored row is unchanged.
    let again = store
        .apply(vec![Write::PutResource { record: record.clone(), expect: Expect::Absent }])
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
    let stored = store.get_resource(&record.key).await.unwrap().unwrap();
    assert_eq!(stored, record);

    // A replace at the current version bumps it; a replace at a stale version is refused.
    let mut changed = stored.clone();
    changed.tags = r#"{"env":"prod"}"#.to_owned();
    changed.user_identity_keys = vec![];
    store
        .apply(vec![Write::PutResource { record: changed.clone(), expect: Expect::Version(1) }])
        .await
        .unwrap();
    let stale =
        store.apply(vec![Write::PutResource { record: changed, expect: Expect::Version(1) }]).await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
    let stored = store.get_resource(&record.key).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.tags, r#"{"env":"prod"}"#);
    assert!(stored.user_identity_keys.is_empty());
    assert!(store.list_resources_holding_identity(&id1).await.unwrap().is_empty());

    // Unconditional puts create and replace.
    let record = vm("vm1", std::slice::from_ref(&id1));
    store.apply(vec![Write::PutResource { record, expect: Expect::Any }]).await.unwrap();
    assert_eq!(store.get_resource(&vm_key("vm1")).await.unwrap().unwrap().version, 3);
    assert_eq!(store.list_resources_holding_identity(&id1).await.unwrap(), vec![vm_key("vm1")]);
}

pub async fn resources_list_by_filter_and_page(db: TestStore) {
    let store = db.store();
    seed_vm1(store).await;
    let shared = uami_key("shared");
    let mut writes = Vec::new();
    for index in 0..10 {
        writes.push(Write::PutResource {
            record: vm(&format!("web{index:02}"), std::slice::from_ref(&shared)),
            expect: Expect::Absent,
        });
    }
    store.apply(writes).await.unwrap();
    assert_eq!(store.list_resources_holding_identity(&shared).await.unwrap().len(), 10);

    let filter = ResourceFilter {
        subscription_id: Some(SUB.to_owned()),
        resource_group_key: Some("rg1".to_owned()),
        type_key: Some("microsoft.compute/virtualmachines".to_owned()),
        ..ResourceFilter::default()
    };
    let mut seen = Vec::new();
    let mut page = Page::first(4);
    loop {
        let rows = store.list_resources(&filter, &page).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 4);
        page.after_key = Some(rows.last().unwrap().key.clone());
        seen.extend(rows.into_iter().map(|row| row.name));
    }
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert_eq!(seen[0], "vm1");
    assert_eq!(seen[1], "web00");

    let prefix = ResourceFilter { key_prefix: Some(vm_key("web0")), ..ResourceFilter::default() };
    assert_eq!(store.list_resources(&prefix, &Page::first(100)).await.unwrap().len(), 10);
    // `_` in a prefix is literal, not a wildcard.
    let literal = ResourceFilter { key_prefix: Some(vm_key("web_")), ..ResourceFilter::default() };
    assert!(store.list_resources(&literal, &Page::first(100)).await.unwrap().is_empty());
    let other_host =
        ResourceFilter { host_id: Some("elsewhere".to_owned()), ..ResourceFilter::default() };
    assert!(store.list_resources(&other_host, &Page::first(100)).await.unwrap().is_empty());

    store.apply(vec![Write::DeleteResource { key: vm_key("web09") }]).await.unwrap();
    store.apply(vec![Write::DeleteResource { key: vm_key("web09") }]).await.unwrap();
    assert_eq!(store.list_resources_holding_identity(&shared).await.unwrap().len(), 9);
    assert!(store.get_resource(&vm_key("web09")).await.unwrap().is_none());
}

pub async fn deleting_a_principal_cascades(db: TestStore) {
    let store = db.store();
    seed_tenant(store).await;
    let vm1 = vm_key("vm1");
    store
        .apply(vec![
            Write::PutPrincipal(principal("p-system", "app-system", Some(&vm1))),
            Write::PutCredential(CredentialRecord {
                id: "cred-1".to_owned(),
                principal_id: "p-system".to_owned(),
                kind: "secret".to_owned(),
                display_name: "default".to_owned(),
                secret_hash: Some(vec![1, 2, 3]),
                hint: Some("abc".to_owned()),
                thumbprint_sha1: None,
                thumbprint_sha256: None,
                certificate_der: None,
                expires_at: 99,
                created_at: 1,
            }),
            Write::InsertRoleAssignment(assignment(
                "a-system",
                "p-system",
                &vm_id("vm1"),
                "role-x",
            )),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_principal_by_app_id("app-system").await.unwrap().unwrap().object_id,
        "p-system"
    );
    assert_eq!(store.list_principals_managed_by(&vm1).await.unwrap().len(), 1);
    assert_eq!(store.list_principals(Some("ManagedIdentity")).await.unwrap().len(), 1);
    assert!(store.list_principals(Some("User")).await.unwrap().is_empty());
    let credentials = store.list_credentials("p-system").await.unwrap();
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0].secret_hash.as_deref(), Some(&[1u8, 2, 3][..]));
    // Debug output of a credential never shows its hash.
    assert!(!format!("{:?}", credentials[0]).contains("secret_hash"));

    // A second principal with the same app id is refused.
    let duplicate =
        store.apply(vec![Write::PutPrincipal(principal("p-other", "app-system", None))]).await;
    assert!(matches!(duplicate, Err(Error::Conflict(_))), "{duplicate:?}");

    store.apply(vec![Write::DeletePrincipal { object_id: "p-system".to_owned() }]).await.unwrap();
    assert!(store.get_principal("p-system").await.unwrap().is_none());
    assert!(store.list_credentials("p-system").await.unwrap().is_empty());
    assert!(store.list_role_assignments_for_principal("p-system").await.unwrap().is_empty());
}

pub async fn role_assignments_by_principal_and_scope(db: TestStore) {
    let store = db.store();
    seed_tenant(store).await;
    let group = format!("/subscriptions/{SUB}/resourceGroups/RG1");
    store
        .apply(vec![
            Write::PutPrincipal(principal("p-reader", "app-reader", None)),
            Write::InsertRoleAssignment(assignment("a1", "p-reader", &group, "reader")),
            Write::InsertRoleAssignment(assignment("a2", "p-reader", &vm_id("vm1"), "contributor")),
            Write::InsertRoleAssignment(assignment(
                "a3",
                "p-reader",
                &format!("/subscriptions/{SUB}"),
                "reader",
            )),
        ])
        .await
        .unwrap();
    // Same principal, role and scope under another name: conflict.
    let duplicate = store
        .apply(vec![Write::InsertRoleAssignment(assignment("a4", "p-reader", &group, "reader"))])
        .await;
    assert!(matches!(duplicate, Err(Error::Conflict(_))), "{duplicate:?}");

    assert_eq!(store.list_role_assignments_for_principal("p-reader").await.unwrap().len(), 3);
    let at_group = store.list_role_assignments(Some(&[group.to_ascii_lowercase()])).await.unwrap();
    assert_eq!(at_group.len(), 1);
    assert_eq!(at_group[0].name, "a1");
    assert_eq!(at_group[0].scope, group);
    assert!(store.list_role_assignments(Some(&[])).await.unwrap().is_empty());
    assert_eq!(store.list_role_assignments(None).await.unwrap().len(), 3);
    let key = at_group[0].key.clone();
    assert_eq!(
        store.get_role_assignment(&key).await.unwrap().unwrap().role_definition_id,
        "reader"
    );

    // Deleting under the group removes the group's and the VM's assignments, not the subscription's.
    store
        .apply(vec![Write::DeleteRoleAssignmentsUnder { scope_key: group.to_ascii_lowercase() }])
        .await
        .unwrap();
    let left = store.list_role_assignments_for_principal("p-reader").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "a3");
}

pub async fn state_changes_bump_the_change_counter(db: TestStore) {
    let store = db.store();
    let counter = || async { store.get_setting(CHANGE_COUNTER_SETTING).await.unwrap() };
    assert_eq!(counter().await, None);
    seed_vm1(store).await;
    assert_eq!(counter().await.as_deref(), Some("1"));
    seed_vm1_again_fails(store).await;
    assert_eq!(counter().await.as_deref(), Some("1"), "a failed batch changes nothing");
    // Settings alone are bookkeeping, not state callers see.
    store
        .apply(vec![Write::PutSetting { name: "host-seen/h".into(), value: "1".into() }])
        .await
        .unwrap();
    assert_eq!(counter().await.as_deref(), Some("1"));
    store
        .apply(vec![Write::PutResource { record: vm("vm2", &[]), expect: Expect::Absent }])
        .await
        .unwrap();
    assert_eq!(counter().await.as_deref(), Some("2"));
}

async fn seed_vm1_again_fails(store: &dyn Store) {
    let again = store
        .apply(vec![Write::PutResource { record: vm("vm1", &[]), expect: Expect::Absent }])
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
}

pub async fn apply_is_all_or_nothing(db: TestStore) {
    let store = db.store();
    seed_vm1(store).await;
    // The last write conflicts, so the first must not be visible afterwards.
    let result = store
        .apply(vec![
            Write::PutSetting { name: "partial".into(), value: "yes".into() },
            Write::PutResource { record: vm("atomic", &[]), expect: Expect::Absent },
            Write::PutResource { record: vm("vm1", &[]), expect: Expect::Absent },
        ])
        .await;
    assert!(matches!(result, Err(Error::Conflict(_))), "{result:?}");
    assert_eq!(store.get_setting("partial").await.unwrap(), None);
    assert!(store.get_resource(&vm_key("atomic")).await.unwrap().is_none());
}

pub async fn events_append_and_page(db: TestStore) {
    let store = db.store();
    let mut writes = Vec::new();
    for index in 0..5_i64 {
        let event = NewEventRecord {
            event_id: format!("e{index}"),
            tenant_id: TENANT.to_owned(),
            subscription_id: Some(SUB.to_owned()),
            resource_group_key: Some("rg1".to_owned()),
            resource_key: Some(vm_key("vm1")),
            correlation_id: Some(format!("c{}", index / 2)),
            principal_id: Some(format!("p{}", index % 2)),
            app_id: None,
            status: "Succeeded".to_owned(),
            timestamp: 1000 + index,
            body: format!("{{\"n\":{index}}}"),
        };
        writes.push(Write::AppendActivityEvent(event.clone()));
        writes.push(Write::AppendSignInEvent(event));
    }
    store.apply(writes).await.unwrap();
    let all = EventFilter { partition: SUB.to_owned(), limit: 100, ..EventFilter::default() };
    let events = store.list_activity_events(&all).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["e0", "e1", "e2", "e3", "e4"]
    );
    let window = EventFilter { since: Some(1001), until: Some(1003), ..all.clone() };
    assert_eq!(store.list_activity_events(&window).await.unwrap().len(), 3);
    let correlated = EventFilter { correlation_id: Some("c1".to_owned()), ..all.clone() };
    assert_eq!(store.list_activity_events(&correlated).await.unwrap().len(), 2);
    let paged = EventFilter { after_seq: events[2].seq, limit: 1, ..all.clone() };
    assert_eq!(store.list_activity_events(&paged).await.unwrap()[0].event_id, "e3");
    let newest = EventFilter { newest_first: true, limit: 2, ..all.clone() };
    let first_page = store.list_activity_events(&newest).await.unwrap();
    assert_eq!(first_page.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e4", "e3"]);
    let next = EventFilter { before_seq: Some(first_page[1].seq), ..newest };
    let second_page = store.list_activity_events(&next).await.unwrap();
    assert_eq!(second_page.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e2", "e1"]);

    let sign_ins = EventFilter {
        partition: TENANT.to_owned(),
        principal_id: Some("p1".to_owned()),
        limit: 100,
        ..EventFilter::default()
    };
    assert_eq!(store.list_sign_in_events(&sign_ins).await.unwrap().len(), 2);
}

fn event(id: &str, timestamp: i64) -> NewEventRecord {
    NewEventRecord {
        event_id: id.to_owned(),
        tenant_id: TENANT.to_owned(),
        subscription_id: Some(SUB.to_owned()),
        resource_group_key: None,
        resource_key: Some(vm_key("vm1")),
        correlation_id: None,
        principal_id: Some("p".to_owned()),
        app_id: None,
        status: "Failed".to_owned(),
        timestamp,
        body: format!("{{\"id\":\"{id}\"}}"),
    }
}

pub async fn aggregated_events_count_into_one_row(db: TestStore) {
    // Issue 17: writes with one aggregate key add to one row's count and newest time; the row
    // keeps the first event's body and time. Plain appends count one each.
    let store = db.store();
    let add = |id: &str, key: &str, count, first, last| EventAggregate {
        record: event(id, first),
        aggregate_key: key.to_owned(),
        count,
        last_timestamp: last,
    };
    for log in [EventLog::Activity, EventLog::SignIn] {
        let write = |aggregate: EventAggregate| match log {
            EventLog::Activity => Write::AddToActivityAggregate(aggregate),
            EventLog::SignIn => Write::AddToSignInAggregate(aggregate),
        };
        store
            .apply(vec![
                write(add("a1", "key-a", 3, 1000, 1500)),
                write(add("b1", "key-b", 1, 1100, 1100)),
                match log {
                    EventLog::Activity => Write::AppendActivityEvent(event("plain", 1200)),
                    EventLog::SignIn => Write::AppendSignInEvent(event("plain", 1200)),
                },
            ])
            .await
            .unwrap();
        // A second node, or a later flush, adds to the same row; an older time does not win.
        store.apply(vec![write(add("a2", "key-a", 2, 1600, 1400))]).await.unwrap();
        store.apply(vec![write(add("a3", "key-a", 1, 1700, 1900))]).await.unwrap();
        let (partition, events) = match log {
            EventLog::Activity => {
                let filter =
                    EventFilter { partition: SUB.to_owned(), limit: 10, ..Default::default() };
                (SUB, store.list_activity_events(&filter).await.unwrap())
            }
            EventLog::SignIn => {
                let filter =
                    EventFilter { partition: TENANT.to_owned(), limit: 10, ..Default::default() };
                (TENANT, store.list_sign_in_events(&filter).await.unwrap())
            }
        };
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                (e.event_id.as_str(), e.body.as_str(), e.timestamp, e.event_count, e.last_timestamp)
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("a1", r#"{"id":"a1"}"#, 1000, 6, 1900),
                ("b1", r#"{"id":"b1"}"#, 1100, 1, 1100),
                ("plain", r#"{"id":"plain"}"#, 1200, 1, 1200),
            ],
            "{log:?} in {partition}"
        );
    }
}

pub async fn events_are_pruned_by_age_then_by_count(db: TestStore) {
    // Issue 17: retention deletes events whose newest time is past the cutoff (an aggregate that
    // is still counting stays), then the size cap deletes the oldest beyond the cap.
    let store = db.store();
    let mut writes = Vec::new();
    for n in 0..10_i64 {
        writes.push(Write::AppendSignInEvent(event(&format!("s{n}"), 1000 + n)));
        writes.push(Write::AppendActivityEvent(event(&format!("a{n}"), 1000 + n)));
    }
    writes.push(Write::AddToSignInAggregate(EventAggregate {
        record: event("old-but-counting", 900),
        aggregate_key: "k".to_owned(),
        count: 2,
        last_timestamp: 2000,
    }));
    store.apply(writes).await.unwrap();
    let ids = |events: Vec<EventRecord>| {
        events.into_iter().map(|event| event.event_id).collect::<Vec<_>>().join(" ")
    };
    let sign_ins = EventFilter { partition: TENANT.to_owned(), limit: 100, ..Default::default() };
    let activity = EventFilter { partition: SUB.to_owned(), limit: 100, ..Default::default() };

    assert_eq!(store.prune_events(EventLog::SignIn, 1005, 100).await.unwrap(), 5);
    assert_eq!(
        ids(store.list_sign_in_events(&sign_ins).await.unwrap()),
        "s5 s6 s7 s8 s9 old-but-counting"
    );
    assert_eq!(store.list_activity_events(&activity).await.unwrap().len(), 10, "other log kept");
    assert_eq!(store.prune_events(EventLog::SignIn, 0, 2).await.unwrap(), 4);
    assert_eq!(ids(store.list_sign_in_events(&sign_ins).await.unwrap()), "s9 old-but-counting");
    assert_eq!(store.prune_events(EventLog::SignIn, 0, 2).await.unwrap(), 0, "nothing more");
    assert_eq!(store.prune_events(EventLog::Activity, 1003, 5).await.unwrap(), 5);
    assert_eq!(ids(store.list_activity_events(&activity).await.unwrap()), "a5 a6 a7 a8 a9");
    assert_eq!(store.prune_events(EventLog::Activity, i64::MAX, 5).await.unwrap(), 5);
    assert!(store.list_activity_events(&activity).await.unwrap().is_empty());
}

pub async fn assertion_replays_are_refused(db: TestStore) {
    let store = db.store();
    assert!(store.record_assertion_use("jti-1", 2000, 1000).await.unwrap());
    assert!(!store.record_assertion_use("jti-1", 2000, 1500).await.unwrap(), "replay accepted");
    // Once expired, the entry is forgotten and the jti may be seen again.
    assert!(store.record_assertion_use("jti-1", 4000, 2500).await.unwrap());
}

pub async fn leases_expire(db: TestStore) {
    let store = db.store();
    assert!(store.try_acquire_lease("rotate", "node-a", 1000, 2000).await.unwrap());
    assert!(!store.try_acquire_lease("rotate", "node-b", 1500, 2500).await.unwrap());
    assert!(store.try_acquire_lease("rotate", "node-a", 1500, 2500).await.unwrap());
    assert!(store.try_acquire_lease("rotate", "node-b", 3000, 4000).await.unwrap());
}

pub async fn signing_keys_rotate_and_hide_private_keys(db: TestStore) {
    let store = db.store();
    let key = SigningKeyRecord {
        kid: "kid-1".to_owned(),
        tenant_id: TENANT.to_owned(),
        algorithm: "RS256".to_owned(),
        private_key: vec![9; 40],
        certificate_der: vec![7; 10],
        created_at: 1,
        signs_from: 1,
        signs_until: None,
        published_until: None,
    };
    store.apply(vec![Write::PutSigningKey(key.clone())]).await.unwrap();
    let retired =
        SigningKeyRecord { signs_until: Some(50), published_until: Some(90), ..key.clone() };
    store.apply(vec![Write::PutSigningKey(retired.clone())]).await.unwrap();
    assert_eq!(store.list_signing_keys(TENANT).await.unwrap(), vec![retired]);
    assert!(!format!("{key:?}").contains("private_key"));
}

pub async fn hosts_are_replaced(db: TestStore) {
    let store = db.store();
    let host = HostRecord {
        id: "local".to_owned(),
        state: "pending".to_owned(),
        join_token_hash: Some(vec![1; 32]),
        join_token_expires_at: Some(600),
        certificate_sha256: None,
        certificate_not_after: None,
        created_at: 1,
        updated_at: 1,
    };
    store.apply(vec![Write::PutHost(host.clone())]).await.unwrap();
    let active = HostRecord {
        state: "active".to_owned(),
        join_token_hash: None,
        certificate_sha256: Some("ab".to_owned()),
        updated_at: 2,
        ..host
    };
    store.apply(vec![Write::PutHost(active.clone())]).await.unwrap();
    assert_eq!(store.get_host("local").await.unwrap(), Some(active));
    assert_eq!(store.list_hosts().await.unwrap().len(), 1);
}

pub async fn vault_secrets_version_delete_and_purge(db: TestStore) {
    let store = db.store();
    let vault = "/subscriptions/s/resourcegroups/rg/providers/microsoft.keyvault/vaults/v1";
    let secret = |version: &str, deleted_at: Option<i64>| VaultSecretRecord {
        vault_key: vault.to_owned(),
        name_key: "db-password".to_owned(),
        name: "DB-Password".to_owned(),
        current_version: version.to_owned(),
        deleted_at,
        scheduled_purge_at: deleted_at.map(|at| at + 100),
        created_at: 1,
        updated_at: 1,
    };
    let version = |version: &str, created_at: i64| VaultSecretVersionRecord {
        vault_key: vault.to_owned(),
        name_key: "db-password".to_owned(),
        version: version.to_owned(),
        value: vec![1, 2, 3],
        content_type: Some("text/plain".to_owned()),
        tags: "{}".to_owned(),
        enabled: true,
        not_before: None,
        expires: Some(99),
        created_at,
        updated_at: created_at,
    };
    store
        .apply(vec![
            Write::PutVaultSecret(secret("a", None)),
            Write::PutVaultSecretVersion(version("a", 1)),
            Write::PutVaultSecretVersion(version("b", 2)),
            Write::PutVaultSecret(secret("b", None)),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get_vault_secret(vault, "db-password").await.unwrap().unwrap().current_version,
        "b"
    );
    let versions = store.list_vault_secret_versions(vault, "db-password").await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let disabled = VaultSecretVersionRecord { enabled: false, ..version("a", 1) };
    store.apply(vec![Write::PutVaultSecretVersion(disabled)]).await.unwrap();
    assert!(
        !store.get_vault_secret_version(vault, "db-password", "a").await.unwrap().unwrap().enabled
    );
    assert_eq!(store.list_vault_secrets(vault, false, None, 10).await.unwrap().len(), 1);
    store.apply(vec![Write::PutVaultSecret(secret("b", Some(500)))]).await.unwrap();
    assert!(store.list_vault_secrets(vault, false, None, 10).await.unwrap().is_empty());
    assert_eq!(store.list_vault_secrets(vault, true, None, 10).await.unwrap().len(), 1);
    assert!(store.list_vault_secrets_due(599, 10).await.unwrap().is_empty());
    assert_eq!(store.list_vault_secrets_due(600, 10).await.unwrap().len(), 1);
    store
        .apply(vec![Write::PurgeVaultSecret {
            vault_key: vault.to_owned(),
            name_key: "db-password".to_owned(),
        }])
        .await
        .unwrap();
    assert!(store.get_vault_secret(vault, "db-password").await.unwrap().is_none());
    assert!(store.list_vault_secret_versions(vault, "db-password").await.unwrap().is_empty());
}

/// After a reopen, what was written is still there.
pub async fn data_survives_reopen(db: TestStore) {
    let store = db.store();
    seed_tenant(store).await;
    seed_vm1(store).await;
    store
        .apply(vec![Write::PutSetting { name: "bootstrap".into(), value: "done".into() }])
        .await
        .unwrap();
    let db = db.reopen().await;
    let store = db.store();
    assert_eq!(store.get_tenant(TENANT).await.unwrap().unwrap().display_name, "Contoso");
    assert!(store.get_resource(&vm_key("vm1")).await.unwrap().is_some());
    assert_eq!(store.get_setting("bootstrap").await.unwrap().as_deref(), Some("done"));
}

/// The tenant and subscription that principals refer to.
async fn seed_tenant(store: &dyn Store) {
    store
        .apply(vec![
            Write::PutTenant(TenantRecord {
                id: TENANT.to_owned(),
                display_name: "Contoso".to_owned(),
                created_at: 1,
            }),
            Write::PutSubscription(SubscriptionRecord {
                id: SUB.to_owned(),
                tenant_id: TENANT.to_owned(),
                display_name: "Default".to_owned(),
                state: "Enabled".to_owned(),
                created_at: 2,
            }),
        ])
        .await
        .unwrap();
}

/// The VM `vm1`, holding the user-assigned identity `id1`.
async fn seed_vm1(store: &dyn Store) {
    let record = vm("vm1", &[uami_key("id1")]);
    store.apply(vec![Write::PutResource { record, expect: Expect::Absent }]).await.unwrap();
}

fn vm_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/RG1/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

fn vm_key(name: &str) -> String {
    vm_id(name).to_ascii_lowercase()
}

fn uami_key(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourcegroups/rg1/providers/microsoft.managedidentity/userassignedidentities/{name}"
    )
}

fn vm(name: &str, identities: &[String]) -> ResourceRecord {
    ResourceRecord {
        key: vm_key(name),
        id: vm_id(name),
        subscription_id: SUB.to_owned(),
        resource_group_key: Some("rg1".to_owned()),
        type_key: "microsoft.compute/virtualmachines".to_owned(),
        name: name.to_owned(),
        location: "westus".to_owned(),
        tags: "{}".to_owned(),
        properties: r#"{"hostId":"local"}"#.to_owned(),
        identity: Some(r#"{"type":"UserAssigned"}"#.to_owned()),
        host_id: Some("local".to_owned()),
        user_identity_keys: identities.to_vec(),
        version: 1,
        created_at: 1000,
        updated_at: 1000,
    }
}

fn principal(object_id: &str, app_id: &str, managed_by: Option<&str>) -> PrincipalRecord {
    PrincipalRecord {
        object_id: object_id.to_owned(),
        tenant_id: TENANT.to_owned(),
        kind: "ManagedIdentity".to_owned(),
        app_id: app_id.to_owned(),
        display_name: object_id.to_owned(),
        managed_by_key: managed_by.map(str::to_owned),
        identity_kind: Some("SystemAssigned".to_owned()),
        enabled: true,
        created_at: 1000,
    }
}

fn assignment(name: &str, principal_id: &str, scope: &str, role: &str) -> RoleAssignmentRecord {
    let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    RoleAssignmentRecord {
        key: id.to_ascii_lowercase(),
        id,
        name: name.to_owned(),
        scope: scope.to_owned(),
        scope_key: scope.to_ascii_lowercase(),
        role_definition_id: role.to_owned(),
        principal_id: principal_id.to_owned(),
        principal_type: "ServicePrincipal".to_owned(),
        description: None,
        created_by: None,
        created_at: 1000,
        updated_at: 1000,
    }
}
