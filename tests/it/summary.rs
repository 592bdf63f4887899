//! Integration tests for summary (being written).
