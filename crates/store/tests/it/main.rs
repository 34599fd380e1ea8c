//! Store integration tests: every check of `suite` runs as a test of its own on each backend
//! (`sqlite::leases_expire`, `postgres::leases_expire`, ...), beside the crash test and the
//! connection errors.
//!
//! Each test gets a database of its own. The PostgreSQL tests share one throwaway server per test
//! binary (`PostgresServer::shared`, or the server `AMBIENT_TEST_DATABASE_URL` names), and fail,
//! never skip, when it cannot be started.

mod crash;
mod suite;

use std::path::PathBuf;

use store::Store;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store opened on a fresh database of its own.
pub struct TestStore {
    backend: Backend,
    url: String,
    /// The SQLite file's directory, removed on drop.
    dir: Option<PathBuf>,
    store: Box<dyn Store>,
}

impl TestStore {
    /// Creates an empty database on `backend` and opens the store on it (which migrates it).
    pub async fn open(backend: Backend) -> Self {
        let (url, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempdir();
                (format!("sqlite://{}", dir.join("ambient.db").display()), Some(dir))
            }
            Backend::Postgres => (create_postgres_database("store_suite").await, None),
        };
        let store = open_url(backend, &url).await;
        TestStore { backend, url, dir, store }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Closes the store and opens it again on the same database.
    pub async fn reopen(mut self) -> Self {
        let store = open_url(self.backend, &self.url).await;
        drop(std::mem::replace(&mut self.store, store));
        self
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

async fn open_url(backend: Backend, url: &str) -> Box<dyn Store> {
    let store = store::open(url).await.expect("open store");
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(store.backend(), expected);
    store
}

/// Creates a database on the shared throwaway PostgreSQL server and returns its URL.
async fn create_postgres_database(prefix: &str) -> String {
    use sqlx::Connection as _;
    let server = test_postgres::PostgresServer::shared().expect("start throwaway PostgreSQL");
    let name = test_postgres::PostgresServer::unique_database_name(prefix);
    let mut admin = sqlx::PgConnection::connect(&server.admin_url()).await.expect("connect admin");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    server.database_url(&name)
}

/// One `#[tokio::test]` per check and backend, named `sqlite::check` and `postgres::check`. Each
/// check is an `async fn(TestStore)` in `suite`.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    crate::suite::$check(crate::TestStore::open(crate::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    crate::suite::$check(crate::TestStore::open(crate::Backend::Postgres).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    answers_ping,
    tenants_and_subscriptions,
    settings_are_replaced,
    resource_writes_are_conditional,
    resources_list_by_filter_and_page,
    deleting_a_principal_cascades,
    role_assignments_by_principal_and_scope,
    apply_is_all_or_nothing,
    state_changes_bump_the_change_counter,
    events_append_and_page,
    aggregated_events_count_into_one_row,
    events_are_pruned_by_age_then_by_count,
    assertion_replays_are_refused,
    leases_expire,
    signing_keys_rotate_and_hide_private_keys,
    hosts_are_replaced,
    vault_secrets_version_delete_and_purge,
    data_survives_reopen,
);

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error() {
    // Port 1 on loopback has no server; the error must say the database is unavailable.
    let error = match store::open("postgres://nobody:pw@127.0.0.1:1/x").await {
        Ok(_) => panic!("connecting to a closed port succeeded"),
        Err(error) => error.to_string(),
    };
    assert!(error.starts_with("database unavailable"), "{error}");
    assert!(!error.contains("pw@"), "password leaked: {error}");
}

#[tokio::test]
async fn unknown_scheme_is_a_configuration_error() {
    let error =
        store::open("mysql://u:secret@h/db").await.err().expect("mysql is refused").to_string();
    assert!(error.contains("unsupported database url"), "{error}");
    assert!(!error.contains("secret"), "password leaked: {error}");
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ambient-store-test-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
