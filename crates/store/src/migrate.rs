//! The migration histories, one per dialect, embedded in the binary with their checksums by
//! `sqlx::migrate!`, and the adoption of databases migrated before sqlx ran the migrations.
//!
//! Each history is a list of numbered SQL files, `migrations/{sqlite,postgres}/NNNN_name.sql`,
//! that sqlx applies in order, each in its own transaction, recording its SHA-384 checksum in
//! `_sqlx_migrations`. On every open sqlx compares the recorded checksums with the embedded files
//! and refuses a database whose applied migration has since been edited
//! ([`crate::Error::Migration`]): later changes to the schema are new files, never edits. The two
//! histories must stay parallel: same versions, same descriptions (a test checks it). `build.rs`
//! makes cargo rebuild the crate when a migration file is added.
//!
//! Before sqlx, the store's own runner recorded applied versions in `ambient_migrations`
//! (version, description, time; no checksum). The first open of such a database records those
//! versions in `_sqlx_migrations`, with the checksums of the embedded files (the very files that
//! runner applied, since applied files never change), in one transaction, and then lets sqlx
//! apply what is missing. `ambient_migrations` is left as it was, so a server of the previous
//! release restarting against a shared PostgreSQL database during a rolling upgrade still finds
//! its record.

use sqlx::migrate::{MigrateError, Migration, Migrator};

use crate::Error;

/// The SQLite history, `migrations/sqlite`.
pub(crate) static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL history, `migrations/postgres`.
pub(crate) static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// sqlx's bookkeeping table (its default name, which the migrators keep).
pub(crate) const TABLE: &str = "_sqlx_migrations";

/// The bookkeeping table of the runner the store had before sqlx's.
pub(crate) const OLD_TABLE: &str = "ambient_migrations";

/// The migrations to record as applied in a database that the old runner migrated to the
/// `applied` versions.
///
/// Fails when the database lists a version this build does not have: it is newer than this build.
pub(crate) fn adopted<'m>(
    migrator: &'m Migrator,
    applied: &[i64],
) -> crate::Result<Vec<&'m Migration>> {
    applied
        .iter()
        .map(|version| {
            migrator
                .iter()
                .find(|migration| migration.version == *version)
                .ok_or_else(|| newer_than_build(*version, migrator))
        })
        .collect()
}

/// Turns sqlx's migration error into one the operator can act on.
pub(crate) fn error(error: MigrateError, migrator: &Migrator) -> Error {
    match error {
        MigrateError::Execute(error) => Error::from(error),
        MigrateError::VersionMismatch(version) => Error::Migration(format!(
            "migration {} was changed after it was applied to this database (its checksum \
             differs); applied migrations must never be edited: restore the file and put the \
             change in a new migration",
            describe(version, migrator)
        )),
        MigrateError::VersionMissing(version) => newer_than_build(version, migrator),
        MigrateError::ExecuteMigration(error, version) => {
            Error::Migration(format!("migration {} failed: {error}", describe(version, migrator)))
        }
        other => Error::Migration(other.to_string()),
    }
}

/// `1 (initial)`: a version with the description of its file.
fn describe(version: i64, migrator: &Migrator) -> String {
    match migrator.iter().find(|migration| migration.version == version) {
        Some(migration) => format!("{version} ({})", migration.description),
        None => version.to_string(),
    }
}

fn newer_than_build(version: i64, migrator: &Migrator) -> Error {
    let known = migrator.iter().map(|migration| migration.version).max().unwrap_or(0);
    Error::Migration(format!(
        "the database has migration {version} applied, which this build does not know (it knows \
         up to {known}): the database is newer than this build; upgrade ambient"
    ))
}

#[cfg(test)]
mod tests;
