//! The `sqlite` exporter (being written).
