//! Benchmark placeholder: filled in with the github plugin.

fn main() {}
