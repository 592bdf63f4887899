//! The real `sluice` binary: `components`, and the default run stopped by SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::WAIT_BOUND;

#[test]
fn components_lists_the_build_sorted_with_signals_and_stability() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("components")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let find = |kind: &str, t: &str| rows.iter().find(|r| r[0] == kind && r[1] == t).cloned();
    assert_eq!(find("receiver", "procfs").map(|r| r[2]), Some("metrics"));
    assert_eq!(
        find("processor", "batch").map(|r| r[2]),
        Some("traces,metrics,logs")
    );
    assert_eq!(
        find("exporter", "debug").map(|r| r[2]),
        Some("traces,metrics,logs")
    );
    let keys: Vec<(usize, &str)> = rows
        .iter()
        .map(|r| {
            let k = ["receiver", "processor", "exporter"]
                .iter()
                .position(|k| *k == r[0])
                .unwrap();
            (k, r[1])
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "sorted by kind, then type");
}

#[test]
fn default_config_prints_host_metrics_and_stops_cleanly_on_sigint() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .env("SLUICE_COLLECTION_INTERVAL", "1s")
        .env("SLUICE_OTLP_GRPC_ENDPOINT", "127.0.0.1:0")
        .env("SLUICE_OTLP_HTTP_ENDPOINT", "127.0.0.1:0")
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the debug exporter to print a batch of host metrics (readiness, not time).
    let mut seen: Vec<String> = Vec::new();
    let mut wait_for = |what: &str, pred: &dyn Fn(&str) -> bool| loop {
        let line = rx
            .recv_timeout(WAIT_BOUND)
            .unwrap_or_else(|_| panic!("no {what}:\n{}", seen.join("\n")));
        let found = pred(&line);
        seen.push(line);
        if found {
            return seen.clone();
        }
    };
    let seen = wait_for("metrics printed", &|l| {
        l.contains("Metrics:") && l.contains("data points")
    });
    // The default also serves OTLP/HTTP: send a span in the spec's JSON encoding to the port
    // it logged, and wait for the debug exporter to print it.
    let http = seen
        .iter()
        .find(|l| l.contains("Listening.") && l.contains("listener=\"http\""))
        .and_then(|l| l.split("endpoint=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no OTLP/HTTP listener logged:\n{}", seen.join("\n")));
    post_json_span(&http);
    wait_for("span printed", &|l| {
        l.contains("Traces: resource spans: 1, spans: 1")
    });
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(WAIT_BOUND) {
        rest.push(line);
    }
    let exit = child.wait().unwrap();
    reader.join().unwrap();
    let rest = rest.join("\n");
    assert_eq!(exit.code(), Some(0), "{rest}");
    assert!(
        rest.contains("sluice stopped. Self-telemetry at shutdown:"),
        "{rest}"
    );
    assert!(
        rest.contains("sluice_receiver_accepted_metric_points{receiver=procfs}"),
        "{rest}"
    );
    assert!(
        rest.contains("sluice_exporter_sent_metric_points{exporter=debug}"),
        "{rest}"
    );
}

fn post_json_span(addr: &str) {
    use std::io::{Read, Write};
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cli-test"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"cli","kind":1,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000"}]}]}]}"#;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
