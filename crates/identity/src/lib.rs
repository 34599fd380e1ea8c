//! The `identity` crate.
