//! The `sli` processor (being written).
