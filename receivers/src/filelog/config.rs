//! The `filelog` receiver's configuration. Option names follow the Collector's filelogreceiver
//! (`include`, `exclude`, `start_at`, `poll_interval`, `multiline.line_start_pattern`,
//! `encoding`, `max_log_size`, `include_file_name`, `include_file_path`); parsing is flattened
//! into `format`, `json` and `severity` instead of the Collector's operator chain.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::Validate;

/// The default `max_log_size`: 1 MiB.
pub const DEFAULT_MAX_LOG_SIZE: usize = 1024 * 1024;

/// Configuration of the `filelog` receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilelogReceiverConfig {
    /// Glob patterns of the files to tail (`*`, `?`, `[abc]` within a path component, `**` for
    /// any depth of directories). Re-evaluated every `poll_interval`, so new files are picked up.
    /// Required, at least one.
    pub include: Vec<String>,
    /// Glob patterns of files not to tail, even if `include` matches them. Default none.
    pub exclude: Vec<String>,
    /// How often to look for new files and read what the tailed ones gained. Default `200ms`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub poll_interval: Duration,
    /// Where to start reading a file found at startup that has no checkpoint: `beginning` or
    /// `end` (default, as the Collector). Files that appear later are always read from their
    /// beginning; a file with a checkpoint resumes at it.
    pub start_at: StartAt,
    /// The file encoding: `utf-8` only (the default). Invalid bytes become U+FFFD; each record
    /// that needed a replacement is counted in `sluice_receiver_filelog_invalid_utf8_records`.
    pub encoding: String,
    /// The longest record, in bytes (an integer, or a string like `64KiB`, `1MiB`). Longer lines
    /// are split into records of at most this size, counted in
    /// `sluice_receiver_filelog_split_records`. Default `1MiB`.
    #[serde(deserialize_with = "byte_size")]
    pub max_log_size: usize,
    /// Most records per batch sent into the pipeline. Default `1000`.
    pub max_batch_size: usize,
    /// Joins lines into multi-line records.
    pub multiline: Option<MultilineConfig>,
    /// How each record is parsed: `plain` (the default) or `json`.
    pub format: LogFormat,
    /// For `format: json`: which fields become the body and severity.
    pub json: JsonConfig,
    /// Where the severity comes from. Default: none.
    pub severity: Option<SeverityConfig>,
    /// Add the file's name as attribute `log.file.name`. Default `true`.
    pub include_file_name: bool,
    /// Add the file's path as attribute `log.file.path`. Default `false`.
    pub include_file_path: bool,
    /// The directory for checkpoints (file identity and acknowledged offset). Default: this
    /// component's storage directory under the service's `data_dir`
    /// (`<data_dir>/receiver/filelog[_<name>]`).
    pub storage: Option<PathBuf>,
}

impl Default for FilelogReceiverConfig {
    fn default() -> Self {
        FilelogReceiverConfig {
            include: Vec::new(),
            exclude: Vec::new(),
            poll_interval: Duration::from_millis(200),
            start_at: StartAt::End,
            encoding: "utf-8".to_string(),
            max_log_size: DEFAULT_MAX_LOG_SIZE,
            max_batch_size: 1000,
            multiline: None,
            format: LogFormat::Plain,
            json: JsonConfig::default(),
            severity: None,
            include_file_name: true,
            include_file_path: false,
            storage: None,
        }
    }
}

/// Where to start reading a file found at startup without a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// From its first byte.
    Beginning,
    /// From its current end: only what is written from now on.
    End,
}

/// How records are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// The record's text is the body.
    Plain,
    /// Each record is a JSON object; see [`JsonConfig`]. A record that is not a JSON object is
    /// kept as a plain body and counted in `sluice_receiver_filelog_json_errors`.
    Json,
}

/// Multi-line records.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A regex matching the first line of each record; the following lines that do not match
    /// belong to it. Lines before the first match are records of their own.
    pub line_start_pattern: String,
}

/// For `format: json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonConfig {
    /// The field whose value becomes the body (and is removed from the attributes). Default
    /// none: the body is the line as read and every field becomes an attribute.
    pub body_field: Option<String>,
}

/// Where a record's severity comes from: a JSON field or a regex with a named group `severity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeverityConfig {
    /// For `format: json`: the field holding the severity text (`level`).
    pub field: Option<String>,
    /// A regex applied to the record's text, with a named group `severity`
    /// (`^\S+ (?P<severity>[A-Z]+) `).
    pub regex: Option<String>,
}

fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => usize::try_from(n).map_err(de::Error::custom),
        Raw::Text(s) => parse_byte_size(&s).map_err(de::Error::custom),
    }
}

/// Parses `1024`, `64KiB`, `1MiB`, `1MB`, `16kb` into bytes (binary and decimal units).
pub fn parse_byte_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("invalid size `{s}`: expected a number of bytes, or like `1MiB`"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
            "invalid size `{s}`: unknown unit `{other}`, expected B, KiB, MiB, GiB, kB, MB or GB"
        ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size `{s}`: too large"))
}

impl Validate for FilelogReceiverConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.include.is_empty() {
            return Err(ValidationError::new(
                "include",
                "expected at least one glob pattern of files to tail, like `/var/log/*.log`",
            ));
        }
        for (key, list) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (i, p) in list.iter().enumerate() {
                if let Err(e) = super::glob::Pattern::new(p) {
                    return Err(ValidationError::new(format!("{key}::{i}"), e));
                }
            }
        }
        if self.poll_interval.is_zero() {
            return Err(ValidationError::new(
                "poll_interval",
                "expected a duration above zero, like `200ms`",
            ));
        }
        if !matches!(
            self.encoding.to_ascii_lowercase().as_str(),
            "utf-8" | "utf8"
        ) {
            return Err(ValidationError::new(
                "encoding",
                format!("unsupported encoding `{}`: only `utf-8` is", self.encoding),
            ));
        }
        if self.max_log_size == 0 {
            return Err(ValidationError::new(
                "max_log_size",
                "expected a size above zero, like `1MiB`",
            ));
        }
        if self.max_batch_size == 0 {
            return Err(ValidationError::new(
                "max_batch_size",
                "expected a number of records above zero",
            ));
        }
        if let Some(m) = &self.multiline {
            if let Err(e) = regex::bytes::Regex::new(&m.line_start_pattern) {
                return Err(ValidationError::new(
                    "multiline::line_start_pattern",
                    format!("invalid regex: {e}"),
                ));
            }
        }
        if let Some(s) = &self.severity {
            match (&s.field, &s.regex) {
                (None, None) | (Some(_), Some(_)) => {
                    return Err(ValidationError::new(
                        "severity",
                        "expected exactly one of `field` (a JSON field) or `regex`",
                    ))
                }
                (Some(_), None) if self.format != LogFormat::Json => {
                    return Err(ValidationError::new(
                        "severity::field",
                        "a severity field needs `format: json`; use `regex` for plain text",
                    ))
                }
                (None, Some(r)) => match regex::Regex::new(r) {
                    Err(e) => {
                        return Err(ValidationError::new(
                            "severity::regex",
                            format!("invalid regex: {e}"),
                        ))
                    }
                    Ok(re) if !re.capture_names().any(|n| n == Some("severity")) => {
                        return Err(ValidationError::new(
                            "severity::regex",
                            "expected a named group `(?P<severity>…)`",
                        ))
                    }
                    Ok(_) => {}
                },
                _ => {}
            }
        }
        if self.json.body_field.is_some() && self.format != LogFormat::Json {
            return Err(ValidationError::new(
                "json::body_field",
                "applies only with `format: json`",
            ));
        }
        Ok(())
    }
}
