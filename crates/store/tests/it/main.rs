//! Store integration tests: one suite of checks run against both backends, and the crash test.
//!
//! The PostgreSQL run starts its own throwaway server (or uses `AMBIENT_TEST_DATABASE_URL`)
//! and fails, never skips, when it cannot.

mod crash;
mod suite;

use store::Store;

async fn open_sqlite(dir: &std::path::Path) -> Box<dyn Store> {
    let url = format!("sqlite://{}", dir.join("ambient.db").display());
    store::open(&url).await.expect("open sqlite store")
}

#[tokio::test]
async fn sqlite_backend_passes_the_suite() {
    let dir = tempdir();
    let store = open_sqlite(&dir).await;
    assert_eq!(store.backend(), "sqlite");
    suite::run_all(store.as_ref()).await;
    drop(store);
    // Opening again finds the schema current and the data intact.
    let reopened = open_sqlite(&dir).await;
    suite::check_survives_reopen(reopened.as_ref()).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn postgres_backend_passes_the_suite() {
    let server = test_postgres::PostgresServer::start().expect("start throwaway PostgreSQL");
    let name = test_postgres::PostgresServer::unique_database_name("store_suite");
    create_database(&server, &name).await;
    let url = server.database_url(&name);
    let store = store::open(&url).await.expect("open postgres store");
    assert_eq!(store.backend(), "postgres");
    suite::run_all(store.as_ref()).await;
    drop(store);
    let reopened = store::open(&url).await.expect("reopen postgres store");
    suite::check_survives_reopen(reopened.as_ref()).await;
}

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

async fn create_database(server: &test_postgres::PostgresServer, name: &str) {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(&server.admin_url()).await.expect("connect admin");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ambient-store-test-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
