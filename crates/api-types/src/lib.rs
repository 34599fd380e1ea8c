//! The `api-types` crate.
