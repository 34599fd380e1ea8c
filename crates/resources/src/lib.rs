//! The `resources` crate.
