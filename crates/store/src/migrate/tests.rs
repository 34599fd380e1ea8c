//! Migration tests: the two histories stay parallel; a database migrated by the previous runner
//! opens with every row and takes later migrations; an edited or unknown applied migration is
//! refused with a clear error.
//!
//! The database tests run on both backends (`sqlite::*`, `postgres::*`). The PostgreSQL ones share
//! one throwaway server per test binary, each test in its own database. They live beside the
//! runner rather than in `tests/it` because they migrate with histories of their own (the real one
//! plus a later migration, or with an edited file), which only the crate can pass in.

use std::borrow::Cow;
use std::path::PathBuf;

use sqlx::Connection as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr as _};

use crate::migrate::{POSTGRES, SQLITE};
use crate::*;

fn files_in(dialect: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn histories_are_parallel() {
    let versions = |migrator: &Migrator| {
        migrator.iter().map(|m| (m.version, m.description.to_string())).collect::<Vec<_>>()
    };
    assert_eq!(versions(&SQLITE), versions(&POSTGRES));
    assert_eq!(files_in("sqlite"), files_in("postgres"));
}

#[test]
fn every_file_is_embedded_in_order() {
    let files = files_in("sqlite");
    assert_eq!(files.len(), SQLITE.iter().count());
    for (index, (file, migration)) in files.iter().zip(SQLITE.iter()).enumerate() {
        assert_eq!(migration.version, index as i64 + 1);
        let name = migration.description.replace(' ', "_");
        assert_eq!(file, &format!("{:04}_{name}.sql", migration.version));
        assert_eq!(migration.migration_type, MigrationType::Simple);
        assert!(!migration.no_tx, "migration {} must run in a transaction", migration.version);
    }
}

/// Which backend a test runs on.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One fresh, empty database for one test.
struct TestDatabase {
    backend: Backend,
    url: String,
    dir: Option<PathBuf>,
}

impl TestDatabase {
    async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!(
                    "ambient-store-migrate-{}-{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                ));
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.join("ambient.db").display());
                TestDatabase { backend, url, dir: Some(dir) }
            }
            Backend::Postgres => {
                let server = test_postgres::PostgresServer::shared().expect("PostgreSQL for tests");
                let name = test_postgres::PostgresServer::unique_database_name("store_migrate");
                let mut admin = sqlx::PgConnection::connect(&server.admin_url()).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                TestDatabase { backend, url: server.database_url(&name), dir: None }
            }
        }
    }

    /// The backend's real history.
    fn history(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        }
    }

    /// Opens the store as `store::open` does, but migrating with `migrator`.
    async fn open(&self, migrator: &Migrator) -> Result<Box<dyn Store>> {
        Ok(match self.backend {
            Backend::Sqlite => Box::new(SqliteStore::open_with(&self.url, migrator).await?),
            Backend::Postgres => Box::new(PostgresStore::open_with(&self.url, migrator).await?),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// Runs `$body` with `$conn` bound to a new raw connection to `$db`, of the backend's type.
macro_rules! with_connection {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db.backend {
            Backend::Sqlite => {
                let mut $conn = sqlx::SqliteConnection::connect(&$db.url).await.unwrap();
                $body
            }
            Backend::Postgres => {
                let mut $conn = sqlx::PgConnection::connect(&$db.url).await.unwrap();
                $body
            }
        }
    };
}

/// The previous runner's history: version, description, SQL.
fn old_history(backend: Backend) -> [(i64, &'static str, &'static str); 1] {
    match backend {
        Backend::Sqlite => {
            [(1, "initial", include_str!("../../migrations/sqlite/0001_initial.sql"))]
        }
        Backend::Postgres => {
            [(1, "initial", include_str!("../../migrations/postgres/0001_initial.sql"))]
        }
    }
}

/// The previous runner, as it was before sqlx's migrator replaced it: it creates its bookkeeping
/// table, then applies each migration it has not recorded in a transaction of its own, together
/// with the row that records it. (It stamped `applied_at` with the clock; a constant does here.)
async fn migrate_with_old_runner(db: &TestDatabase) {
    let history = old_history(db.backend);
    with_connection!(db, |conn| {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS ambient_migrations (\
             version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM ambient_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        for (version, description, sql) in history.iter().filter(|m| !applied.contains(&m.0)) {
            let mut tx = conn.begin().await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(*sql)).execute(&mut *tx).await.unwrap();
            sqlx::query(
                "INSERT INTO ambient_migrations (version, description, applied_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(version)
            .bind(description)
            .bind(1_700_000_000_000_i64)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
    });
}

/// One row in every table of the initial schema, written as the previous release wrote them.
/// `HEX'..'` stands for a blob literal, spelled per dialect by [`fixture_rows`].
const FIXTURE_ROWS: &str = r#"
INSERT INTO settings (name, value) VALUES ('bootstrap', 'done');
INSERT INTO tenants (id, display_name, created_at) VALUES ('t1', 'Contoso', 1);
INSERT INTO subscriptions (id, tenant_id, display_name, state, created_at)
    VALUES ('s1', 't1', 'Default', 'Enabled', 2);
INSERT INTO resources (key, id, subscription_id, resource_group_key, type_key, name, location,
    tags, properties, identity, host_id, user_identity_keys, version, created_at, updated_at)
    VALUES ('/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm',
    '/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm', 's1', 'rg',
    'microsoft.compute/virtualmachines', 'vm', 'westus', '{"env":"prod"}', '{"hostId":"local"}',
    '{"type":"UserAssigned"}', 'local', 'id-a id-b', 3, 10, 20);
INSERT INTO resource_identity_links (resource_key, identity_key) VALUES
    ('/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm', 'id-a'),
    ('/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm', 'id-b');
INSERT INTO principals (object_id, tenant_id, kind, app_id, display_name, managed_by_key,
    identity_kind, enabled, created_at)
    VALUES ('p1', 't1', 'ManagedIdentity', 'app1', 'vm',
    '/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm',
    'SystemAssigned', TRUE, 3);
INSERT INTO principal_credentials (id, principal_id, kind, display_name, secret_hash, hint,
    thumbprint_sha1, thumbprint_sha256, certificate_der, expires_at, created_at)
    VALUES ('c1', 'p1', 'secret', 'default', HEX'010203', 'abc', NULL, NULL, NULL, 99, 4);
INSERT INTO federated_credentials (key, id, identity_key, name, issuer, subject, audiences,
    created_at)
    VALUES ('f1', 'F1', 'id-a', 'fic', 'https://issuer', 'sub', '["api://AzureADTokenExchange"]', 5);
INSERT INTO role_definitions (id, role_name, role_type, description, assignable_scopes,
    permissions, created_at, updated_at)
    VALUES ('r1', 'Reader', 'CustomRole', 'reads', '["/"]', '[]', 6, 7);
INSERT INTO role_assignments (key, id, name, scope, scope_key, role_definition_id, principal_id,
    principal_type, description, created_by, created_at, updated_at)
    VALUES ('/subscriptions/s1/a1', '/subscriptions/s1/A1', 'a1', '/subscriptions/S1',
    '/subscriptions/s1', 'r1', 'p1', 'ServicePrincipal', NULL, 'admin', 8, 9);
INSERT INTO signing_keys (kid, tenant_id, algorithm, private_key, certificate_der, created_at,
    signs_from, signs_until, published_until)
    VALUES ('kid1', 't1', 'RS256', HEX'0909', HEX'0707', 10, 11, NULL, 12);
INSERT INTO hosts (id, state, join_token_hash, join_token_expires_at, certificate_sha256,
    certificate_not_after, created_at, updated_at)
    VALUES ('local', 'active', NULL, NULL, 'ab', 13, 14, 15);
INSERT INTO vault_secrets (vault_key, name_key, name, current_version, deleted_at,
    scheduled_purge_at, created_at, updated_at)
    VALUES ('v1', 'db', 'DB', 'ver1', NULL, NULL, 16, 17);
INSERT INTO vault_secret_versions (vault_key, name_key, version, value, content_type, tags,
    enabled, not_before, expires, created_at, updated_at)
    VALUES ('v1', 'db', 'ver1', HEX'0a0b', 'text/plain', '{}', FALSE, NULL, 99, 16, 17);
INSERT INTO activity_events (event_data_id, subscription_id, resource_group_key, resource_key,
    correlation_id, status, timestamp, body)
    VALUES ('e1', 's1', 'rg', 'vm', 'c1', 'Succeeded', 18, '{"n":1}');
INSERT INTO sign_in_events (event_id, tenant_id, principal_id, app_id, result, timestamp, body)
    VALUES ('s-e1', 't1', 'p1', 'app1', 'Success', 19, '{"n":2}');
INSERT INTO used_assertions (jti_key, expires_at) VALUES ('jti1', 1000);
INSERT INTO job_leases (name, holder, expires_at) VALUES ('rotate', 'node-a', 1000);
"#;

fn fixture_rows(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => FIXTURE_ROWS.replace("HEX'", "X'"),
        Backend::Postgres => FIXTURE_ROWS.replace("HEX'", "'\\x"),
    }
}

async fn write_fixture_rows(db: &TestDatabase) {
    let rows = fixture_rows(db.backend);
    with_connection!(db, |conn| {
        sqlx::raw_sql(AssertSqlSafe(rows)).execute(&mut conn).await.unwrap();
    });
}

/// Every table of the store (the bookkeeping tables and SQLite's own aside) with its row count.
async fn row_counts(db: &TestDatabase) -> Vec<(String, i64)> {
    let catalogue = match db.backend {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() ORDER BY table_name"
        }
    };
    with_connection!(db, |conn| {
        let tables: Vec<String> = sqlx::query_scalar(catalogue).fetch_all(&mut conn).await.unwrap();
        let mut counts = Vec::new();
        for table in tables {
            if table.starts_with("sqlite_")
                || table == OLD_TABLE_NAME
                || table == "_sqlx_migrations"
            {
                continue;
            }
            let count: i64 =
                sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            counts.push((table, count));
        }
        // Sorted here: the catalogue's order follows the server's collation.
        counts.sort();
        counts
    })
}

const OLD_TABLE_NAME: &str = crate::migrate::OLD_TABLE;

/// The rows of `_sqlx_migrations`: version, checksum, success.
async fn sqlx_record(db: &TestDatabase) -> Vec<(i64, Vec<u8>, bool)> {
    with_connection!(db, |conn| {
        sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    })
}

/// The versions the previous runner recorded.
async fn old_record(db: &TestDatabase) -> Vec<i64> {
    with_connection!(db, |conn| {
        sqlx::query_scalar("SELECT version FROM ambient_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    })
}

/// What `migrator` records for each of its migrations once applied.
fn expected_record(migrator: &Migrator) -> Vec<(i64, Vec<u8>, bool)> {
    migrator.iter().map(|m| (m.version, m.checksum.to_vec(), true)).collect()
}

/// `base` plus one later migration, which creates and fills the table `later_probe`.
fn with_later_migration(base: &Migrator) -> Migrator {
    let mut migrations: Vec<Migration> = base.iter().cloned().collect();
    let version = migrations.last().expect("a history has migrations").version + 1;
    migrations.push(Migration::new(
        version,
        Cow::Borrowed("later probe"),
        MigrationType::Simple,
        "CREATE TABLE later_probe (id BIGINT PRIMARY KEY); INSERT INTO later_probe (id) VALUES (7);"
            .into_sql_str(),
        false,
    ));
    Migrator::with_migrations(migrations)
}

/// `base` with the text of its first migration changed by one comment line.
fn with_edited_first_migration(base: &Migrator) -> Migrator {
    let mut migrations: Vec<Migration> = base.iter().cloned().collect();
    let first = &migrations[0];
    let edited = format!("{}\n-- An innocent-looking edit.\n", first.sql.as_str());
    migrations[0] = Migration::new(
        first.version,
        first.description.clone(),
        first.migration_type,
        AssertSqlSafe(edited).into_sql_str(),
        first.no_tx,
    );
    Migrator::with_migrations(migrations)
}

/// Reads back, through the store, every fixture row in the shape the previous release wrote it.
async fn check_fixture_rows(store: &dyn Store) {
    let vm = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm";
    assert_eq!(store.get_setting("bootstrap").await.unwrap().as_deref(), Some("done"));
    assert_eq!(
        store.get_tenant("t1").await.unwrap(),
        Some(TenantRecord { id: "t1".into(), display_name: "Contoso".into(), created_at: 1 })
    );
    assert_eq!(store.get_subscription("s1").await.unwrap().unwrap().state, "Enabled");
    let resource = store.get_resource(vm).await.unwrap().expect("resource kept");
    assert_eq!(resource.user_identity_keys, ["id-a", "id-b"]);
    assert_eq!(resource.identity.as_deref(), Some(r#"{"type":"UserAssigned"}"#));
    assert_eq!((resource.version, resource.created_at, resource.updated_at), (3, 10, 20));
    assert_eq!(store.list_resources_holding_identity("id-b").await.unwrap(), [vm]);
    let principal = store.get_principal("p1").await.unwrap().expect("principal kept");
    assert!(principal.enabled);
    assert_eq!(principal.managed_by_key.as_deref(), Some(vm));
    let credentials = store.list_credentials("p1").await.unwrap();
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0].secret_hash.as_deref(), Some(&[1_u8, 2, 3][..]));
    assert_eq!(credentials[0].certificate_der, None);
    assert_eq!(
        store.get_federated_credential("f1").await.unwrap().unwrap().audiences,
        r#"["api://AzureADTokenExchange"]"#
    );
    assert_eq!(store.get_role_definition("r1").await.unwrap().unwrap().role_name, "Reader");
    let assignment = store.get_role_assignment("/subscriptions/s1/a1").await.unwrap().unwrap();
    assert_eq!(assignment.description, None);
    assert_eq!(assignment.created_by.as_deref(), Some("admin"));
    let keys = store.list_signing_keys("t1").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (&keys[0].private_key[..], &keys[0].certificate_der[..]),
        (&[9_u8, 9][..], &[7_u8, 7][..])
    );
    assert_eq!((keys[0].signs_until, keys[0].published_until), (None, Some(12)));
    let host = store.get_host("local").await.unwrap().unwrap();
    assert_eq!((host.join_token_hash, host.certificate_not_after), (None, Some(13)));
    assert_eq!(store.get_vault_secret("v1", "db").await.unwrap().unwrap().current_version, "ver1");
    let version = store.get_vault_secret_version("v1", "db", "ver1").await.unwrap().unwrap();
    assert!(!version.enabled);
    assert_eq!(version.value, [10_u8, 11]);
    assert_eq!(version.expires, Some(99));
    let events = EventFilter { partition: "s1".into(), limit: 10, ..EventFilter::default() };
    let activity = store.list_activity_events(&events).await.unwrap();
    assert_eq!(activity.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["e1"]);
    let sign_ins = EventFilter { partition: "t1".into(), limit: 10, ..EventFilter::default() };
    assert_eq!(store.list_sign_in_events(&sign_ins).await.unwrap()[0].body, r#"{"n":2}"#);
    assert!(!store.record_assertion_use("jti1", 1000, 500).await.unwrap(), "jti forgotten");
    assert!(!store.try_acquire_lease("rotate", "node-b", 500, 900).await.unwrap(), "lease lost");
}

/// Goal: a database the previous runner created keeps working, with all its data.
/// Method: migrate with a copy of that runner, write a row into every table with raw SQL, open
/// with the store (which adopts the runner's record), then again with a history that has a later
/// migration; compare every table's row count, read every row back, and check both bookkeeping
/// tables.
async fn old_runner_database_is_adopted(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    migrate_with_old_runner(&db).await;
    write_fixture_rows(&db).await;
    let counts = row_counts(&db).await;
    assert_eq!(counts.len(), 18, "{counts:?}");
    assert!(counts.iter().all(|(_, count)| *count > 0), "a table has no fixture row: {counts:?}");

    let store = db.open(db.history()).await.expect("open a database of the previous runner");
    check_fixture_rows(store.as_ref()).await;
    drop(store);
    assert_eq!(row_counts(&db).await, counts);
    assert_eq!(sqlx_record(&db).await, expected_record(db.history()));
    assert_eq!(old_record(&db).await, [1], "the previous runner's record is left as it was");

    let later = with_later_migration(db.history());
    let store = db.open(&later).await.expect("apply a later migration");
    check_fixture_rows(store.as_ref()).await;
    drop(store);
    let mut with_probe = counts.clone();
    with_probe.push(("later_probe".to_owned(), 1));
    with_probe.sort();
    assert_eq!(row_counts(&db).await, with_probe);
    assert_eq!(sqlx_record(&db).await, expected_record(&later));
    // Opening again finds nothing to do.
    db.open(&later).await.expect("reopen");
    assert_eq!(sqlx_record(&db).await, expected_record(&later));
}

/// Goal: the previous runner's record is adopted once, even when the first open stops half way.
/// Method: adopt, then open with a history whose later migration fails; the adoption stays, the
/// failed migration is not recorded, and a good history applies afterwards.
async fn failed_later_migration_keeps_the_adoption(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    migrate_with_old_runner(&db).await;
    let mut migrations: Vec<Migration> = db.history().iter().cloned().collect();
    let next = migrations.last().expect("a history has migrations").version + 1;
    migrations.push(Migration::new(
        next,
        Cow::Borrowed("broken"),
        MigrationType::Simple,
        "CREATE TABLE half (id BIGINT); SELECT * FROM no_such_table;".into_sql_str(),
        false,
    ));
    let broken = Migrator::with_migrations(migrations);
    let error = db.open(&broken).await.err().expect("a failing migration fails the open");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("database migration: migration {next} (broken) failed")),
        "{message}"
    );
    assert_eq!(sqlx_record(&db).await, expected_record(db.history()));
    assert!(row_counts(&db).await.iter().all(|(table, _)| table != "half"), "half applied");
    db.open(&with_later_migration(db.history())).await.expect("a good history applies");
}

/// Goal: an applied migration whose file was edited afterwards is refused, with a message that
/// says so, and the database is left alone.
/// Method: migrate with the real history, then open with the first file changed by a comment.
async fn edited_migration_is_refused(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    drop(db.open(db.history()).await.expect("fresh database"));
    let error = db.open(&with_edited_first_migration(db.history())).await.err().expect("refused");
    assert!(matches!(error, Error::Migration(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "database migration: migration 1 (initial) was changed after it was applied to this \
         database (its checksum differs); applied migrations must never be edited: restore the \
         file and put the change in a new migration"
    );
    assert_eq!(sqlx_record(&db).await, expected_record(db.history()));
    db.open(db.history()).await.expect("the unedited history still opens");
}

/// Goal: a database migrated by a newer build is refused, whichever runner recorded it.
/// Method: migrate with a history that has a later migration, then open with the real one; and
/// record an unknown version in the previous runner's table of another database.
async fn newer_database_is_refused(backend: Backend) {
    let known = SQLITE.iter().count();
    let expected = format!(
        "database migration: the database has migration {} applied, which this build does not \
         know (it knows up to {known}): the database is newer than this build; upgrade ambient",
        known + 1
    );
    let db = TestDatabase::new(backend).await;
    drop(db.open(&with_later_migration(db.history())).await.expect("newer history"));
    let error = db.open(db.history()).await.err().expect("a newer database is refused");
    assert_eq!(error.to_string(), expected);

    let db = TestDatabase::new(backend).await;
    migrate_with_old_runner(&db).await;
    with_connection!(db, |conn| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ambient_migrations VALUES ({}, 'from the future', 0)",
            known + 1
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    });
    let error = db.open(db.history()).await.err().expect("an unknown old version is refused");
    assert_eq!(error.to_string(), expected);
    let tables = with_connection!(db, |conn| {
        let exists: i64 = sqlx::query_scalar(match db.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_name = '_sqlx_migrations'"
            }
        })
        .fetch_one(&mut conn)
        .await
        .unwrap();
        exists
    });
    assert_eq!(tables, 0, "a refused adoption leaves no sqlx record behind");
}

/// One `#[tokio::test]` per check and backend: `sqlite::check` and `postgres::check`.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both_backends!(
    old_runner_database_is_adopted,
    failed_later_migration_keeps_the_adoption,
    edited_migration_is_refused,
    newer_database_is_refused,
);
