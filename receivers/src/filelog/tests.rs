//! Tests of the `filelog` receiver's parts: config files, globs, record splitting, parsing and
//! checkpoints. The running receiver (rotation, restart) is tested end to end in
//! `tests/it/filelog.rs`.

use std::path::PathBuf;
use std::time::Duration;

use sluice_pipeline::config::decode_str;
use sluice_pipeline::otlp::attr_str;
use sluice_pipeline::Validate;
use sluice_proto::common::v1::any_value;
use sluice_proto::logs::v1::LogRecord;

use super::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/filelog/testdata");

fn testdata(name: &str) -> String {
    std::fs::read_to_string(format!("{TESTDATA}/{name}")).expect("testdata file")
}

fn split_all(s: &mut Splitter, chunks: &[&[u8]]) -> Vec<String> {
    let mut out = Vec::new();
    for c in chunks {
        s.push(c, &mut out);
    }
    out.iter()
        .map(|r| String::from_utf8_lossy(&r.bytes).into_owned())
        .collect()
}

fn body(r: &LogRecord) -> String {
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

#[test]
fn config_file_parses_with_every_option() {
    let c: FilelogReceiverConfig = decode_str(&testdata("config.yaml")).expect("valid config");
    c.validate().expect("validates");
    assert_eq!(c.include.len(), 2);
    assert_eq!(c.exclude, vec!["/var/log/app/debug.log".to_string()]);
    assert_eq!(c.poll_interval, Duration::from_millis(100));
    assert_eq!(c.start_at, StartAt::Beginning);
    assert_eq!(c.max_log_size, 64 * 1024);
    assert_eq!(c.max_batch_size, 500);
    assert_eq!(c.format, LogFormat::Json);
    assert_eq!(c.json.body_field.as_deref(), Some("message"));
    assert_eq!(c.severity.unwrap().field.as_deref(), Some("level"));
    assert!(!c.include_file_name);
    assert!(c.include_file_path);
    assert_eq!(c.storage, Some(PathBuf::from("/var/lib/sluice/filelog")));
}

#[test]
fn defaults_follow_the_collector() {
    let c: FilelogReceiverConfig = decode_str("include: [a.log]\n").expect("valid");
    c.validate().expect("validates");
    assert_eq!(c.start_at, StartAt::End);
    assert_eq!(c.poll_interval, Duration::from_millis(200));
    assert_eq!(c.max_log_size, DEFAULT_MAX_LOG_SIZE);
    assert!(c.include_file_name && !c.include_file_path);
    assert_eq!(c.format, LogFormat::Plain);
}

#[test]
fn a_misspelt_key_fails_with_its_name() {
    sluice_pipeline::testing::assert_misspelt_key::<FilelogReceiverConfig>(
        &testdata("typo_config.yaml"),
        "include_file_paht",
        3,
    );
}

#[test]
fn invalid_values_name_their_key() {
    for (yaml, key) in [
        ("exclude: [a]\n", "include"),
        ("include: [a]\nencoding: latin1\n", "encoding"),
        ("include: ['a[b']\n", "include::0"),
        (
            "include: [a]\nmultiline: { line_start_pattern: '(' }\n",
            "multiline::line_start_pattern",
        ),
        (
            "include: [a]\nseverity: { regex: 'x' }\n",
            "severity::regex",
        ),
        (
            "include: [a]\nseverity: { field: level }\n",
            "severity::field",
        ),
        ("include: [a]\nmax_log_size: 0\n", "max_log_size"),
    ] {
        let c: FilelogReceiverConfig = decode_str(yaml).expect("decodes");
        let e = c.validate().expect_err(yaml);
        assert_eq!(e.key, key, "{yaml}: {e:?}");
    }
    assert!(decode_str::<FilelogReceiverConfig>("include: [a]\nmax_log_size: 1XB\n").is_err());
    assert_eq!(parse_byte_size("16kb"), Ok(16_000));
    assert_eq!(parse_byte_size("2MiB"), Ok(2 << 20));
}

#[test]
fn globs_match_and_expand() {
    let p = Pattern::new("/var/log/**/svc-[a-c]?.log").expect("pattern");
    assert!(p.matches(std::path::Path::new("/var/log/svc-a1.log")));
    assert!(p.matches(std::path::Path::new("/var/log/x/y/svc-c9.log")));
    assert!(!p.matches(std::path::Path::new("/var/log/svc-d1.log")));
    let dir = tempfile::tempdir().expect("tempdir");
    for f in ["a.log", "b.txt", "sub/c.log"] {
        let path = dir.path().join(f);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "x").expect("write");
    }
    let mut out = Vec::new();
    Pattern::new(&format!("{}/**/*.log", dir.path().display()))
        .expect("pattern")
        .expand(&mut out);
    out.sort();
    assert_eq!(
        out,
        vec![dir.path().join("a.log"), dir.path().join("sub/c.log")]
    );
}

#[test]
fn lines_split_across_chunks_and_offsets_track_them() {
    let mut s = Splitter::new(100, None, 1024);
    let got = split_all(&mut s, &[b"one\ntw", b"o\r\nthree"]);
    assert_eq!(got, vec!["one", "two"]);
    assert_eq!(s.consumed(), 100 + 9);
    // Each record says how far a checkpoint may advance once it is delivered.
    let mut s2 = Splitter::new(100, None, 1024);
    let mut out = Vec::new();
    s2.push(b"one\ntwo\r\nthr", &mut out);
    assert_eq!(
        out.iter().map(|r| r.end).collect::<Vec<_>>(),
        vec![104, 109]
    );
    assert!(s.has_pending());
    let mut out = Vec::new();
    s.flush(&mut out);
    assert_eq!(out[0].bytes, b"three");
    assert_eq!(s.consumed(), 100 + 14);
}

