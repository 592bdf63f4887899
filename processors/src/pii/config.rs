//! The `pii` processor's configuration: attribute-key rules, value-pattern rules, and what
//! `hash` and `redact` write.

use std::collections::HashSet;

use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::Validate;

use super::patterns::builtin;

/// Shortest `hash_length` accepted: shorter hashes collide too easily to join on.
pub const MIN_HASH_LENGTH: usize = 8;
/// Length of a full HMAC-SHA256 in hex, and the default `hash_length`.
pub const FULL_HASH_LENGTH: usize = 64;

/// Configuration of the `pii` processor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiProcessorConfig {
    /// The HMAC-SHA256 key of the `hash` action, usually `${env:PII_HASH_KEY}`. Required (non
    /// empty) when any rule hashes; the same value under the same key always hashes alike, under
    /// another key differently. Default empty.
    pub key: String,
    /// Hex digits kept of a hash, from 8 to 64 (the whole HMAC-SHA256). Default `64`.
    pub hash_length: usize,
    /// What `redact` writes in place of a value or a matched secret. Default `***`.
    pub mask: String,
    /// Rules on attribute keys (resource, scope, span, span event and link, data point,
    /// exemplar and log record attributes, and keys of nested key-value lists, in attributes
    /// and log bodies). The whole value of a matching key is acted on (every leaf of an array
    /// or key-value list; a non-string leaf is replaced by the string the action writes).
    /// The first matching rule wins. Default none.
    pub attributes: Vec<PiiAttributeRule>,
    /// Rules on values: patterns searched in every string of attributes and log bodies (at any
    /// depth) not already handled by an attribute rule. Only the matched text is replaced; the
    /// rest is kept byte for byte. Where matches of several rules overlap, the one starting
    /// first (then the longest, then the earlier rule) wins. Default none.
    pub patterns: Vec<PiiPatternRule>,
}

impl Default for PiiProcessorConfig {
    fn default() -> Self {
        PiiProcessorConfig {
            key: String::new(),
            hash_length: FULL_HASH_LENGTH,
            mask: "***".to_string(),
            attributes: Vec::new(),
            patterns: Vec::new(),
        }
    }
}

/// What to do with a matching value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiAction {
    /// Replace with the lowercase hex HMAC-SHA256 of the value under `key` (cut to
    /// `hash_length`): values stay joinable without being readable.
    Hash,
    /// Replace with `mask`.
    Redact,
}

/// A rule on attribute keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiAttributeRule {
    /// The rule's name, the `rule` label of `sluice_processor_pii_changes`. Default: its keys
    /// joined with `,`.
    pub name: String,
    /// Keys, exact (`user.id`) or globs where `*` stands for any run of characters (`enduser.*`,
    /// `*.email`). At least one.
    pub keys: Vec<String>,
    /// `hash` or `redact`. Default `redact`.
    pub action: PiiAction,
}

impl Default for PiiAttributeRule {
    fn default() -> Self {
        PiiAttributeRule {
            name: String::new(),
            keys: Vec::new(),
            action: PiiAction::Redact,
        }
    }
}

impl PiiAttributeRule {
    /// The name the rule is counted under.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.keys.join(",")
        } else {
            self.name.clone()
        }
    }
}

/// A rule on values: a built-in pattern or a regex of one's own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiPatternRule {
    /// The rule's name, the `rule` label of `sluice_processor_pii_changes`. Without `regex` it
    /// names a built-in pattern: `email`, `ipv4`, `ipv6`, `credit_card`, `bearer_token`,
    /// `api_key`, `jwt`. Required.
    pub name: String,
    /// A regex (Rust `regex` syntax) to search for instead of a built-in pattern. If it has a
    /// group named `secret`, only that group's text is replaced (`token=(?P<secret>\S+)`).
    /// Default none.
    pub regex: Option<String>,
    /// `hash` or `redact`. Default `redact`.
    pub action: PiiAction,
}

impl Default for PiiPatternRule {
    fn default() -> Self {
        PiiPatternRule {
            name: String::new(),
            regex: None,
            action: PiiAction::Redact,
        }
    }
}

impl PiiProcessorConfig {
    /// Whether any rule hashes (and so needs `key`).
    pub fn uses_hash(&self) -> bool {
        self.attributes.iter().any(|r| r.action == PiiAction::Hash)
            || self.patterns.iter().any(|r| r.action == PiiAction::Hash)
    }
}

impl Validate for PiiProcessorConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.uses_hash() && self.key.is_empty() {
            return Err(ValidationError::new(
                "key",
                "a non-empty key is required when a rule has `action: hash` (e.g. `key: ${env:PII_HASH_KEY}`)",
            ));
        }
        if !(MIN_HASH_LENGTH..=FULL_HASH_LENGTH).contains(&self.hash_length) {
            return Err(ValidationError::new(
                "hash_length",
                format!(
                    "must be from {MIN_HASH_LENGTH} to {FULL_HASH_LENGTH} hex digits, found {}",
                    self.hash_length
                ),
            ));
        }
        let mut names = HashSet::new();
        for (i, rule) in self.attributes.iter().enumerate() {
            let at = format!("attributes::{i}");
            if rule.keys.is_empty() {
                return Err(ValidationError::new(
                    format!("{at}::keys"),
                    "at least one key (exact, or a glob with `*`) is required",
                ));
            }
            if let Some(k) = rule.keys.iter().position(String::is_empty) {
                return Err(ValidationError::new(
                    format!("{at}::keys::{k}"),
                    "a key must not be empty",
                ));
            }
            let label = rule.label();
            if !names.insert(label.clone()) {
                return Err(ValidationError::new(
                    at,
                    format!("rule name `{label}` is used twice: give one a distinct `name`"),
                ));
            }
        }
        for (i, rule) in self.patterns.iter().enumerate() {
            let at = format!("patterns::{i}");
            if rule.name.is_empty() {
                return Err(ValidationError::new(
                    format!("{at}::name"),
                    format!(
                        "a name is required: a built-in pattern ({}) or, with `regex`, a name of your own",
                        builtin::NAMES.join(", ")
                    ),
                ));
            }
            match &rule.regex {
                None if builtin::get(&rule.name).is_none() => {
                    return Err(ValidationError::new(
                        format!("{at}::name"),
                        format!(
                            "unknown built-in pattern `{}`: expected one of {}, or give a `regex`",
                            rule.name,
                            builtin::NAMES.join(", ")
                        ),
                    ));
                }
                None => {}
                Some(re) => {
                    if let Err(e) = regex::Regex::new(re) {
                        return Err(ValidationError::new(
                            format!("{at}::regex"),
                            format!("invalid regex: {e}"),
                        ));
                    }
                    if re.is_empty() {
                        return Err(ValidationError::new(
                            format!("{at}::regex"),
                            "a regex must not be empty",
                        ));
                    }
                }
            }
            if !names.insert(rule.name.clone()) {
                return Err(ValidationError::new(
                    format!("{at}::name"),
                    format!(
                        "rule name `{}` is used twice: rule names label the change counter",
                        rule.name
                    ),
                ));
            }
        }
        Ok(())
    }
}
