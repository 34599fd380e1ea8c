//! Rebuilds the crate when a migration file is added or removed: `sqlx::migrate!` embeds the
//! files, but the compiler only watches the ones that existed at the last build.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
