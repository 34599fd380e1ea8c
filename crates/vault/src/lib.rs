//! The `vault` crate.
