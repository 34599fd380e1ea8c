//! The `crypto` crate.
