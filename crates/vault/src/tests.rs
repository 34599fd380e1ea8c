//! Key Vault semantics against a real SQLite store: versions, attributes, soft delete,
//! recover, purge, backup and restore, and that no value reaches the database in clear.

use super::*;

struct Fixture {
    store: Box<dyn Store>,
    key: crypto::envelope::MasterKey,
    dir: std::path::PathBuf,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = std::env::temp_dir()
            .join(format!("ambient-vault-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = store::open(&format!("sqlite://{}", dir.join("v.db").display())).await.unwrap();
        Fixture { store, key: crypto::envelope::MasterKey::generate(), dir }
    }

    fn vault(&self, now: i64) -> Vault<'_> {
        Vault::new(
            self.store.as_ref(),
            &self.key,
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.keyvault/vaults/v",
            Policy { soft_delete: true, retention_days: 7 },
            UnixTime::from_secs(now),
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn versions_attributes_and_the_value_at_rest() {
    let fixture = Fixture::new().await;
    let vault = fixture.vault(1000);
    let first = vault
        .set(
            "db-password",
            "hunter2-unique-marker",
            Some("text/plain".into()),
            &serde_json::json!({"env": "dev"}),
            &AttributesInput::default(),
        )
        .await
        .unwrap();
    let second = vault
        .set(
            "DB-Password",
            "second-value",
            None,
            &serde_json::Value::Null,
            &AttributesInput::default(),
        )
        .await
        .unwrap();
    assert_ne!(first.version, second.version);
    assert_eq!(
        vault.get("db-password", None).await.unwrap().value.unwrap().expose(),
        "second-value"
    );
    assert_eq!(
        vault.get("db-password", Some(&first.version)).await.unwrap().value.unwrap().expose(),
        "hunter2-unique-marker"
    );
    assert_eq!(vault.versions("db-password").await.unwrap().len(), 2);
    assert_eq!(vault.list(None, 25).await.unwrap()[0].name, "db-password");

    vault
        .update(
            "db-password",
            Some(&first.version),
            None,
            None,
            &AttributesInput { enabled: Some(false), ..Default::default() },
        )
        .await
        .unwrap();
    assert!(matches!(
        vault.get("db-password", Some(&first.version)).await,
        Err(Error::Forbidden { inner: "SecretDisabled", .. })
    ));
    vault
        .update(
            "db-password",
            None,
            None,
            None,
            &AttributesInput { expires: Some(Some(999)), ..Default::default() },
        )
        .await
        .unwrap();
    assert!(matches!(
        vault.get("db-password", None).await,
        Err(Error::Forbidden { inner: "SecretExpired", .. })
    ));
    vault
        .update(
            "db-password",
            None,
            None,
            None,
            &AttributesInput {
                expires: Some(None),
                not_before: Some(Some(5000)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        vault.get("db-password", None).await,
        Err(Error::Forbidden { inner: "SecretNotYetValid", .. })
    ));

    // Issue 17: a leading '-' is refused too; inside a name it is fine.
    for bad in ["", "has_underscore", "a b", &"x".repeat(128), "-flag", "--", "-"] {
        assert!(
            matches!(
                vault
                    .set(bad, "v", None, &serde_json::Value::Null, &AttributesInput::default())
                    .await,
                Err(Error::BadParameter(_))
            ),
            "{bad:?}"
        );
    }
    assert!(check_name("a-b-").is_ok());
    assert!(check_name("9-lives").is_ok());
    assert!(matches!(vault.get("db-password", Some("nothex")).await, Err(Error::BadParameter(_))));
    assert!(matches!(vault.get("missing", None).await, Err(Error::NotFound(_))));

    // Nothing of the value is in the database file in clear.
    drop(vault);
    let bytes: Vec<u8> = std::fs::read_dir(&fixture.dir)
        .unwrap()
        .flat_map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert!(!bytes.windows(21).any(|window| window == b"hunter2-unique-marker"));
}

#[tokio::test]
async fn soft_delete_recover_purge_and_automatic_purge() {
    let fixture = Fixture::new().await;
    let vault = fixture.vault(1000);
    vault
        .set("s1", "v1", None, &serde_json::Value::Null, &AttributesInput::default())
        .await
        .unwrap();
    let deleted = vault.delete("s1").await.unwrap();
    assert_eq!(deleted.deleted, Some((1000, 1000 + 7 * 86_400)));
    assert!(matches!(vault.get("s1", None).await, Err(Error::NotFound(_))));
    assert!(matches!(
        vault.set("s1", "again", None, &serde_json::Value::Null, &AttributesInput::default()).await,
        Err(Error::Conflict { inner: "ObjectIsDeletedButRecoverable", .. })
    ));
    assert_eq!(vault.list_deleted(None, 25).await.unwrap().len(), 1);
    vault.recover("s1").await.unwrap();
    assert_eq!(vault.get("s1", None).await.unwrap().value.unwrap().expose(), "v1");
    vault.delete("s1").await.unwrap();
    vault.purge("s1").await.unwrap();
    assert!(matches!(vault.get_deleted("s1").await, Err(Error::NotFound(_))));

    vault
        .set("s2", "v2", None, &serde_json::Value::Null, &AttributesInput::default())
        .await
        .unwrap();
    vault.delete("s2").await.unwrap();
    assert_eq!(
        purge_due(fixture.store.as_ref(), UnixTime::from_secs(1000 + 7 * 86_400 - 1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        purge_due(fixture.store.as_ref(), UnixTime::from_secs(1000 + 7 * 86_400)).await.unwrap(),
        1
    );
    assert!(matches!(vault.get_deleted("s2").await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn backup_restores_every_version() {
    let fixture = Fixture::new().await;
    let vault = fixture.vault(1000);
    vault
        .set("s", "one", None, &serde_json::Value::Null, &AttributesInput::default())
        .await
        .unwrap();
    vault
        .set("s", "two", None, &serde_json::Value::Null, &AttributesInput::default())
        .await
        .unwrap();
    let blob = vault.backup("s").await.unwrap();
    assert!(!blob.contains("two"));
    assert!(matches!(vault.restore(&blob).await, Err(Error::Conflict { .. })));
    vault.delete("s").await.unwrap();
    vault.purge("s").await.unwrap();
    vault.restore(&blob).await.unwrap();
    assert_eq!(vault.get("s", None).await.unwrap().value.unwrap().expose(), "two");
    assert_eq!(vault.versions("s").await.unwrap().len(), 2);
    assert!(matches!(vault.restore("not-a-backup").await, Err(Error::BadParameter(_))));
}
