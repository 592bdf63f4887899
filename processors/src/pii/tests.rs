use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sluice_pipeline::config::{decode_str, node::parse_yaml};
use sluice_pipeline::factory::ProcessorFactory;
use sluice_pipeline::telemetry::{ComponentTelemetry, Telemetry};
use sluice_pipeline::Validate;
use sluice_pipeline::{Batch, ComponentId, Kind, Payload};
use sluice_proto::common::v1::{
    any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use sluice_proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sluice_proto::metrics::v1::{
    metric, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use sluice_proto::resource::v1::Resource;
use sluice_proto::trace::v1::{span, ResourceSpans, ScopeSpans, Span};

use super::patterns::luhn_valid;
use super::scrub::hex_lower;
use super::*;

// ---------------------------------------------------------------------------------------------
// Builders.

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(v.to_string())),
    }
}

fn int(v: i64) -> AnyValue {
    AnyValue {
        value: Some(Value::IntValue(v)),
    }
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

fn kvlist(items: Vec<KeyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::KvlistValue(KeyValueList { values: items })),
    }
}

fn array(items: Vec<AnyValue>) -> AnyValue {
    AnyValue {
        value: Some(Value::ArrayValue(ArrayValue { values: items })),
    }
}

fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes,
        ..Default::default()
    })
}

fn scope(attributes: Vec<KeyValue>) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "app".to_string(),
        attributes,
        ..Default::default()
    })
}

const KEY: &str = "test-key-1";

/// Every built-in pattern, one custom regex, one attribute rule; `ipv4` hashes.
fn seeded_config(key: &str) -> PiiProcessorConfig {
    let yaml = format!(
        "key: {key}\nhash_length: 16\nattributes:\n  - {{ name: user_ids, keys: [\"user.id\", \"enduser.*\"], action: hash }}\npatterns:\n  - {{ name: email, action: redact }}\n  - {{ name: ipv4, action: hash }}\n  - {{ name: ipv6, action: redact }}\n  - {{ name: credit_card, action: redact }}\n  - {{ name: bearer_token, action: redact }}\n  - {{ name: api_key, action: redact }}\n  - {{ name: jwt, action: redact }}\n  - {{ name: custom_order, regex: \"ORD-[0-9]{{6}}\", action: redact }}\n"
    );
    let c: PiiProcessorConfig = decode_str(&yaml).expect("seeded config");
    c.validate().expect("valid");
    c
}

fn processor(config: &PiiProcessorConfig) -> (PiiProcessor, Arc<Telemetry>) {
    let registry = Telemetry::new();
    let id: ComponentId = "pii".parse().expect("id");
    let telemetry = ComponentTelemetry::new(registry.clone(), Kind::Processor, &id);
    (
        PiiProcessor::new(config, &telemetry).expect("build"),
        registry,
    )
}

fn changes(registry: &Telemetry, rule: &str) -> i64 {
    registry
        .value(CHANGES_METRIC, &[("processor", "pii"), ("rule", rule)])
        .unwrap_or(0)
}

fn hmac_hex(key: &str, value: &str, len: usize) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(value.as_bytes());
    let mut hex = hex_lower(&mac.finalize().into_bytes());
    hex.truncate(len);
    hex
}

fn run(p: &mut PiiProcessor, payload: Payload) -> Payload {
    let mut out = Vec::new();
    p.process(Batch::new(payload), &mut out).expect("process");
    assert_eq!(out.len(), 1);
    out.remove(0).payload
}

// ---------------------------------------------------------------------------------------------
// The seeded secrets.

const EMAIL: &str = "alice.smith+ops@mail.example.org";
const IPV4: &str = "192.168.1.23";
const IPV6: &str = "2001:db8::8a2e:370:7334";
const CARD: &str = "4111 1111 1111 1111";
const CARD_INVALID: &str = "4111 1111 1111 1112";
const BEARER: &str = "abc123.def456-ghi";
const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const SK: &str = "sk-proj-abcdefghijklmnop1234";
const GHP: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const AKIA: &str = "AKIAIOSFODNN7EXAMPLE";
const PASSWORD: &str = "hunter2secret";
const ORDER: &str = "ORD-123456";
const USER_ID: &str = "u-4242";

