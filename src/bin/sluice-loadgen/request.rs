//! The export requests `send` generates, and the codec that sends them pre-encoded.

use prost::bytes::{BufMut, Bytes};
use prost::Message;
use sluice_proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use sluice_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};
use tonic::codec::{DecodeBuf, Decoder, EncodeBuf, Encoder};

/// The shape of the spans `send` generates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanShape {
    pub(crate) spans_per_request: usize,
    pub(crate) attributes: usize,
    pub(crate) attribute_bytes: usize,
}

fn string_attribute(key: String, value: String) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// Builds request number `variant`: its trace and span ids differ from every other variant's.
pub(crate) fn build_request(shape: SpanShape, variant: usize) -> ExportTraceServiceRequest {
    let base_nanos: u64 = 1_700_000_000_000_000_000;
    let fill = |seed: usize, len: usize| -> String {
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|i| char::from(alphabet[(seed * 7 + i * 13) % alphabet.len()]))
            .collect()
    };
    let spans = (0..shape.spans_per_request)
        .map(|i| {
            let unique = (variant as u64) << 32 | i as u64;
            let mut trace_id = Vec::with_capacity(16);
            trace_id.extend_from_slice(&0x5107_1ce0_u64.to_be_bytes());
            trace_id.extend_from_slice(&(unique / 10).to_be_bytes());
            let start = base_nanos + (i as u64) * 1_000_000;
            Span {
                trace_id,
                span_id: (unique + 1).to_be_bytes().to_vec(),
                parent_span_id: if i % 10 == 0 {
                    Vec::new()
                } else {
                    (unique - (i as u64 % 10) + 1).to_be_bytes().to_vec()
                },
                name: format!("op-{}", i % 16),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 250_000,
                attributes: (0..shape.attributes)
                    .map(|a| {
                        string_attribute(format!("attr.{a}"), fill(i + a, shape.attribute_bytes))
                    })
                    .collect(),
                status: Some(Status {
                    code: status::StatusCode::Ok as i32,
                    message: String::new(),
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string_attribute("service.name".into(), "sluice-loadgen".into()),
                    string_attribute("service.instance.id".into(), format!("instance-{variant}")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "sluice-loadgen".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Sends bytes that are already an encoded `ExportTraceServiceRequest`; decodes the response.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PreEncodedCodec;

pub(crate) struct PreEncodedEncoder;
pub(crate) struct ResponseDecoder;

impl tonic::codec::Codec for PreEncodedCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PreEncodedEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncodedEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

impl Encoder for PreEncodedEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("cannot decode the export response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_request_is_about_400_bytes_per_span() {
        let shape = SpanShape {
            spans_per_request: 100,
            attributes: 10,
            attribute_bytes: 20,
        };
        let request = build_request(shape, 0);
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 100);
        assert_eq!(spans[0].attributes.len(), 10);
        let per_span = request.encoded_len() as f64 / 100.0;
        assert!((360.0..=440.0).contains(&per_span), "{per_span} B per span");
    }

    #[test]
    fn request_variants_have_distinct_ids() {
        let shape = SpanShape {
            spans_per_request: 10,
            attributes: 1,
            attribute_bytes: 4,
        };
        let a = build_request(shape, 0);
        let b = build_request(shape, 1);
        let ids = |r: &ExportTraceServiceRequest| -> Vec<Vec<u8>> {
            r.resource_spans[0].scope_spans[0]
                .spans
                .iter()
                .map(|s| s.span_id.clone())
                .collect()
        };
        assert!(ids(&a).iter().all(|id| !ids(&b).contains(id)));
        let mut within = ids(&a);
        within.dedup();
        assert_eq!(within.len(), 10);
    }
}
