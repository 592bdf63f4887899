//! Benchmark placeholder: filled in with the sqlite plugin.

fn main() {}