/// A text holding one of each secret (api_key four times), and a Luhn-invalid look-alike.
fn seeded_text() -> String {
    format!(
        "mail {EMAIL}, ip {IPV4}, v6 {IPV6}, card {CARD}, not-a-card {CARD_INVALID}, \
         Authorization: Bearer {BEARER}; jwt {JWT} with {SK} and {GHP} aws {AKIA} \
         password={PASSWORD} order {ORDER} — ünïcode stays, 1.2.3 stays, 2026-05-01T10:00:00Z"
    )
}

/// What `seeded_text` becomes under `seeded_config(key)`.
fn scrubbed_text(key: &str) -> String {
    let ip = hmac_hex(key, IPV4, 16);
    format!(
        "mail ***, ip {ip}, v6 ***, card ***, not-a-card {CARD_INVALID}, \
         Authorization: Bearer ***; jwt *** with *** and *** aws *** \
         password=*** order *** — ünïcode stays, 1.2.3 stays, 2026-05-01T10:00:00Z"
    )
}

/// Per `seeded_text`: how many changes of each pattern rule.
const PER_TEXT: [(&str, i64); 8] = [
    ("email", 1),
    ("ipv4", 1),
    ("ipv6", 1),
    ("credit_card", 1),
    ("bearer_token", 1),
    ("api_key", 4),
    ("jwt", 1),
    ("custom_order", 1),
];

const SECRETS: [&str; 12] = [
    EMAIL, IPV4, IPV6, CARD, BEARER, JWT, SK, GHP, AKIA, PASSWORD, ORDER, USER_ID,
];

fn assert_no_secret(payload: &Payload) {
    let dump = format!("{payload:?}");
    for secret in SECRETS {
        assert!(!dump.contains(secret), "{secret} survived in {dump}");
    }
    assert!(
        dump.contains(CARD_INVALID),
        "the Luhn-invalid number must survive"
    );
}

fn assert_counts(registry: &Telemetry, texts: i64, user_ids: i64) {
    for (rule, n) in PER_TEXT {
        assert_eq!(changes(registry, rule), n * texts, "rule {rule}");
    }
    assert_eq!(changes(registry, "user_ids"), user_ids);
}

