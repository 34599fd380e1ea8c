//! The `rbac` crate.
