//! Benchmark placeholder: filled in with the summary plugin.

fn main() {}
