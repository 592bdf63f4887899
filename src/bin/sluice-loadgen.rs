//! `sluice-loadgen`: an OTLP/gRPC load generator and a counting sink, for benchmarks.
//!
//! - `send` drives `TraceService/Export` at a collector (or straight at a sink): N connections, M
//!   requests in flight on each, optional gzip, an optional target rate, bounded by a span count
//!   and/or a duration. Requests are built and encoded once (a few distinct ones, ids varied) and
//!   sent as pre-encoded bytes, so the generator spends its time on the wire, not on building.
//!   It reports requests/spans sent, acked and failed (by gRPC status), acked spans/s and the
//!   per-request export latency p50/p99/max.
//! - `sink` is an OTLP/gRPC server (traces, metrics, logs; gzip accepted) that decodes every
//!   request, as a collector's next hop would, and counts spans, data points and log records. It
//!   prints `listening on ADDR` first, and a report when it stops (`--expect`, `--duration`,
//!   `--idle-exit`, SIGINT or SIGTERM).
//!
//! Both default to 127.0.0.1 and always stop by themselves. `--json` prints the final report as
//! one JSON object on stdout; progress lines (`--progress`) go to stderr.
//!
//! ```text
//! sluice-loadgen sink --listen 127.0.0.1:4318 --idle-exit 5s --json &
//! sluice-loadgen send --endpoint http://127.0.0.1:4318 --rate 50000 --duration 10s --json
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use prost::bytes::{BufMut, Bytes};
use prost::Message;
use sluice_proto::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use sluice_proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use sluice_proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use sluice_proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use sluice_proto::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use sluice_proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use sluice_proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sluice_proto::metrics::v1::metric;
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};
use tonic::codec::{CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

/// How many distinct requests `send` builds and cycles through.
const DISTINCT_REQUESTS: usize = 8;
/// The largest message the sink accepts (a batch of 8192 spans of ~400 B is ~3.3 MB, close to
/// tonic's 4 MiB default).
const SINK_MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
const TRACE_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Parser, Debug)]
#[command(
    name = "sluice-loadgen",
    version,
    about = "OTLP/gRPC load generator and counting sink for benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send OTLP/gRPC trace export requests and report throughput and latency.
    Send(SendArgs),
    /// Receive OTLP/gRPC (traces, metrics, logs), decode and count, then report.
    Sink(SinkArgs),
}

