//! The migration histories, one per dialect, embedded in the binary.
//!
//! Each history is a list of numbered SQL files applied in order, each in its own transaction,
//! and recorded in `ambient_migrations`. The two lists must stay parallel: same versions, same
//! descriptions (a test checks it). Later changes to the schema are new files, never edits.

pub(crate) struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[Migration {
    version: 1,
    description: "initial",
    sql: include_str!("../migrations/sqlite/0001_initial.sql"),
}];

pub(crate) const POSTGRES: &[Migration] = &[Migration {
    version: 1,
    description: "initial",
    sql: include_str!("../migrations/postgres/0001_initial.sql"),
}];

pub(crate) const BOOKKEEPING_TABLE: &str = "CREATE TABLE IF NOT EXISTS ambient_migrations (\
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)";

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(SQLITE.len(), POSTGRES.len());
        for (sqlite, postgres) in SQLITE.iter().zip(POSTGRES) {
            assert_eq!(sqlite.version, postgres.version);
            assert_eq!(sqlite.description, postgres.description);
        }
        assert_eq!(files_in("sqlite"), files_in("postgres"));
    }

    #[test]
    fn every_file_is_listed_in_order() {
        let files = files_in("sqlite");
        assert_eq!(files.len(), SQLITE.len());
        for (index, (file, migration)) in files.iter().zip(SQLITE).enumerate() {
            assert_eq!(migration.version, index as i64 + 1);
            assert_eq!(file, &format!("{:04}_{}.sql", migration.version, migration.description));
        }
    }
}
