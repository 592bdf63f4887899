//! OTLP/HTTP: `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with a protobuf or JSON body, gzip
//! or not. Answers in the request's encoding: `200` with an `Export*ServiceResponse`, or an
//! error status with a `google.rpc.Status` body (`400` malformed, `413` too large, `415` wrong
//! content type, `503` + `Retry-After: 1` when a pipeline is full). A signal no pipeline takes
//! is not routed (`404`), as in the Collector.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sluice_proto::collector::logs::v1::ExportLogsServiceRequest;
use sluice_proto::collector::metrics::v1::ExportMetricsServiceRequest;
use sluice_proto::collector::trace::v1::ExportTraceServiceRequest;

use super::decode::{decode_request, decompress, encode_message, Encoding};
use super::error::{OtlpReceiverError, Result, RpcStatus};
use super::receiver::{ExportRequest, Intake};

#[derive(Clone)]
struct HttpState {
    intake: Intake,
    max_body_bytes: usize,
}

/// The HTTP router: one route per signal some pipeline takes.
pub(crate) fn router(intake: Intake, max_body_bytes: usize) -> axum::Router {
    let state = HttpState {
        intake,
        max_body_bytes,
    };
    let mut router = axum::Router::new();
    router = route::<ExportTraceServiceRequest>(router, &state);
    router = route::<ExportMetricsServiceRequest>(router, &state);
    router = route::<ExportLogsServiceRequest>(router, &state);
    router.with_state(state)
}

fn route<R: ExportRequest>(
    router: axum::Router<HttpState>,
    state: &HttpState,
) -> axum::Router<HttpState> {
    if state.intake.serves(R::SIGNAL) {
        router.route(R::HTTP_PATH, post(export::<R>))
    } else {
        router
    }
}

async fn export<R: ExportRequest>(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let encoding = match Encoding::from_content_type(text(header::CONTENT_TYPE)) {
        Ok(e) => e,
        // The error body is JSON: the request's encoding is unknown.
        Err(e) => return failure::<R>(&state, Encoding::Json, e),
    };
    let content_encoding = text(header::CONTENT_ENCODING).map(str::to_string);
    let result = async {
        let raw = read_limited(&headers, body, state.max_body_bytes).await?;
        let plain = decompress(raw, content_encoding.as_deref(), state.max_body_bytes)?;
        let request: R = decode_request(&plain, encoding)?;
        state.intake.export(request).await
    }
    .await;
    match result {
        Ok(response) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoding.content_type())],
            encode_message(&response, encoding),
        )
            .into_response(),
        Err(e) => failure::<R>(&state, encoding, e),
    }
}

fn failure<R: ExportRequest>(
    state: &HttpState,
    encoding: Encoding,
    error: OtlpReceiverError,
) -> Response {
    state.intake.note_error("http", R::SIGNAL, &error);
    let body = encode_message(&RpcStatus::from(&error), encoding);
    let mut response = (
        error.http_status(),
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response();
    if error.http_status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// [`sluice_pipeline::http::read_limited`] with its refusals as OTLP errors (`413`, `400`).
async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes> {
    use sluice_pipeline::http::BodyError;
    sluice_pipeline::http::read_limited(headers, body, limit)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { limit } => OtlpReceiverError::TooLarge { limit },
            BodyError::Read(message) => OtlpReceiverError::Body(message),
        })
}
