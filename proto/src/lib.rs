//! OTLP protobuf types for sluice. Re-exports the generated types of `opentelemetry-proto` (no
//! `protoc` needed: the crate ships generated code) under short module paths, so plugins write
//! `sluice_proto::trace::v1::Span`.
//!
//! [`loki`] holds Loki's push API (`logproto.PushRequest`), compiled at build time from the
//! vendored `loki/push.proto` (Apache-2.0, licence beside it) by protox, a protobuf compiler in
//! Rust: the build needs no system `protoc`.

pub use opentelemetry_proto::tonic::collector;
pub use opentelemetry_proto::tonic::common;
pub use opentelemetry_proto::tonic::logs;
pub use opentelemetry_proto::tonic::metrics;
pub use opentelemetry_proto::tonic::resource;
pub use opentelemetry_proto::tonic::trace;
pub use prost;
pub use prost::Message;

/// Loki's push API, package `logproto` of `pkg/push/push.proto`: what `POST /loki/api/v1/push`
/// takes as a snappy-compressed (block format) protobuf body. Timestamps are
/// [`prost_types::Timestamp`].
pub mod loki {
    #![allow(missing_docs, clippy::doc_lazy_continuation)]
    include!(concat!(env!("OUT_DIR"), "/logproto.rs"));
}
pub use prost_types;
