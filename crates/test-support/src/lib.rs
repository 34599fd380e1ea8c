//! The `test-support` crate.