#[derive(Args, Debug, Clone)]
struct SendArgs {
    /// OTLP/gRPC endpoint to export to.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// Connections (one HTTP/2 channel each).
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Spans per export request.
    #[arg(long, default_value_t = 100)]
    spans_per_request: usize,
    /// String attributes per span.
    #[arg(long, default_value_t = 10)]
    attributes: usize,
    /// Bytes of each attribute value (the default makes a span ~400 B encoded).
    #[arg(long, default_value_t = 20)]
    attribute_bytes: usize,
    /// Compress requests with gzip.
    #[arg(long)]
    gzip: bool,
    /// Target spans per second over all connections; 0 sends as fast as acks allow.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Stop after this many spans (rounded up to whole requests).
    #[arg(long)]
    count: Option<u64>,
    /// Stop issuing requests after this long (e.g. 10s, 500ms, 2m). Default 10s when no --count.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Per-request deadline.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Print a progress line to stderr every second.
    #[arg(long)]
    progress: bool,
    /// Print the final report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug, Clone)]
struct SinkArgs {
    /// Address to listen on (port 0 picks a free one; the first stdout line names it).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Exit once this many spans have arrived.
    #[arg(long)]
    expect: Option<u64>,
    /// Exit after this long in any case.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    duration: Duration,
    /// Exit when nothing has arrived for this long, counted from the first request.
    #[arg(long, value_parser = parse_duration)]
    idle_exit: Option<Duration>,
    /// Print a progress line to stderr every second.
    #[arg(long)]
    progress: bool,
    /// Print the final report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Parses `10s`, `250ms`, `2m`, `1h`, `1.5s` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: expected e.g. 10s, 500ms, 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`: use ms, s, m or h"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sluice-loadgen: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Send(args) => runtime.block_on(send(args)),
        Command::Sink(args) => runtime.block_on(sink(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sluice-loadgen: {message}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Latency histogram
// ---------------------------------------------------------------------------------------------

/// Sub-buckets per power of two: values are kept to within 1/16 (6.25 %).
const SUB_BUCKET_BITS: u32 = 4;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;

/// A lock-free log-linear histogram of microseconds, shared by all senders.
struct LatencyHistogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    max: AtomicU64,
}

impl LatencyHistogram {
    fn new() -> Self {
        let len = Self::index(u64::MAX) + 1;
        Self {
            buckets: (0..len).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    fn index(value: u64) -> usize {
        if value < SUB_BUCKETS {
            return value as usize;
        }
        let msb = 63 - value.leading_zeros();
        let shift = msb - SUB_BUCKET_BITS;
        ((u64::from(shift) + 1) * SUB_BUCKETS + ((value >> shift) & (SUB_BUCKETS - 1))) as usize
    }

    /// The largest value that falls in bucket `index`.
    fn upper_bound(index: usize) -> u64 {
        let index = index as u64;
        if index < SUB_BUCKETS {
            return index;
        }
        let shift = index / SUB_BUCKETS - 1;
        let sub = index % SUB_BUCKETS;
        let low = (SUB_BUCKETS + sub) << shift;
        low + ((1u64 << shift) - 1)
    }

    fn record(&self, micros: u64) {
        self.buckets[Self::index(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// The value at quantile `q` (0..=1), as its bucket's upper bound capped at the exact max.
    fn quantile(&self, q: f64) -> u64 {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return 0;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return Self::upper_bound(index).min(self.max());
            }
        }
        self.max()
    }

    fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// Request building
// ---------------------------------------------------------------------------------------------

/// The shape of the spans `send` generates.
#[derive(Debug, Clone, Copy)]
struct SpanShape {
    spans_per_request: usize,
    attributes: usize,
    attribute_bytes: usize,
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
fn build_request(shape: SpanShape, variant: usize) -> ExportTraceServiceRequest {
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
struct PreEncodedCodec;

struct PreEncodedEncoder;
struct ResponseDecoder;

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

// ---------------------------------------------------------------------------------------------
// send
// ---------------------------------------------------------------------------------------------

/// Counters shared by all sending tasks.
struct SendStats {
    requests_sent: AtomicU64,
    spans_sent: AtomicU64,
    requests_acked: AtomicU64,
    spans_acked: AtomicU64,
    spans_rejected: AtomicU64,
    requests_failed: AtomicU64,
    spans_failed: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    latency: LatencyHistogram,
}

impl SendStats {
    fn new() -> Self {
        Self {
            requests_sent: AtomicU64::new(0),
            spans_sent: AtomicU64::new(0),
            requests_acked: AtomicU64::new(0),
            spans_acked: AtomicU64::new(0),
            spans_rejected: AtomicU64::new(0),
            requests_failed: AtomicU64::new(0),
            spans_failed: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            latency: LatencyHistogram::new(),
        }
    }

    fn fail(&self, spans: u64, reason: String) {
        self.requests_failed.fetch_add(1, Ordering::Relaxed);
        self.spans_failed.fetch_add(spans, Ordering::Relaxed);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        *failures.entry(reason).or_default() += 1;
    }
}

/// What each sending task shares: the requests, the limits, the counters.
struct SendPlan {
    requests: Vec<Bytes>,
    spans_per_request: u64,
    /// Requests to issue in total (from `--count`), or `u64::MAX`.
    request_budget: u64,
    deadline: Option<Instant>,
    /// Interval between two requests of one task when a rate is set.
    task_period: Option<Duration>,
    timeout: Duration,
    issued: AtomicU64,
    stats: SendStats,
}

impl SendPlan {
    /// Claims the next request to send, or `None` when the count or the duration is used up.
    fn claim(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        (n < self.request_budget).then_some(n)
    }
}

async fn send(args: SendArgs) -> Result<(), String> {
    if args.connections == 0 || args.in_flight == 0 || args.spans_per_request == 0 {
        return Err("--connections, --in-flight and --spans-per-request must be at least 1".into());
    }
    let duration = match (args.count, args.duration) {
        (None, None) => Some(Duration::from_secs(10)),
        (_, d) => d,
    };
    let shape = SpanShape {
        spans_per_request: args.spans_per_request,
        attributes: args.attributes,
        attribute_bytes: args.attribute_bytes,
    };
    let requests: Vec<Bytes> = (0..DISTINCT_REQUESTS)
        .map(|v| Bytes::from(build_request(shape, v).encode_to_vec()))
        .collect();
    let request_bytes = requests[0].len();
    let spans_per_request = args.spans_per_request as u64;
    let request_budget = args
        .count
        .map(|c| c.div_ceil(spans_per_request))
        .unwrap_or(u64::MAX);
    let tasks = args.connections * args.in_flight;
    // Each task sends one request every `task_period`, so all together make `rate` spans/s.
    let task_period = (args.rate > 0).then(|| {
        Duration::from_secs_f64(tasks as f64 * spans_per_request as f64 / args.rate as f64)
    });

    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let endpoint = Endpoint::from_shared(args.endpoint.clone())
            .map_err(|e| format!("--endpoint {}: {e}", args.endpoint))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5));
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", args.endpoint))?;
        channels.push(channel);
    }

    let started = Instant::now();
    let plan = Arc::new(SendPlan {
        requests,
        spans_per_request,
        request_budget,
        deadline: duration.map(|d| started + d),
        task_period,
        timeout: args.timeout,
        issued: AtomicU64::new(0),
        stats: SendStats::new(),
    });
    eprintln!(
        "sending to {}: {} connections x {} in flight, {} spans/request ({} B encoded{}), rate {}, {}",
        args.endpoint,
        args.connections,
        args.in_flight,
        spans_per_request,
        request_bytes,
        if args.gzip { ", gzip" } else { "" },
        if args.rate == 0 { "unlimited".to_string() } else { format!("{} spans/s", args.rate) },
        match (args.count, duration) {
            (Some(c), Some(d)) => format!("until {c} spans or {d:?}"),
            (Some(c), None) => format!("until {c} spans"),
            (None, Some(d)) => format!("for {d:?}"),
            (None, None) => String::new(),
        }
    );

    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks {
        let channel = channels[task % channels.len()].clone();
        let plan = Arc::clone(&plan);
        let gzip = args.gzip;
        // Spread the tasks' first sends over one period so a rate is paced evenly.
        let offset = task_period.map(|p| p.mul_f64(task as f64 / tasks as f64));
        handles.push(tokio::spawn(send_loop(channel, plan, gzip, task, offset)));
    }

    let done = Arc::new(AtomicBool::new(false));
    let progress = args.progress.then(|| {
        let plan = Arc::clone(&plan);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.tick().await;
            let mut last_acked = 0;
            while !done.load(Ordering::Relaxed) {
                ticker.tick().await;
                let s = &plan.stats;
                let acked = s.spans_acked.load(Ordering::Relaxed);
                eprintln!(
                    "[{:>5.1}s] acked {} spans/s, total sent {} acked {} failed {}",
                    started.elapsed().as_secs_f64(),
                    acked - last_acked,
                    s.spans_sent.load(Ordering::Relaxed),
                    acked,
                    s.spans_failed.load(Ordering::Relaxed),
                );
                last_acked = acked;
            }
        })
    });

    for handle in handles {
        handle
            .await
            .map_err(|e| format!("a sending task failed: {e}"))?;
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    if let Some(progress) = progress {
        progress.abort();
    }

    let report = SendReport::from_stats(&plan.stats, elapsed, request_bytes);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

async fn send_loop(
    channel: Channel,
    plan: Arc<SendPlan>,
    gzip: bool,
    task: usize,
    offset: Option<Duration>,
) {
    let mut grpc = tonic::client::Grpc::new(channel);
    if gzip {
        grpc = grpc
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);
    }
    let path = PathAndQuery::from_static(TRACE_EXPORT_PATH);
    let mut pacer = plan.task_period.map(|period| {
        let start = tokio::time::Instant::now() + offset.unwrap_or_default();
        let mut interval = tokio::time::interval_at(start, period);
        // Catch up after a slow ack, so the achieved rate is the target while capacity allows.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        interval
    });
    let stats = &plan.stats;
    loop {
        if let Some(pacer) = pacer.as_mut() {
            pacer.tick().await;
        }
        let Some(n) = plan.claim() else { break };
        let body = plan.requests[(n as usize + task) % plan.requests.len()].clone();
        let spans = plan.spans_per_request;
        stats.requests_sent.fetch_add(1, Ordering::Relaxed);
        stats.spans_sent.fetch_add(spans, Ordering::Relaxed);
        let sent_at = Instant::now();
        let call = async {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
            let mut request = tonic::Request::new(body);
            request.set_timeout(plan.timeout);
            grpc.unary(request, path.clone(), PreEncodedCodec).await
        };
        let outcome = tokio::time::timeout(plan.timeout + Duration::from_secs(1), call).await;
        let micros = u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Ok(Ok(response)) => {
                stats.latency.record(micros);
                let rejected = response
                    .get_ref()
                    .partial_success
                    .as_ref()
                    .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
                    .min(spans);
                stats.requests_acked.fetch_add(1, Ordering::Relaxed);
                stats
                    .spans_acked
                    .fetch_add(spans - rejected, Ordering::Relaxed);
                stats.spans_rejected.fetch_add(rejected, Ordering::Relaxed);
            }
            Ok(Err(status)) => stats.fail(spans, format!("{:?}", status.code())),
            Err(_) => stats.fail(spans, "ClientTimeout".into()),
        }
    }
}

/// The final figures of a `send` run.
#[derive(Debug)]
struct SendReport {
    elapsed_s: f64,
    request_bytes: usize,
    requests_sent: u64,
    spans_sent: u64,
    requests_acked: u64,
    spans_acked: u64,
    spans_rejected: u64,
    requests_failed: u64,
    spans_failed: u64,
    failures: BTreeMap<String, u64>,
    spans_per_s_acked: f64,
    latency_p50_us: u64,
    latency_p99_us: u64,
    latency_max_us: u64,
}

impl SendReport {
    fn from_stats(stats: &SendStats, elapsed: Duration, request_bytes: usize) -> Self {
        let spans_acked = stats.spans_acked.load(Ordering::Relaxed);
        let elapsed_s = elapsed.as_secs_f64();
        Self {
            elapsed_s,
            request_bytes,
            requests_sent: stats.requests_sent.load(Ordering::Relaxed),
            spans_sent: stats.spans_sent.load(Ordering::Relaxed),
            requests_acked: stats.requests_acked.load(Ordering::Relaxed),
            spans_acked,
            spans_rejected: stats.spans_rejected.load(Ordering::Relaxed),
            requests_failed: stats.requests_failed.load(Ordering::Relaxed),
            spans_failed: stats.spans_failed.load(Ordering::Relaxed),
            failures: stats
                .failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            spans_per_s_acked: if elapsed_s > 0.0 {
                spans_acked as f64 / elapsed_s
            } else {
                0.0
            },
            latency_p50_us: stats.latency.quantile(0.50),
            latency_p99_us: stats.latency.quantile(0.99),
            latency_max_us: stats.latency.max(),
        }
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "elapsed          {:.3} s", self.elapsed_s);
        let _ = writeln!(out, "request size     {} B encoded", self.request_bytes);
        let _ = writeln!(
            out,
            "requests         sent {} acked {} failed {}",
            self.requests_sent, self.requests_acked, self.requests_failed
        );
        let _ = writeln!(
            out,
            "spans            sent {} acked {} rejected {} failed {}",
            self.spans_sent, self.spans_acked, self.spans_rejected, self.spans_failed
        );
        for (code, n) in &self.failures {
            let _ = writeln!(out, "  failed         {code}: {n} requests");
        }
        let _ = writeln!(
            out,
            "throughput       {:.0} spans/s acked",
            self.spans_per_s_acked
        );
        let _ = writeln!(
            out,
            "export latency   p50 {} p99 {} max {}",
            fmt_micros(self.latency_p50_us),
            fmt_micros(self.latency_p99_us),
            fmt_micros(self.latency_max_us)
        );
        out
    }

    fn to_json(&self) -> String {
        let failures = self
            .failures
            .iter()
            .map(|(code, n)| format!("{}:{n}", json_string(code)))
            .collect::<Vec<_>>()
            .join(",");
        format!(
            concat!(
                "{{\"elapsed_s\":{:.6},\"request_bytes\":{},\"requests_sent\":{},\"spans_sent\":{},",
                "\"requests_acked\":{},\"spans_acked\":{},\"spans_rejected\":{},\"requests_failed\":{},",
                "\"spans_failed\":{},\"failures\":{{{}}},\"spans_per_s_acked\":{:.1},",
                "\"latency_p50_us\":{},\"latency_p99_us\":{},\"latency_max_us\":{}}}"
            ),
            self.elapsed_s,
            self.request_bytes,
            self.requests_sent,
            self.spans_sent,
            self.requests_acked,
            self.spans_acked,
            self.spans_rejected,
            self.requests_failed,
            self.spans_failed,
            failures,
            self.spans_per_s_acked,
            self.latency_p50_us,
            self.latency_p99_us,
            self.latency_max_us,
        )
    }
}

fn fmt_micros(micros: u64) -> String {
    if micros >= 10_000 {
        format!("{:.1} ms", micros as f64 / 1000.0)
    } else {
        format!("{micros} µs")
    }
}

/// A JSON string literal (status code names and such: escape quotes, backslashes, controls).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// sink
// ---------------------------------------------------------------------------------------------

/// What the sink has received. Times are nanoseconds since the sink started, plus one (0 = none).
struct SinkCounters {
    started: Instant,
    requests: AtomicU64,
    spans: AtomicU64,
    data_points: AtomicU64,
    log_records: AtomicU64,
    first_nanos: AtomicU64,
    last_nanos: AtomicU64,
    expect: Option<u64>,
    reached: tokio::sync::Notify,
}

impl SinkCounters {
    fn arrived(&self) {
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .first_nanos
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.last_nanos.fetch_max(now, Ordering::Relaxed);
    }

    fn add_spans(&self, spans: u64) {
        let total = self.spans.fetch_add(spans, Ordering::Relaxed) + spans;
        if self.expect.is_some_and(|n| total >= n) {
            self.reached.notify_one();
        }
    }
}

#[derive(Clone)]
struct Sink(Arc<SinkCounters>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.arrived();
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.add_spans(spans as u64);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.arrived();
        let points: usize = request
            .get_ref()
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(metric::Data::Gauge(g)) => g.data_points.len(),
                Some(metric::Data::Sum(s)) => s.data_points.len(),
                Some(metric::Data::Histogram(h)) => h.data_points.len(),
                Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(metric::Data::Summary(s)) => s.data_points.len(),
                None => 0,
            })
            .sum();
        self.0
            .data_points
            .fetch_add(points as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.0.arrived();
        let records: usize = request
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.0
            .log_records
            .fetch_add(records as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Why the sink stopped.
#[derive(Debug, Clone, Copy)]
enum SinkStop {
    Expected,
    Duration,
    Idle,
    Signal,
}

async fn sink(args: SinkArgs) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on {local}");
        let _ = stdout.flush();
    }

    let counters = Arc::new(SinkCounters {
        started: Instant::now(),
        requests: AtomicU64::new(0),
        spans: AtomicU64::new(0),
        data_points: AtomicU64::new(0),
        log_records: AtomicU64::new(0),
        first_nanos: AtomicU64::new(0),
        last_nanos: AtomicU64::new(0),
        expect: args.expect,
        reached: tokio::sync::Notify::new(),
    });
    let sink = Sink(Arc::clone(&counters));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(sink.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(SINK_MAX_MESSAGE_BYTES),
            )
            .add_service(
                MetricsServiceServer::new(sink.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(SINK_MAX_MESSAGE_BYTES),
            )
            .add_service(
                LogsServiceServer::new(sink)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(SINK_MAX_MESSAGE_BYTES),
            )
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            }),
    );

