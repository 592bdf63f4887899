//! Integration tests for sqlite (being written).
