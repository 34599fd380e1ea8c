//! The multi-node backend: PostgreSQL, shared by any number of servers.
//!
//! Migrations run under a session advisory lock so that servers starting together adopt the
//! previous runner's record and apply each migration once (sqlx's migrator takes its own lock
//! too, under another key). Unique violations surface as `Error::Conflict`.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

/// Advisory lock key held while migrating ("ambient" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0061_6d62_6965_6e74;

/// Counts the tables named `$1` in the schema the store uses.
const TABLE_EXISTS: &str = "SELECT COUNT(*) FROM information_schema.tables \
     WHERE table_schema = current_schema() AND table_name = $1";

/// A [`crate::Store`] on PostgreSQL.
pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://...` and migrates the database.
    pub async fn open(database_url: &str) -> crate::Result<Self> {
        Self::open_with(database_url, &crate::migrate::POSTGRES).await
    }

    /// Connects and migrates the database with `migrator` (tests bring their own histories).
    pub(crate) async fn open_with(
        database_url: &str,
        migrator: &sqlx::migrate::Migrator,
    ) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // A database that is down answers within this, so no request hangs on it: callers
            // turn `Unavailable` into 503 with `Retry-After`.
            .acquire_timeout(Duration::from_secs(3))
            .connect(database_url)
            .await
            .map_err(|error| match error {
                sqlx::Error::Configuration(inner) => {
                    crate::Error::Config(format!("{}: {inner}", crate::redact_url(database_url)))
                }
                sqlx::Error::Database(db) => crate::Error::Config(format!(
                    "{}: {}",
                    crate::redact_url(database_url),
                    db.message()
                )),
                other => crate::Error::Unavailable(other),
            })?;
        let mut lock_conn = pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *lock_conn)
            .await?;
        let migrated = run_migrations(&pool, migrator, TABLE_EXISTS).await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *lock_conn)
            .await?;
        migrated?;
        Ok(PostgresStore { pool })
    }

    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

crate::sql::store_impl!(PostgresStore, sqlx::Postgres, "postgres");
