//! The `summary` exporter (being written).