#[test]
fn multiline_records_join_until_the_next_start() {
    let re = regex::bytes::Regex::new(r"^\d{4}-").expect("regex");
    let mut s = Splitter::new(0, Some(re), 1024);
    let got = split_all(
        &mut s,
        &[b"preamble\n2024-01 first\n  at a\n  at b\n2024-02 second\n"],
    );
    assert_eq!(got, vec!["preamble", "2024-01 first\n  at a\n  at b"]);
    let mut s2 = Splitter::new(
        0,
        Some(regex::bytes::Regex::new(r"^\d{4}-").expect("regex")),
        1024,
    );
    let mut out = Vec::new();
    s2.push(
        b"preamble\n2024-01 first\n  at a\n  at b\n2024-02 second\n",
        &mut out,
    );
    assert_eq!(out.iter().map(|r| r.end).collect::<Vec<_>>(), vec![9, 37]);
    // The second record is held (more lines may follow): the checkpoint may not pass its start.
    assert_eq!(s.consumed(), 37);
    let mut out = Vec::new();
    s.flush(&mut out);
    assert_eq!(out[0].bytes, b"2024-02 second");
}

#[test]
fn records_longer_than_max_log_size_are_split() {
    let mut s = Splitter::new(0, None, 4);
    let mut out = Vec::new();
    s.push(b"abcdefghij\nxy\n", &mut out);
    let got: Vec<_> = out.iter().map(|r| (r.bytes.clone(), r.split)).collect();
    assert_eq!(
        got,
        vec![
            (b"abcd".to_vec(), true),
            (b"efgh".to_vec(), true),
            (b"ij".to_vec(), true),
            (b"xy".to_vec(), false)
        ]
    );
    // An unterminated line is cut too, so the buffer stays bounded.
    let mut out = Vec::new();
    s.push(b"0123456789", &mut out);
    assert!(out.len() >= 2 && s.buffered() <= 4, "{out:?}");
}

fn parser(yaml: &str) -> RecordParser {
    let c: FilelogReceiverConfig = decode_str(yaml).expect("config");
    c.validate().expect("valid");
    RecordParser::new(&c).expect("parser")
}

#[test]
fn invalid_utf8_is_replaced_and_reported() {
    let p = parser("include: [a]\n");
    let (r, issues) = p.parse(b"ok \xff\xfe end", &[], 7);
    assert!(issues.invalid_utf8);
    assert_eq!(body(&r), "ok \u{fffd}\u{fffd} end");
    assert_eq!(r.observed_time_unix_nano, 7);
}

#[test]
fn json_lines_become_attributes_body_and_severity() {
    let p = parser(
        "include: [a]\nformat: json\njson: { body_field: msg }\nseverity: { field: level }\n",
    );
    let attrs = parse::file_attributes(std::path::Path::new("/x/app.log"), true, true);
    let (r, issues) = p.parse(br#"{"msg":"hello","level":"warn","n":3}"#, &attrs, 1);
    assert_eq!(issues, ParseIssues::default());
    assert_eq!(body(&r), "hello");
    assert_eq!(r.severity_text, "warn");
    assert_eq!(r.severity_number, severity_number("WARNING") as i32);
    assert_eq!(attr_str(&r.attributes, "level"), Some("warn"));
    assert_eq!(attr_str(&r.attributes, "log.file.name"), Some("app.log"));
    assert_eq!(attr_str(&r.attributes, "log.file.path"), Some("/x/app.log"));
    assert!(r.attributes.iter().any(|kv| kv.key == "n"));
    let (r, issues) = p.parse(b"not json", &[], 1);
    assert!(issues.bad_json);
    assert_eq!(body(&r), "not json");
}

#[test]
fn severity_from_a_regex_group() {
    let p = parser("include: [a]\nseverity: { regex: '^\\S+ (?P<severity>[A-Z]+) ' }\n");
    let (r, _) = p.parse(b"12:00 ERROR disk full", &[], 1);
    assert_eq!(r.severity_text, "ERROR");
    assert_eq!(r.severity_number, severity_number("error") as i32);
}

#[test]
fn checkpoints_round_trip_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::new(dir.path());
    assert!(store.load().expect("missing file is empty").is_empty());
    let prefix = b"first line\n";
    let cps = vec![FilelogCheckpoint {
        path: "/var/log/a.log".into(),
        dev: 1,
        ino: 42,
        fingerprint_len: prefix.len() as u64,
        fingerprint: fnv1a(prefix),
        offset: 1234,
    }];
    store.save(&cps).expect("save");
    assert_eq!(store.load().expect("load"), cps);
    assert!(cps[0].matches_prefix(b"first line\nsecond line\n"));
    assert!(!cps[0].matches_prefix(b"other line\n"));
    assert!(!dir.path().join("checkpoints.json.tmp").exists());
    std::fs::write(store.path(), "{torn").expect("write");
    assert!(store.load().is_err());
}
