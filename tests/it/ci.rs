//! Integration tests for ci (being written).
