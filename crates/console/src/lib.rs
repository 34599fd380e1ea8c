//! The `console` crate.
