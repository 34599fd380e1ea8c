//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`, so every
//! acknowledged commit is on disk before `apply` returns.
//!
//! Writers are serialised in-process by a mutex: SQLite allows one writer at a time anyway, and
//! taking turns here avoids `SQLITE_BUSY` on lock upgrades. Readers run concurrently.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Kibibytes of page cache per connection (see `open_with`).
const PAGE_CACHE_KIB: u32 = 512;

/// Counts the tables named `$1`.
const TABLE_EXISTS: &str = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1";

/// A [`crate::Store`] on SQLite.
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    write_lock: tokio::sync::Mutex<()>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `sqlite://PATH` and migrates it.
    pub async fn open(database_url: &str) -> crate::Result<Self> {
        Self::open_with(database_url, &crate::migrate::SQLITE).await
    }

    /// Opens the database and migrates it with `migrator` (tests bring their own histories).
    pub(crate) async fn open_with(
        database_url: &str,
        migrator: &sqlx::migrate::Migrator,
    ) -> crate::Result<Self> {
        let options = SqliteConnectOptions::from_str(database_url)
            .map_err(|error| crate::Error::Config(format!("{database_url}: {error}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Each connection's page cache: SQLite's default is 2,000 KiB, which the four
            // connections fill over minutes of load to 8 MiB above the idle footprint (1 MiB
            // each still took five minutes of the soak to fill, 4 MiB). In WAL mode a connection
            // drops its cache whenever another connection has committed, so under writes a
            // larger cache rarely serves a second read, and the operating system's page cache
            // holds the file anyway; 512 KiB (128 pages) keeps the upper levels of the indexes
            // a look-up walks, and the growth bench's costs at 1,000,000 rows did not move.
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|error| match error {
                sqlx::Error::Database(db) => {
                    crate::Error::Config(format!("cannot open {database_url}: {}", db.message()))
                }
                other => crate::Error::from(other),
            })?;
        let store = SqliteStore { pool, write_lock: tokio::sync::Mutex::new(()) };
        {
            let _guard = store.write_guard().await;
            run_migrations(&store.pool, migrator, TABLE_EXISTS).await?;
        }
        Ok(store)
    }

    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.write_lock.lock().await)
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

crate::sql::store_impl!(SqliteStore, sqlx::Sqlite, "sqlite");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_pooled_connection_has_the_bounded_page_cache() {
        let dir = std::env::temp_dir().join(format!(
            "ambient-store-cache-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("ambient.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        // Hold every connection of the pool at once, so each is asked.
        let mut connections = Vec::new();
        for _ in 0..4 {
            connections.push(store.pool.acquire().await.unwrap());
        }
        for connection in &mut connections {
            let (pages,): (i64,) =
                sqlx::query_as("PRAGMA cache_size").fetch_one(&mut **connection).await.unwrap();
            assert_eq!(pages, -i64::from(PAGE_CACHE_KIB), "negative: a size in KiB");
        }
        drop(connections);
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
