//! OTLP protobuf types for sluice. Re-exports the generated types of `opentelemetry-proto` (no
//! `protoc` needed: the crate ships generated code) under short module paths, so plugins write
//! `sluice_proto::trace::v1::Span`.

pub use opentelemetry_proto::tonic::collector;
pub use opentelemetry_proto::tonic::common;
pub use opentelemetry_proto::tonic::logs;
pub use opentelemetry_proto::tonic::metrics;
pub use opentelemetry_proto::tonic::resource;
pub use opentelemetry_proto::tonic::trace;
pub use prost;
pub use prost::Message;
