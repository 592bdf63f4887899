//! The compiled rules, and how one attribute list, value or string is scrubbed.
//!
//! Cost when nothing matches: a key lookup per attribute, one `RegexSet::is_match` per string,
//! no allocation. Only a string the set flags is searched rule by rule and rebuilt.

use std::cmp::Reverse;

use hmac::{Hmac, KeyInit, Mac};
use regex::{Regex, RegexSet};
use sha2::Sha256;
use sluice_proto::common::v1::{any_value::Value, AnyValue, KeyValue};

use super::config::{PiiAction, PiiProcessorConfig};
use super::patterns::{builtin, Check};

/// One rule's compiled attribute keys.
struct KeyRule {
    keys: Vec<KeyPattern>,
    action: PiiAction,
    /// Index into the per-rule counts.
    rule: usize,
}

/// An exact key or a `*` glob, split at its stars.
enum KeyPattern {
    Exact(String),
    Glob(Vec<String>),
}

impl KeyPattern {
    fn new(key: &str) -> KeyPattern {
        if key.contains('*') {
            KeyPattern::Glob(key.split('*').map(str::to_string).collect())
        } else {
            KeyPattern::Exact(key.to_string())
        }
    }

    fn matches(&self, key: &str) -> bool {
        match self {
            KeyPattern::Exact(k) => k == key,
            KeyPattern::Glob(parts) => glob_matches(parts, key),
        }
    }
}

/// Whether `key` matches the glob whose text between stars is `parts` (at least two parts).
fn glob_matches(parts: &[String], key: &str) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if key.len() < first.len() + last.len() || !key.starts_with(first.as_str()) {
        return false;
    }
    let mut rest = &key[first.len()..];
    if !rest.ends_with(last.as_str()) {
        return false;
    }
    rest = &rest[..rest.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle.as_str()) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// One regex of a pattern rule (a built-in may have several).
struct PatternRegex {
    regex: Regex,
    /// The index of its `secret` group, when only that part is replaced.
    secret: Option<usize>,
    check: Check,
    action: PiiAction,
    rule: usize,
}

/// The processor's rules, compiled once.
pub struct Scrubber {
    key_rules: Vec<KeyRule>,
    /// Every pattern regex, in rule order: the prefilter.
    set: RegexSet,
    regexes: Vec<PatternRegex>,
    mac: Option<Hmac<Sha256>>,
    hash_length: usize,
    mask: String,
    labels: Vec<String>,
}

impl Scrubber {
    /// Compiles a validated config. `Err` says which rule failed and why.
    pub fn new(config: &PiiProcessorConfig) -> Result<Scrubber, String> {
        let mut labels = Vec::new();
        let mut key_rules = Vec::new();
        for rule in &config.attributes {
            key_rules.push(KeyRule {
                keys: rule.keys.iter().map(|k| KeyPattern::new(k)).collect(),
                action: rule.action,
                rule: labels.len(),
            });
            labels.push(rule.label());
        }
        let mut regexes = Vec::new();
        for rule in &config.patterns {
            let (sources, check) = match &rule.regex {
                Some(re) => (vec![re.clone()], Check::None),
                None => {
                    let b = builtin::get(&rule.name)
                        .ok_or_else(|| format!("unknown built-in pattern `{}`", rule.name))?;
                    (builtin::regexes_of(b), b.check)
                }
            };
            for source in sources {
                let regex = Regex::new(&source)
                    .map_err(|e| format!("pattern `{}`: invalid regex: {e}", rule.name))?;
                let secret = regex.capture_names().position(|n| n == Some("secret"));
                regexes.push(PatternRegex {
                    regex,
                    secret,
                    check,
                    action: rule.action,
                    rule: labels.len(),
                });
            }
            labels.push(rule.name.clone());
        }
        let set = RegexSet::new(regexes.iter().map(|r| r.regex.as_str()))
            .map_err(|e| format!("cannot compile the patterns together: {e}"))?;
        let mac = if config.key.is_empty() {
            None
        } else {
            Some(
                Hmac::<Sha256>::new_from_slice(config.key.as_bytes())
                    .map_err(|e| format!("unusable hash key: {e}"))?,
            )
        };
        Ok(Scrubber {
            key_rules,
            set,
            regexes,
            mac,
            hash_length: config.hash_length,
            mask: config.mask.clone(),
            labels,
        })
    }

    /// The rule names, in the order of the counts `scrub_*` add to.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The first attribute rule matching `key`.
    fn rule_for_key(&self, key: &str) -> Option<(usize, PiiAction)> {
        self.key_rules
            .iter()
            .find(|r| r.keys.iter().any(|k| k.matches(key)))
            .map(|r| (r.rule, r.action))
    }

