//! OTLP/gRPC: the three `Export` methods served by tonic's unary machinery behind an axum
//! router, so gRPC runs on the project's one HTTP server helper (hyper detects HTTP/2).
//!
//! Two departures from tonic's generated servers, both for the OTLP spec: a request that is not
//! valid protobuf gets `INVALID_ARGUMENT` (tonic's prost codec says `INTERNAL`), and a message
//! over `max_recv_msg_size_mib` gets `RESOURCE_EXHAUSTED` (tonic says `OUT_OF_RANGE`). Only
//! signals some pipeline takes are routed; the others answer `UNIMPLEMENTED`, as the Collector
//! does.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use axum::response::IntoResponse;
use prost::bytes::Buf as _;
use sluice_proto::collector::logs::v1::ExportLogsServiceRequest;
use sluice_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use sluice_proto::collector::trace::v1::ExportTraceServiceRequest;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings};
use tonic::codegen::{Body, BoxFuture, Bytes, Service, StdError};
use tonic::{Code, Status};
use tonic_prost::ProstEncoder;

use super::receiver::{ExportRequest, Intake};

/// The gRPC router: one route per signal some pipeline takes, `UNIMPLEMENTED` for the rest.
pub(crate) fn router(intake: Intake, max_message_bytes: usize) -> axum::Router {
    let mut router = axum::Router::new();
    router = route::<ExportTraceServiceRequest>(router, &intake, max_message_bytes);
    router = route::<ExportMetricsServiceRequest>(router, &intake, max_message_bytes);
    router = route::<ExportLogsServiceRequest>(router, &intake, max_message_bytes);
    router.fallback(unimplemented)
}

fn route<R: ExportRequest>(
    router: axum::Router,
    intake: &Intake,
    max_message_bytes: usize,
) -> axum::Router {
    if !intake.serves(R::SIGNAL) {
        return router;
    }
    router.route_service(
        R::GRPC_PATH,
        GrpcExport::<R> {
            intake: intake.clone(),
            max_message_bytes,
            _request: PhantomData,
        },
    )
}

async fn unimplemented() -> axum::response::Response {
    Status::unimplemented("no pipeline of this receiver takes this service")
        .into_http::<axum::body::Body>()
        .into_response()
}

/// The `Export` method of one OTLP service.
struct GrpcExport<R> {
    intake: Intake,
    max_message_bytes: usize,
    _request: PhantomData<fn() -> R>,
}

impl<R> Clone for GrpcExport<R> {
    fn clone(&self) -> Self {
        GrpcExport {
            intake: self.intake.clone(),
            max_message_bytes: self.max_message_bytes,
            _request: PhantomData,
        }
    }
}

impl<R, B> Service<http::Request<B>> for GrpcExport<R>
where
    R: ExportRequest,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let mut gzip = EnabledCompressionEncodings::default();
            gzip.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(OtlpCodec::<R>(PhantomData))
                .apply_compression_config(gzip, gzip)
                .apply_max_message_size_config(Some(this.max_message_bytes), None);
            let intake = this.intake.clone();
            let mut response = grpc.unary(Unary::<R>(this), request).await;
            // Failures before the handler ran (size, decoding) come back trailers-only, with
            // the status in the headers.
            let code = response
                .headers()
                .get(Status::GRPC_STATUS)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map(Code::from_i32);
            match code {
                Some(Code::OutOfRange) => {
                    intake.count_bad_request();
                    response.headers_mut().insert(
                        Status::GRPC_STATUS,
                        http::HeaderValue::from(Code::ResourceExhausted as i32),
                    );
                }
                Some(Code::InvalidArgument) => intake.count_bad_request(),
                _ => {}
            }
            Ok(response)
        })
    }
}

/// The unary handler tonic calls with the decoded request.
struct Unary<R>(GrpcExport<R>);

impl<R: ExportRequest> tonic::server::UnaryService<R> for Unary<R> {
    type Response = R::Response;
    type Future = BoxFuture<tonic::Response<R::Response>, Status>;

    fn call(&mut self, request: tonic::Request<R>) -> Self::Future {
        let intake = self.0.intake.clone();
        Box::pin(async move {
            match intake.export(request.into_inner()).await {
                Ok(response) => Ok(tonic::Response::new(response)),
                Err(e) => {
                    // Bad input is counted by the service from the status, not here.
                    if !e.is_bad_request() {
                        intake.note_error("grpc", R::SIGNAL, &e);
                    }
                    Err(e.grpc_status())
                }
            }
        })
    }
}

/// tonic's prost codec, except that undecodable protobuf is `INVALID_ARGUMENT`.
struct OtlpCodec<R>(PhantomData<fn() -> R>);

impl<R: ExportRequest> Codec for OtlpCodec<R> {
    type Encode = R::Response;
    type Decode = R;
    type Encoder = ProstEncoder<R::Response>;
    type Decoder = OtlpDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        OtlpDecoder(PhantomData)
    }
}

struct OtlpDecoder<R>(PhantomData<fn() -> R>);

impl<R: ExportRequest> Decoder for OtlpDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        // The message is contiguous (tonic's buffer is one `BytesMut`): decoding from a slice
        // spares prost the `DecodeBuf` bookkeeping on every varint and field (~5 % of the
        // collector's CPU at 50k spans/s).
        let len = src.remaining();
        let decoded = if src.chunk().len() >= len {
            let decoded = R::decode(&src.chunk()[..len]);
            src.advance(len);
            decoded
        } else {
            R::decode(&mut *src)
        };
        decoded.map(Some).map_err(|e| {
            Status::invalid_argument(format!("cannot decode the protobuf export request: {e}"))
        })
    }
}
