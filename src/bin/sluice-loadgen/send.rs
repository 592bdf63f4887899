//! `send`: drives `TraceService/Export` (or OTLP/HTTP `POST /v1/traces`) with pre-encoded
//! requests and reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::bytes::Bytes;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use crate::histogram::LatencyHistogram;
use crate::http::{HttpClient, HttpOutcome, HttpTarget};
use crate::report::{fmt_micros, json_string, process_cpu_seconds};
use crate::request::{build_request, PreEncodedCodec, SpanShape};
use crate::{Protocol, SendArgs};

/// How many distinct requests `send` builds and cycles through.
const DISTINCT_REQUESTS: usize = 8;
const TRACE_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

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

pub(crate) async fn send(args: SendArgs) -> Result<(), String> {
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
    let endpoint = args
        .endpoint
        .clone()
        .unwrap_or_else(|| args.protocol.default_endpoint().to_string());
    let encoded: Vec<Bytes> = (0..DISTINCT_REQUESTS)
        .map(|v| Bytes::from(build_request(shape, v).encode_to_vec()))
        .collect();
    let request_bytes = encoded[0].len();
    let http_target = match args.protocol {
        Protocol::Grpc => None,
        Protocol::Http => Some(HttpTarget::new(&endpoint, args.gzip)?),
    };
    // gRPC compresses in tonic per call; HTTP bodies are compressed here, once each.
    let requests: Vec<Bytes> = match &http_target {
        None => encoded,
        Some(target) => encoded
            .iter()
            .map(|body| target.prepare_body(body))
            .collect::<Result<_, _>>()?,
    };
    let wire_bytes = requests[0].len();
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
    match &http_target {
        None => {
            for _ in 0..args.connections {
                let grpc_endpoint = Endpoint::from_shared(endpoint.clone())
                    .map_err(|e| format!("--endpoint {endpoint}: {e}"))?
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(5));
                let channel = grpc_endpoint
                    .connect()
                    .await
                    .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
                channels.push(channel);
            }
        }
        Some(target) => {
            // Fail fast, as gRPC does, rather than count a dead endpoint's connect errors.
            let authority = target.authority();
            tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect(&authority),
            )
            .await
            .map_err(|_| format!("cannot connect to {endpoint}: timed out"))?
            .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
        }
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
        "sending to {} over {}: {} connections x {} in flight{}, {} spans/request ({} B encoded{}), rate {}, {}",
        http_target.as_ref().map_or_else(|| endpoint.clone(), |t| t.uri.to_string()),
        match args.protocol {
            Protocol::Grpc => "OTLP/gRPC",
            Protocol::Http => "OTLP/HTTP",
        },
        args.connections,
        args.in_flight,
        if http_target.is_some() { format!(" ({tasks} HTTP/1.1 connections)") } else { String::new() },
        spans_per_request,
        request_bytes,
        match (args.gzip, &http_target) {
            (false, _) => String::new(),
            (true, None) => ", gzip".to_string(),
            (true, Some(_)) => format!(", gzip {wire_bytes} B"),
        },
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
        let exporter = match &http_target {
            None => Exporter::grpc(channels[task % channels.len()].clone(), args.gzip),
            Some(target) => Exporter::Http {
                client: crate::http::client(),
                target: target.clone(),
            },
        };
        let plan = Arc::clone(&plan);
        // Spread the tasks' first sends over one period so a rate is paced evenly.
        let offset = task_period.map(|p| p.mul_f64(task as f64 / tasks as f64));
        handles.push(tokio::spawn(send_loop(exporter, plan, task, offset)));
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

/// What one export came to.
enum Outcome {
    Acked { rejected: u64 },
    Failed(String),
}

/// One sending task's transport.
enum Exporter {
    /// A gRPC client on a channel shared by `--in-flight` tasks.
    Grpc {
        grpc: tonic::client::Grpc<Channel>,
        path: PathAndQuery,
    },
    /// An HTTP/1.1 client of its own keep-alive connection.
    Http {
        client: HttpClient,
        target: HttpTarget,
    },
}

impl Exporter {
    fn grpc(channel: Channel, gzip: bool) -> Self {
        let mut grpc = tonic::client::Grpc::new(channel);
        if gzip {
            grpc = grpc
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        Exporter::Grpc {
            grpc,
            path: PathAndQuery::from_static(TRACE_EXPORT_PATH),
        }
    }

    /// Sends one request (no retries), within `timeout` plus a second of grace.
    async fn export(&mut self, body: Bytes, timeout: Duration) -> Outcome {
        match self {
            Exporter::Grpc { grpc, path } => {
                let call = async {
                    grpc.ready().await.map_err(|e| {
                        tonic::Status::unavailable(format!("channel not ready: {e}"))
                    })?;
                    let mut request = tonic::Request::new(body);
                    request.set_timeout(timeout);
                    grpc.unary(request, path.clone(), PreEncodedCodec).await
                };
                match tokio::time::timeout(timeout + Duration::from_secs(1), call).await {
                    Ok(Ok(response)) => Outcome::Acked {
                        rejected: response
                            .get_ref()
                            .partial_success
                            .as_ref()
                            .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0)),
                    },
                    Ok(Err(status)) => Outcome::Failed(format!("{:?}", status.code())),
                    Err(_) => Outcome::Failed("ClientTimeout".into()),
                }
            }
            Exporter::Http { client, target } => {
                let call = crate::http::export(client, target, body);
                match tokio::time::timeout(timeout, call).await {
                    Ok(HttpOutcome::Acked { rejected }) => Outcome::Acked { rejected },
                    Ok(HttpOutcome::Failed(reason)) => Outcome::Failed(reason),
                    Err(_) => Outcome::Failed("ClientTimeout".into()),
                }
            }
        }
    }
}

async fn send_loop(
    mut exporter: Exporter,
    plan: Arc<SendPlan>,
    task: usize,
    offset: Option<Duration>,
) {
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
        let outcome = exporter.export(body, plan.timeout).await;
        let micros = u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Outcome::Acked { rejected } => {
                stats.latency.record(micros);
                let rejected = rejected.min(spans);
                stats.requests_acked.fetch_add(1, Ordering::Relaxed);
                stats
                    .spans_acked
                    .fetch_add(spans - rejected, Ordering::Relaxed);
                stats.spans_rejected.fetch_add(rejected, Ordering::Relaxed);
            }
            Outcome::Failed(reason) => stats.fail(spans, reason),
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
    /// CPU seconds the generator itself used.
    cpu_s: f64,
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
            cpu_s: process_cpu_seconds(),
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
        let _ = writeln!(out, "generator CPU    {:.2} s", self.cpu_s);
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
                "\"latency_p50_us\":{},\"latency_p99_us\":{},\"latency_max_us\":{},\"cpu_s\":{:.2}}}"
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
            self.cpu_s,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