    /// Scrubs an attribute list: values of matching keys whole, other values by pattern.
    pub fn scrub_attributes(&self, attributes: &mut [KeyValue], counts: &mut [u64]) {
        for kv in attributes {
            let Some(value) = kv.value.as_mut() else {
                continue;
            };
            match self.rule_for_key(&kv.key) {
                Some((rule, action)) => self.replace_leaves(value, action, rule, counts),
                None => self.scrub_value(value, counts),
            }
        }
    }

    /// Scrubs a value by pattern, walking arrays and key-value lists (whose keys attribute
    /// rules apply to).
    pub fn scrub_value(&self, value: &mut AnyValue, counts: &mut [u64]) {
        match &mut value.value {
            Some(Value::StringValue(s)) => {
                if let Some(scrubbed) = self.scrub_str(s, counts) {
                    *s = scrubbed;
                }
            }
            Some(Value::ArrayValue(a)) => {
                for v in &mut a.values {
                    self.scrub_value(v, counts);
                }
            }
            Some(Value::KvlistValue(kvs)) => self.scrub_attributes(&mut kvs.values, counts),
            _ => {}
        }
    }

    /// Replaces every leaf of `value` by what `action` writes, counting each under `rule`.
    fn replace_leaves(
        &self,
        value: &mut AnyValue,
        action: PiiAction,
        rule: usize,
        counts: &mut [u64],
    ) {
        let replaced = match &mut value.value {
            None => return,
            Some(Value::ArrayValue(a)) => {
                for v in &mut a.values {
                    self.replace_leaves(v, action, rule, counts);
                }
                return;
            }
            Some(Value::KvlistValue(kvs)) => {
                for v in kvs.values.iter_mut().filter_map(|kv| kv.value.as_mut()) {
                    self.replace_leaves(v, action, rule, counts);
                }
                return;
            }
            Some(Value::StringValue(s)) => self.act(action, s.as_bytes()),
            Some(Value::BytesValue(b)) => self.act(action, b),
            Some(Value::BoolValue(b)) => self.act(action, b.to_string().as_bytes()),
            Some(Value::IntValue(i)) => self.act(action, i.to_string().as_bytes()),
            // An index into a profile's string table: what it names is not here to hash, so
            // the index is replaced like an integer.
            Some(Value::StringValueStrindex(i)) => self.act(action, i.to_string().as_bytes()),
            Some(Value::DoubleValue(d)) => self.act(action, d.to_string().as_bytes()),
        };
        value.value = Some(Value::StringValue(replaced));
        counts[rule] += 1;
    }

    /// `text` with every pattern match replaced, or `None` (and no allocation) when nothing
    /// matches.
    pub fn scrub_str(&self, text: &str, counts: &mut [u64]) -> Option<String> {
        if self.regexes.is_empty() || !self.set.is_match(text) {
            return None;
        }
        // (start, end, regex index) of every candidate that passed its check.
        let mut found: Vec<(usize, usize, usize)> = Vec::new();
        for i in self.set.matches(text).iter() {
            let p = &self.regexes[i];
            match p.secret {
                Some(group) => {
                    for caps in p.regex.captures_iter(text) {
                        if let Some(m) = caps.get(group) {
                            if p.check.passes(text, m.start(), m.end()) {
                                found.push((m.start(), m.end(), i));
                            }
                        }
                    }
                }
                None => {
                    for m in p.regex.find_iter(text) {
                        if p.check.passes(text, m.start(), m.end()) {
                            found.push((m.start(), m.end(), i));
                        }
                    }
                }
            }
        }
        if found.is_empty() {
            return None;
        }
        // Overlaps: the earliest start wins, then the longest, then the earlier rule.
        found.sort_unstable_by_key(|&(start, end, i)| (start, Reverse(end), i));
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for (start, end, i) in found {
            if start < pos || start == end {
                continue;
            }
            let p = &self.regexes[i];
            out.push_str(&text[pos..start]);
            out.push_str(&self.act(p.action, &text.as_bytes()[start..end]));
            counts[p.rule] += 1;
            pos = end;
        }
        out.push_str(&text[pos..]);
        Some(out)
    }

    /// What `action` writes for `input`.
    fn act(&self, action: PiiAction, input: &[u8]) -> String {
        match (action, &self.mac) {
            (PiiAction::Hash, Some(mac)) => {
                let mut mac = mac.clone();
                mac.update(input);
                let digest = mac.finalize().into_bytes();
                let mut hex = hex_lower(&digest);
                hex.truncate(self.hash_length);
                hex
            }
            // Validation requires a key for `hash`; without one, never let the value through.
            (PiiAction::Hash, None) | (PiiAction::Redact, _) => self.mask.clone(),
        }
    }
}

/// Lowercase hex of `bytes`.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}
