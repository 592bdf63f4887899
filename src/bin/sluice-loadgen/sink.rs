//! `sink`: an OTLP/gRPC server that decodes and counts what it receives, then reports.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_pipeline::Payload;
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
use tonic::codec::CompressionEncoding;

use crate::report::{json_string, process_cpu_seconds};
use crate::SinkArgs;

/// The largest message the sink accepts (a batch of 8192 spans of ~400 B is ~3.3 MB, close to
/// tonic's 4 MiB default).
const SINK_MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// What the sink has received. Times are nanoseconds since the sink started, plus one (0 = none).
struct SinkCounters {
    started: Instant,
    requests: AtomicU64,
    /// Requests that came gzip-compressed (`grpc-encoding: gzip`).
    gzip_requests: AtomicU64,
    spans: AtomicU64,
    data_points: AtomicU64,
    log_records: AtomicU64,
    first_nanos: AtomicU64,
    last_nanos: AtomicU64,
    expect: Option<u64>,
    reached: tokio::sync::Notify,
}

impl SinkCounters {
    fn arrived(&self, metadata: &tonic::metadata::MetadataMap) {
        if metadata
            .get("grpc-encoding")
            .is_some_and(|e| e.as_bytes() == b"gzip")
        {
            self.gzip_requests.fetch_add(1, Ordering::Relaxed);
        }
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
        self.0.arrived(request.metadata());
        let spans = Payload::Traces(request.into_inner().resource_spans).item_count();
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
        self.0.arrived(request.metadata());
        let points = Payload::Metrics(request.into_inner().resource_metrics).item_count();
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
        self.0.arrived(request.metadata());
        let records = Payload::Logs(request.into_inner().resource_logs).item_count();
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

pub(crate) async fn sink(args: SinkArgs) -> Result<(), String> {
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
        gzip_requests: AtomicU64::new(0),
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
    let mut signals = sluice_pipeline::runtime::shutdown::StopSignals::install().ok();
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
            Some(_) = async { Some(signals.as_mut()?.recv().await) }, if signals.is_some() => return SinkStop::Signal,
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
    gzip_requests: u64,
    spans: u64,
    data_points: u64,
    log_records: u64,
    /// From the first request's arrival to the last's.
    active_s: f64,
    spans_per_s: f64,
    /// CPU seconds the sink itself used.
    cpu_s: f64,
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
            gzip_requests: counters.gzip_requests.load(Ordering::Relaxed),
            spans,
            data_points: counters.data_points.load(Ordering::Relaxed),
            log_records: counters.log_records.load(Ordering::Relaxed),
            active_s,
            spans_per_s: if active_s > 0.0 {
                spans as f64 / active_s
            } else {
                0.0
            },
            cpu_s: process_cpu_seconds(),
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
        let _ = writeln!(
            out,
            "requests         {} ({} gzip)",
            self.requests, self.gzip_requests
        );
        let _ = writeln!(out, "spans            {}", self.spans);
        let _ = writeln!(out, "data points      {}", self.data_points);
        let _ = writeln!(out, "log records      {}", self.log_records);
        let _ = writeln!(out, "active window    {:.3} s", self.active_s);
        let _ = writeln!(out, "throughput       {:.0} spans/s", self.spans_per_s);
        let _ = writeln!(out, "sink CPU         {:.2} s", self.cpu_s);
        out
    }

    fn to_json(&self) -> String {
        format!(
            concat!(
                "{{\"stopped\":{},\"requests\":{},\"gzip_requests\":{},\"spans\":{},\"data_points\":{},",
                "\"log_records\":{},\"active_s\":{:.6},\"spans_per_s\":{:.1},\"cpu_s\":{:.2}}}"
            ),
            json_string(self.stop_reason()),
            self.requests,
            self.gzip_requests,
            self.spans,
            self.data_points,
            self.log_records,
            self.active_s,
            self.spans_per_s,
            self.cpu_s,
        )
    }
}