fn string_of(v: &AnyValue) -> &str {
    match &v.value {
        Some(Value::StringValue(s)) => s,
        other => panic!("expected a string, got {other:?}"),
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> &'a AnyValue {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .unwrap_or_else(|| panic!("no attribute {key}"))
}

// ---------------------------------------------------------------------------------------------
// Signals.

#[test]
fn logs_lose_every_secret_and_keep_the_rest() {
    let t = seeded_text();
    let payload = Payload::Logs(vec![ResourceLogs {
        resource: resource(vec![kv("host.note", s(&t)), kv("user.id", s(USER_ID))]),
        scope_logs: vec![ScopeLogs {
            scope: scope(vec![kv("scope.note", s(&t))]),
            log_records: vec![LogRecord {
                attributes: vec![
                    kv("msg", s(&t)),
                    kv("enduser.session", int(12345)),
                    kv("safe", s("plain text, nothing to see")),
                ],
                body: Some(kvlist(vec![
                    kv("text", s(&t)),
                    kv("list", array(vec![s(&t), s("untouched")])),
                    kv("user.id", s(USER_ID)),
                ])),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let (mut p, registry) = processor(&seeded_config(KEY));
    let out = run(&mut p, payload);
    assert_no_secret(&out);
    assert_counts(&registry, 5, 3);

    let want = scrubbed_text(KEY);
    let Payload::Logs(rl) = &out else {
        panic!("logs")
    };
    let res = &rl[0].resource.as_ref().expect("resource").attributes;
    assert_eq!(string_of(attr(res, "host.note")), want);
    assert_eq!(string_of(attr(res, "user.id")), hmac_hex(KEY, USER_ID, 16));
    let sl = &rl[0].scope_logs[0];
    assert_eq!(
        string_of(attr(
            &sl.scope.as_ref().expect("scope").attributes,
            "scope.note"
        )),
        want
    );
    let rec = &sl.log_records[0];
    assert_eq!(string_of(attr(&rec.attributes, "msg")), want);
    // A non-string value under a matching key becomes the hash of its text.
    assert_eq!(
        string_of(attr(&rec.attributes, "enduser.session")),
        hmac_hex(KEY, "12345", 16)
    );
    assert_eq!(
        string_of(attr(&rec.attributes, "safe")),
        "plain text, nothing to see"
    );
    let Some(Value::KvlistValue(body)) = &rec.body.as_ref().expect("body").value else {
        panic!("kvlist body")
    };
    assert_eq!(string_of(attr(&body.values, "text")), want);
    assert_eq!(
        string_of(attr(&body.values, "user.id")),
        hmac_hex(KEY, USER_ID, 16)
    );
    let Some(Value::ArrayValue(list)) = &attr(&body.values, "list").value else {
        panic!("array")
    };
    assert_eq!(string_of(&list.values[0]), want);
    assert_eq!(string_of(&list.values[1]), "untouched");
}

#[test]
fn string_log_body_is_scrubbed() {
    let payload = Payload::Logs(vec![ResourceLogs {
        scope_logs: vec![ScopeLogs {
            log_records: vec![LogRecord {
                body: Some(s(&seeded_text())),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let (mut p, registry) = processor(&seeded_config(KEY));
    let out = run(&mut p, payload);
    let Payload::Logs(rl) = &out else {
        panic!("logs")
    };
    let body = rl[0].scope_logs[0].log_records[0]
        .body
        .as_ref()
        .expect("body");
    assert_eq!(string_of(body), scrubbed_text(KEY));
    assert_counts(&registry, 1, 0);
}

#[test]
fn traces_lose_every_secret_and_keep_the_rest() {
    let t = seeded_text();
    let payload = Payload::Traces(vec![ResourceSpans {
        resource: resource(vec![kv("host.note", s(&t)), kv("user.id", s(USER_ID))]),
        scope_spans: vec![ScopeSpans {
            scope: scope(vec![kv("scope.note", s(&t))]),
            spans: vec![Span {
                name: "GET /users".to_string(),
                attributes: vec![kv("http.url", s(&t)), kv("enduser.id", s(USER_ID))],
                events: vec![span::Event {
                    name: "exception".to_string(),
                    attributes: vec![kv("exception.message", s(&t))],
                    ..Default::default()
                }],
                links: vec![span::Link {
                    attributes: vec![kv("note", s(&t))],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let (mut p, registry) = processor(&seeded_config(KEY));
    let out = run(&mut p, payload);
    assert_no_secret(&out);
    assert_counts(&registry, 5, 2);
    let Payload::Traces(rs) = &out else {
        panic!("traces")
    };
    let span = &rs[0].scope_spans[0].spans[0];
    assert_eq!(span.name, "GET /users");
    assert_eq!(
        string_of(attr(&span.attributes, "http.url")),
        scrubbed_text(KEY)
    );
    assert_eq!(
        string_of(attr(&span.events[0].attributes, "exception.message")),
        scrubbed_text(KEY)
    );
    assert_eq!(
        string_of(attr(&span.links[0].attributes, "note")),
        scrubbed_text(KEY)
    );
}

#[test]
fn metrics_lose_every_secret_and_keep_the_rest() {
    let t = seeded_text();
    let metric = |name: &str, data: metric::Data| Metric {
        name: name.to_string(),
        data: Some(data),
        ..Default::default()
    };
    let payload = Payload::Metrics(vec![ResourceMetrics {
        resource: resource(vec![kv("host.note", s(&t))]),
        scope_metrics: vec![ScopeMetrics {
            scope: scope(vec![kv("scope.note", s(&t))]),
            metrics: vec![
                metric(
                    "g",
                    metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("note", s(&t)), kv("user.id", s(USER_ID))],
                            ..Default::default()
                        }],
                    }),
                ),
                metric(
                    "s",
                    metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("code", s("200"))],
                            exemplars: vec![Exemplar {
                                filtered_attributes: vec![kv("note", s(&t))],
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                ),
                metric(
                    "h",
                    metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint {
                            attributes: vec![kv("note", s(&t))],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                ),
            ],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let (mut p, registry) = processor(&seeded_config(KEY));
    let out = run(&mut p, payload);
    assert_no_secret(&out);
    assert_counts(&registry, 5, 1);
    let Payload::Metrics(rm) = &out else {
        panic!("metrics")
    };
    let Some(metric::Data::Sum(sum)) = &rm[0].scope_metrics[0].metrics[1].data else {
        panic!("sum")
    };
    assert_eq!(
        string_of(attr(&sum.data_points[0].attributes, "code")),
        "200"
    );
}

#[test]
fn nothing_to_scrub_leaves_the_batch_identical() {
    let payload = Payload::Logs(vec![ResourceLogs {
        resource: resource(vec![kv("service.name", s("checkout"))]),
        scope_logs: vec![ScopeLogs {
            log_records: vec![LogRecord {
                attributes: vec![kv("n", int(7)), kv("path", s("/api/v1/items?page=2"))],
                body: Some(s(
                    "GET /api/v1/items 200 in 12ms, build 1.2.3 at 1714557600123",
                )),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }]);
    let (mut p, registry) = processor(&seeded_config(KEY));
    let out = run(&mut p, payload.clone());
    assert_eq!(out, payload);
    assert_counts(&registry, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// Patterns one by one.

fn redact_all() -> PiiProcessorConfig {
    PiiProcessorConfig {
        patterns: BUILTIN_PATTERNS
            .iter()
            .map(|n| PiiPatternRule {
                name: (*n).to_string(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn scrub_text(config: &PiiProcessorConfig, text: &str) -> String {
    let scrubber = scrub::Scrubber::new(config).expect("compile");
    let mut counts = vec![0; scrubber.labels().len()];
    scrubber
        .scrub_str(text, &mut counts)
        .unwrap_or_else(|| text.to_string())
}

#[test]
fn each_builtin_pattern_catches_its_shapes() {
    let c = redact_all();
    let cases = [
        ("to bob@example.co.uk.", "to ***."),
        ("from 10.0.0.7:8080", "from ***:8080"),
        ("peer [fe80::1]:443", "peer [***]:443"),
        (
            "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334 end",
            "full *** end",
        ),
        ("mapped ::ffff:192.0.2.128 end", "mapped *** end"),
        ("amex 3782-822463-10005 ok", "amex *** ok"),
        ("mc 5500-0000-0000-0004 ok", "mc *** ok"),
        ("plain 4012888888881881", "plain ***"),
        (
            "authorization: bearer tok_abc.DEF-123==",
            "authorization: bearer ***",
        ),
        ("{\"password\": \"p@ss w\"}", "{\"password\": \"***\"}"),
        ("url ?api_key=abcd1234&x=1", "url ?api_key=***&x=1"),
        ("slack xoxb-1234567890-abcdef", "slack ***"),
        ("ghs ghs_abcdefghijklmnopqrstuvwxyz0123", "ghs ***"),
    ];
    for (input, want) in cases {
        assert_eq!(scrub_text(&c, input), want, "{input}");
    }
}

#[test]
fn lookalikes_survive() {
    let c = redact_all();
    for text in [
        "card 4111 1111 1111 1112 is not Luhn-valid",
        "epoch 1714557600123 ms",
        "rust path std::io::Error and Foo::bar",
        "time 12:30:45, mac 00:1a:2b:3c:4d:5e",
        "version 1.2.3 and 999.1.1.1",
        "a.b.c is a hostname, not a JWT",
        "a plain sentence about tokens and keys",
    ] {
        assert_eq!(scrub_text(&c, text), text);
    }
}

#[test]
fn luhn() {
    assert!(luhn_valid("4111 1111 1111 1111"));
    assert!(luhn_valid("378282246310005"));
    assert!(!luhn_valid("4111 1111 1111 1112"));
    assert!(!luhn_valid("0000 0000"));
}

#[test]
fn custom_regex_with_secret_group_replaces_only_the_group() {
    let c = PiiProcessorConfig {
        patterns: vec![PiiPatternRule {
            name: "session".to_string(),
            regex: Some("session=(?P<secret>[0-9a-f]+)".to_string()),
            action: PiiAction::Redact,
        }],
        mask: "<gone>".to_string(),
        ..Default::default()
    };
    assert_eq!(
        scrub_text(&c, "a session=deadbeef b session=01 c"),
        "a session=<gone> b session=<gone> c"
    );
}

// ---------------------------------------------------------------------------------------------
// Hashing.

fn hashed_user(key: &str, hash_length: usize) -> String {
    let config = PiiProcessorConfig {
        key: key.to_string(),
        hash_length,
        attributes: vec![PiiAttributeRule {
            keys: vec!["*.id".to_string()],
            action: PiiAction::Hash,
            ..Default::default()
        }],
        ..Default::default()
    };
    let (mut p, registry) = processor(&config);
    let out = run(
        &mut p,
        Payload::Logs(vec![ResourceLogs {
            resource: resource(vec![kv("device.id", s(USER_ID))]),
            ..Default::default()
        }]),
    );
    assert_eq!(changes(&registry, "*.id"), 1);
    let Payload::Logs(rl) = &out else {
        panic!("logs")
    };
    string_of(attr(
        &rl[0].resource.as_ref().expect("resource").attributes,
        "device.id",
    ))
    .to_string()
}

#[test]
fn hashes_are_stable_per_key_and_differ_across_keys() {
    let a1 = hashed_user("key-a", 64);
    let a2 = hashed_user("key-a", 64);
    let b = hashed_user("key-b", 64);
    assert_eq!(a1, a2);
    assert_ne!(a1, b);
    assert_eq!(a1.len(), 64);
    assert!(a1
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    assert_eq!(hashed_user("key-a", 12), a1[..12]);
}

#[test]
fn hash_is_hmac_sha256() {
    // RFC 4231-style published vector: HMAC-SHA256("key", "The quick brown fox…").
    let config = PiiProcessorConfig {
        key: "key".to_string(),
        patterns: vec![PiiPatternRule {
            name: "fox".to_string(),
            regex: Some("The quick brown fox jumps over the lazy dog".to_string()),
            action: PiiAction::Hash,
        }],
        ..Default::default()
    };
    assert_eq!(
        scrub_text(&config, "<The quick brown fox jumps over the lazy dog>"),
        "<f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8>"
    );
}

#[test]
fn key_globs() {
    let config = PiiProcessorConfig {
        attributes: vec![PiiAttributeRule {
            name: "k".to_string(),
            keys: vec![
                "user.id".to_string(),
                "enduser.*".to_string(),
                "*.email".to_string(),
                "a*b*c".to_string(),
            ],
            action: PiiAction::Redact,
        }],
        ..Default::default()
    };
    let keys = [
        ("user.id", true),
        ("user.idx", false),
        ("enduser.", true),
        ("enduser.role", true),
        ("enduser", false),
        ("contact.email", true),
        ("email", false),
        ("abc", true),
        ("a-b-c", true),
        ("ac", false),
        ("service.name", false),
    ];
    let (mut p, _) = processor(&config);
    let out = run(
        &mut p,
        Payload::Logs(vec![ResourceLogs {
            resource: resource(keys.iter().map(|(k, _)| kv(k, s("v"))).collect()),
            ..Default::default()
        }]),
    );
    let Payload::Logs(rl) = &out else {
        panic!("logs")
    };
    let attrs = &rl[0].resource.as_ref().expect("resource").attributes;
    for (key, redacted) in keys {
        let want = if redacted { "***" } else { "v" };
        assert_eq!(string_of(attr(attrs, key)), want, "{key}");
    }
}

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn default_config_does_nothing_and_is_valid() {
    let d = PiiProcessorConfig::default();
    assert_eq!(d.mask, "***");
    assert_eq!(d.hash_length, FULL_HASH_LENGTH);
    assert!(d.key.is_empty() && d.attributes.is_empty() && d.patterns.is_empty());
    assert_eq!(decode_str::<PiiProcessorConfig>("").expect("empty"), d);
    assert_eq!(d.validate(), Ok(()));
}

#[test]
fn good_config_decodes_whole() {
    let c: PiiProcessorConfig =
        decode_str(include_str!("testdata/config.yaml")).expect("good config");
    assert_eq!(
        c,
        PiiProcessorConfig {
            key: "not-a-real-key".to_string(),
            hash_length: 16,
            mask: "[redacted]".to_string(),
            attributes: vec![
                PiiAttributeRule {
                    name: "user_ids".to_string(),
                    keys: vec!["user.id".to_string(), "enduser.*".to_string()],
                    action: PiiAction::Hash,
                },
                PiiAttributeRule {
                    name: String::new(),
                    keys: vec!["http.request.header.cookie".to_string()],
                    action: PiiAction::Redact,
                },
            ],
            patterns: vec![
                PiiPatternRule {
                    name: "email".to_string(),
                    regex: None,
                    action: PiiAction::Redact,
                },
                PiiPatternRule {
                    name: "ipv4".to_string(),
                    regex: None,
                    action: PiiAction::Hash,
                },
                PiiPatternRule {
                    name: "custom_order".to_string(),
                    regex: Some("ORD-[0-9]{6}".to_string()),
                    action: PiiAction::Redact,
                },
            ],
        }
    );
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn typo_config_names_key_and_line() {
    sluice_pipeline::testing::assert_misspelt_key::<PiiProcessorConfig>(
        include_str!("testdata/typo_config.yaml"),
        "hash_lenght",
        2,
    );
}

fn parse_errors(yaml: &str) -> Vec<sluice_pipeline::config::ConfigError> {
    let node = parse_yaml(yaml, "pii.yaml").expect("yaml");
    match PiiProcessorFactory.parse_config(&node) {
        Ok(_) => panic!("config must be rejected"),
        Err(e) => e,
    }
}

#[test]
fn hash_without_key_is_rejected() {
    let e = parse_errors(include_str!("testdata/missing_key.yaml"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key_path(), "key");
    assert!(e[0].message.contains("key is required"), "{}", e[0]);
}

#[test]
fn unknown_builtin_is_rejected_at_its_line() {
    let e = parse_errors(include_str!("testdata/unknown_pattern.yaml"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key_path(), "patterns::1::name");
    assert_eq!(e[0].mark.as_ref().map(|m| m.line), Some(3));
    assert!(
        e[0].message.contains("unknown built-in pattern `emial`"),
        "{}",
        e[0]
    );
}

#[test]
fn invalid_settings_are_rejected() {
    let e = parse_errors("patterns:\n  - { name: x, regex: \"(unclosed\" }\n");
    assert_eq!(e[0].key_path(), "patterns::0::regex");
    let e = parse_errors("hash_length: 4\n");
    assert_eq!(e[0].key_path(), "hash_length");
    let e = parse_errors("attributes:\n  - { keys: [] }\n");
    assert_eq!(e[0].key_path(), "attributes::0::keys");
    let e = parse_errors("patterns:\n  - { name: email }\n  - { name: email }\n");
    assert_eq!(e[0].key_path(), "patterns::1::name");
}

#[test]
fn example_parses() {
    let node = parse_yaml(PiiProcessorFactory::EXAMPLE, "example").expect("yaml");
    assert!(PiiProcessorFactory.parse_config(&node).is_ok());
}
