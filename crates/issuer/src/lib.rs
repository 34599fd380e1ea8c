//! The `issuer` crate.
