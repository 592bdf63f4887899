//! The `github` webhook receiver (being written).
