//! The `abacus` binary: serves the math agent.

fn main() {}
