//! The `pii` processor: hashes or redacts personal data and secrets before telemetry leaves
//! the machine.
//!
//! - **Signals**: traces, metrics and logs, in place.
//! - **Attribute rules** match keys, exact or `*` globs, on resource, scope, span, span event
//!   and link, metric data point and exemplar, and log record attributes, and the keys of
//!   nested key-value lists (in attributes and log bodies). A matching key's whole value is
//!   replaced (each leaf of an array or list; non-string leaves become strings).
//! - **Pattern rules** search every other string of attributes and log bodies, at any depth:
//!   built-in `email`, `ipv4`, `ipv6`, `credit_card` (Luhn-checked, spaces or dashes allowed),
//!   `bearer_token` (the token after `Bearer`), `api_key` (`sk-…`, `ghp_…`, `AKIA…`, Slack
//!   and Google shapes, and the value of `key=`/`token=`/`password=`/`secret=`… pairs), `jwt`,
//!   or a `regex` of one's own (a group named `secret` narrows what is replaced). Only the
//!   matched text changes; the rest is kept byte for byte.
//! - **Actions**: `hash` writes the lowercase hex HMAC-SHA256 of the value under `key`, cut to
//!   `hash_length` (same value and key, same hash; another key, another hash); `redact` writes
//!   `mask` (`***`).
//! - **Delivery guarantee**: drops nothing, holds nothing: every batch leaves as it came in,
//!   scrubbed.
//! - **Self-telemetry**: `sluice_processor_pii_changes{rule="…"}`, one per value an attribute
//!   rule replaced and one per match a pattern rule replaced.
//! - **Cost**: regexes compile once; a string is first tested against one `RegexSet` of all
//!   patterns, and nothing is allocated when nothing matches.
//!
//! ```yaml
//! processors:
//!   pii:
//!     key: ${env:PII_HASH_KEY}
//!     hash_length: 16
//!     attributes:
//!       - { keys: ["user.id", "enduser.*"], action: hash }
//!     patterns:
//!       - { name: email, action: redact }
//!       - { name: ipv4, action: hash }
//!       - { name: custom_order, regex: "ORD-[0-9]{6}", action: redact }
//! ```

mod config;
mod patterns;
mod processor;
mod scrub;
#[cfg(test)]
mod tests;

pub use config::{
    PiiAction, PiiAttributeRule, PiiPatternRule, PiiProcessorConfig, FULL_HASH_LENGTH,
    MIN_HASH_LENGTH,
};
pub use patterns::builtin::NAMES as BUILTIN_PATTERNS;
pub use processor::{PiiProcessor, CHANGES_METRIC};

use sluice_pipeline::factory::{ComponentContext, Processor, ProcessorPlugin, Stability};
use sluice_pipeline::{BuildError, Signal};

/// The factory of the `pii` processor.
#[derive(Debug, Clone, Copy, Default)]
pub struct PiiProcessorFactory;

impl ProcessorPlugin for PiiProcessorFactory {
    type Config = PiiProcessorConfig;
    const TYPE: &'static str = "pii";
    const SIGNALS: &'static [Signal] = &[Signal::Traces, Signal::Metrics, Signal::Logs];
    const STABILITY: Stability = Stability::Alpha;
    const EXAMPLE: &'static str = "patterns:\n  - { name: email, action: redact }\n  - { name: credit_card, action: redact }\n";

    fn build(
        &self,
        config: PiiProcessorConfig,
        ctx: ComponentContext,
    ) -> Result<Box<dyn Processor>, BuildError> {
        Ok(Box::new(PiiProcessor::new(&config, &ctx.telemetry)?))
    }
}

sluice_pipeline::register_processor!(PiiProcessorFactory);
