//! `sluice-loadgen`: an OTLP (gRPC or HTTP) load generator and a counting sink, for benchmarks.
//!
//! - `send` drives `TraceService/Export` (or, with `--protocol http`, `POST /v1/traces`) at a
//!   collector (or straight at a sink): N connections, M requests in flight on each, optional
//!   gzip, an optional target rate, bounded by a span count and/or a duration. Requests are built
//!   and encoded once (a few distinct ones, ids varied) and sent as pre-encoded bytes, so the
//!   generator spends its time on the wire, not on building. It reports requests/spans sent,
//!   acked and failed (by gRPC status or HTTP status code; no retries), acked spans/s and the
//!   per-request export latency p50/p99/max.
//! - `sink` is an OTLP/gRPC server (traces, metrics, logs; gzip accepted) that decodes every
//!   request, as a collector's next hop would, and counts spans, data points and log records. It
//!   prints `listening on ADDR` first, and a report when it stops (`--expect`, `--duration`,
//!   `--idle-exit`, SIGINT or SIGTERM). It serves gRPC only, not OTLP/HTTP.
//!
//! Both default to 127.0.0.1 and always stop by themselves. `--json` prints the final report as
//! one JSON object on stdout; progress lines (`--progress`) go to stderr.
//!
//! ```text
//! sluice-loadgen sink --listen 127.0.0.1:4318 --idle-exit 5s --json &
//! sluice-loadgen send --endpoint http://127.0.0.1:4318 --rate 50000 --duration 10s --json
//! ```

mod histogram;
mod http;
mod report;
mod request;
mod send;
mod sink;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "sluice-loadgen",
    version,
    about = "OTLP (gRPC or HTTP) load generator and OTLP/gRPC counting sink for benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send OTLP trace export requests (gRPC, or HTTP with --protocol http) and report
    /// throughput and latency.
    Send(SendArgs),
    /// Receive OTLP/gRPC (traces, metrics, logs), decode and count, then report. gRPC only: the
    /// sink does not serve OTLP/HTTP.
    Sink(SinkArgs),
}

#[derive(Args, Debug, Clone)]
struct SendArgs {
    /// OTLP endpoint to export to. Default http://127.0.0.1:4317 (grpc) or http://127.0.0.1:4318
    /// (http; requests go to <endpoint>/v1/traces).
    #[arg(long)]
    endpoint: Option<String>,
    /// OTLP transport: grpc (TraceService/Export over HTTP/2) or http (POST /v1/traces, protobuf,
    /// over HTTP/1.1 keep-alive).
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    protocol: Protocol,
    /// Connections: one HTTP/2 channel each (grpc); with http, see --in-flight.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Requests in flight per connection. HTTP/1.1 has no multiplexing, so with --protocol http
    /// each in-flight request has its own keep-alive connection: connections x in-flight in all.
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
    /// Compress requests with gzip (each distinct request once, before the run).
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

/// The transport of `send`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// OTLP/gRPC: `TraceService/Export`.
    Grpc,
    /// OTLP/HTTP: `POST /v1/traces`, `application/x-protobuf`.
    Http,
}

impl Protocol {
    fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://127.0.0.1:4317",
            Protocol::Http => "http://127.0.0.1:4318",
        }
    }
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
        Command::Send(args) => runtime.block_on(send::send(args)),
        Command::Sink(args) => runtime.block_on(sink::sink(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sluice-loadgen: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