    let stop = wait_for_sink_stop(&args, &counters).await;
    let _ = stop_tx.send(());
    // Stop serving; connections still open are not waited for beyond a short grace.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;

    let report = SinkReport::from_counters(&counters, stop);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

async fn wait_for_sink_stop(args: &SinkArgs, counters: &SinkCounters) -> SinkStop {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let deadline = tokio::time::sleep(args.duration);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut last_progress = Instant::now();
    let mut last_spans = 0;
    loop {
        if counters
            .expect
            .is_some_and(|n| counters.spans.load(Ordering::Relaxed) >= n)
        {
            return SinkStop::Expected;
        }
        tokio::select! {
            _ = &mut deadline => return SinkStop::Duration,
            _ = counters.reached.notified() => {}
            _ = async { sigterm.as_mut()?.recv().await }, if sigterm.is_some() => return SinkStop::Signal,
            _ = async { sigint.as_mut()?.recv().await }, if sigint.is_some() => return SinkStop::Signal,
            _ = ticker.tick() => {
                let last = counters.last_nanos.load(Ordering::Relaxed);
                if let (Some(idle), true) = (args.idle_exit, last > 0) {
                    let since = counters.started.elapsed().saturating_sub(Duration::from_nanos(last - 1));
                    if since >= idle {
                        return SinkStop::Idle;
                    }
                }
                if args.progress && last_progress.elapsed() >= Duration::from_secs(1) {
                    let spans = counters.spans.load(Ordering::Relaxed);
                    eprintln!(
                        "[{:>5.1}s] received {} spans/s, total {} spans, {} requests",
                        counters.started.elapsed().as_secs_f64(),
                        (spans - last_spans) as f64 / last_progress.elapsed().as_secs_f64(),
                        spans,
                        counters.requests.load(Ordering::Relaxed),
                    );
                    last_spans = spans;
                    last_progress = Instant::now();
                }
            }
        }
    }
}

/// The final figures of a `sink` run.
#[derive(Debug)]
struct SinkReport {
    stop: SinkStop,
    requests: u64,
    spans: u64,
    data_points: u64,
    log_records: u64,
    /// From the first request's arrival to the last's.
    active_s: f64,
    spans_per_s: f64,
}

impl SinkReport {
    fn from_counters(counters: &SinkCounters, stop: SinkStop) -> Self {
        let first = counters.first_nanos.load(Ordering::Relaxed);
        let last = counters.last_nanos.load(Ordering::Relaxed);
        let active_s = if first > 0 {
            (last - first) as f64 / 1e9
        } else {
            0.0
        };
        let spans = counters.spans.load(Ordering::Relaxed);
        Self {
            stop,
            requests: counters.requests.load(Ordering::Relaxed),
            spans,
            data_points: counters.data_points.load(Ordering::Relaxed),
            log_records: counters.log_records.load(Ordering::Relaxed),
            active_s,
            spans_per_s: if active_s > 0.0 {
                spans as f64 / active_s
            } else {
                0.0
            },
        }
    }

