//! The `ambient` binary.
fn main() {}
