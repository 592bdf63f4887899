//! Integration tests for sli (being written).