    fn stop_reason(&self) -> &'static str {
        match self.stop {
            SinkStop::Expected => "expected",
            SinkStop::Duration => "duration",
            SinkStop::Idle => "idle",
            SinkStop::Signal => "signal",
        }
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "stopped          {}", self.stop_reason());
        let _ = writeln!(out, "requests         {}", self.requests);
        let _ = writeln!(out, "spans            {}", self.spans);
        let _ = writeln!(out, "data points      {}", self.data_points);
        let _ = writeln!(out, "log records      {}", self.log_records);
        let _ = writeln!(out, "active window    {:.3} s", self.active_s);
        let _ = writeln!(out, "throughput       {:.0} spans/s", self.spans_per_s);
        out
    }

    fn to_json(&self) -> String {
        format!(
            concat!(
                "{{\"stopped\":{},\"requests\":{},\"spans\":{},\"data_points\":{},",
                "\"log_records\":{},\"active_s\":{:.6},\"spans_per_s\":{:.1}}}"
            ),
            json_string(self.stop_reason()),
            self.requests,
            self.spans,
            self.data_points,
            self.log_records,
            self.active_s,
            self.spans_per_s,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip_within_one_sixteenth() {
        for value in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            100,
            999,
            1_000,
            65_535,
            1 << 40,
            u64::MAX,
        ] {
            let index = LatencyHistogram::index(value);
            let upper = LatencyHistogram::upper_bound(index);
            assert!(upper >= value, "{value}: upper {upper}");
            assert!(
                (upper - value) as f64 <= value as f64 / 16.0 + 1.0,
                "{value}: upper {upper}"
            );
        }
    }

    #[test]
    fn histogram_percentiles_of_a_uniform_run() {
        let histogram = LatencyHistogram::new();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        let p50 = histogram.quantile(0.5);
        let p99 = histogram.quantile(0.99);
        assert!((500..=532).contains(&p50), "p50 {p50}");
        assert!((990..=1000).contains(&p99), "p99 {p99}");
        assert_eq!(histogram.quantile(1.0), 1000);
        assert_eq!(histogram.max(), 1000);
        assert_eq!(LatencyHistogram::new().quantile(0.5), 0);
    }

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

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn report_json_is_one_object() {
        let stats = SendStats::new();
        stats.fail(100, "Unavailable".into());
        stats.latency.record(1200);
        let json = SendReport::from_stats(&stats, Duration::from_secs(1), 40_000).to_json();
        assert!(json.starts_with('{') && json.ends_with('}'));
        assert!(json.contains("\"failures\":{\"Unavailable\":1}"), "{json}");
        assert!(json.contains("\"latency_max_us\":1200"), "{json}");
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
