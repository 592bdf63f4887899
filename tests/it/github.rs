//! Integration tests for github (being written).
