//! The `sli` processor's configuration: the SLI rules (REQUIREMENTS R4), their thresholds,
//! windows and how a value is computed from the metrics that flow by.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use sluice_pipeline::config::ValidationError;
use sluice_pipeline::Validate;

/// Attribute names every alert log record carries; labels may not reuse them.
pub const RESERVED_ATTRIBUTES: &[&str] = &[
    "alert_id",
    "severity",
    "state",
    "sli_name",
    "current_value",
    "threshold",
    "threshold_type",
    "timestamp",
    "trace_id",
];

/// Configuration of the `sli` processor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SliProcessorConfig {
    /// Labels added to every alert of every SLI (`module`, `environment`, …), in the AlertEvent's
    /// `labels` and as log record attributes. An SLI's own `labels` override these. Default none.
    pub labels: BTreeMap<String, String>,
    /// The SLIs to evaluate. At least one.
    pub slis: Vec<SliRule>,
    /// Most series (distinct metric name, resource and point attributes) one SLI keeps in its
    /// window; points of further series are ignored, counted and logged. Default `1000`.
    pub max_series: usize,
}

impl Default for SliProcessorConfig {
    fn default() -> Self {
        SliProcessorConfig {
            labels: BTreeMap::new(),
            slis: Vec::new(),
            max_series: 1000,
        }
    }
}

/// How an SLI's value is computed from the points in its window.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub enum Aggregation {
    /// A percentile, `p<number>` with the number in (0, 100]: `p95`, `p99`, `p99.9`. From
    /// histograms, interpolated as Prometheus' `histogram_quantile`; from gauge or sum points,
    /// exactly (nearest rank).
    Percentile(f64),
    /// The mean: of gauge/sum point values, or sum/count of the histogram observations.
    Avg,
    /// The largest gauge/sum point value.
    Max,
    /// The smallest gauge/sum point value.
    Min,
    /// The per-second increase of a counter (monotonic sum), reset-aware.
    Rate,
    /// `numerator` amount / `denominator` amount.
    Ratio,
}

impl Aggregation {
    /// The quantile in [0, 1] of a percentile aggregation.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Aggregation::Percentile(p) => Some(p / 100.0),
            _ => None,
        }
    }
}

impl TryFrom<String> for Aggregation {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "avg" => Ok(Aggregation::Avg),
            "max" => Ok(Aggregation::Max),
            "min" => Ok(Aggregation::Min),
            "rate" => Ok(Aggregation::Rate),
            "ratio" => Ok(Aggregation::Ratio),
            _ => {
                let p = s
                    .strip_prefix('p')
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|p| *p > 0.0 && *p <= 100.0);
                p.map(Aggregation::Percentile).ok_or_else(|| {
                    format!(
                        "unknown aggregation `{s}`: expected p95, p99 (any p<number> in (0, 100]), avg, max, min, rate or ratio"
                    )
                })
            }
        }
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregation::Percentile(p) => write!(f, "p{p}"),
            Aggregation::Avg => f.write_str("avg"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::Min => f.write_str("min"),
            Aggregation::Rate => f.write_str("rate"),
            Aggregation::Ratio => f.write_str("ratio"),
        }
    }
}

/// Which side of the thresholds is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A value above a threshold breaches it (latencies, loss rates).
    Above,
    /// A value below a threshold breaches it (throughput, availability).
    Below,
}

impl Direction {
    /// `above` or `below`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
        }
    }

    /// Whether `value` breaches `threshold` (strictly: `> 400 ms` breaches at 400.1, not 400).
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Direction::Above => value > threshold,
            Direction::Below => value < threshold,
        }
    }
}

/// Which points feed one side of an SLI (its main input, or a ratio's numerator/denominator).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SliSelector {
    /// The metric name. Default: the SLI's `metric`.
    pub metric: String,
    /// Attributes a point must have (point attributes first, then resource attributes; values
    /// compared as text), on top of the SLI's `attributes`. Default none.
    pub attributes: BTreeMap<String, String>,
}

/// One SLI: what to compute, and its Yellow/Orange/Red thresholds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SliRule {
    /// The SLI's name, unique in this processor (`session_establishment_latency_p95`). Required.
    pub sli_name: String,
    /// The metric the SLI reads. Required, except for `ratio` when both sides name their metric.
    pub metric: String,
    /// Attributes a point must have (point attributes first, then resource attributes; values
    /// compared as text). Default none: every point of the metric.
    pub attributes: BTreeMap<String, String>,
    /// `p95`, `p99` (any `p<number>`), `avg`, `max`, `min`, `rate` or `ratio`. Default `p95`.
    pub aggregation: Aggregation,
    /// For `ratio`: the points counted above the line (`{metric: packets.lost}`). Required for
    /// `ratio`, refused otherwise.
    pub numerator: Option<SliSelector>,
    /// For `ratio`: the points counted below the line (`{metric: packets.sent}`). Required for
    /// `ratio`, refused otherwise. A window whose denominator is 0 is not evaluated.
    pub denominator: Option<SliSelector>,
    /// `above` (a value above a threshold breaches it) or `below`. Default `above`.
    pub direction: Direction,
    /// The Yellow threshold, in the metric's unit. Fires after `consecutive_breaches`.
    pub yellow: Option<f64>,
    /// The Orange threshold. Fires after `consecutive_breaches`.
    pub orange: Option<f64>,
    /// The Red threshold. Fires on a single breach.
    pub red: Option<f64>,
    /// The span of data each evaluation looks at, ending at the evaluation time. Default `5m`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub evaluation_window: Duration,
    /// How often (in data time) the SLI is evaluated; evaluations fall on multiples of it since
    /// the Unix epoch. At most `evaluation_window`. Default `1m`.
    #[serde(with = "sluice_pipeline::config::duration")]
    pub evaluation_interval: Duration,
    /// Consecutive breaching evaluations, all within `evaluation_window`, that fire Yellow or
    /// Orange. Red needs one. Default `3`.
    pub consecutive_breaches: u32,
    /// Fraction of the lowest threshold the value must come back past before an alert resolves:
    /// for `above`, below `threshold − |threshold| × hysteresis`. From 0 to under 1. Default `0.1`.
    pub hysteresis: f64,
    /// Labels of this SLI's alerts, over the processor's `labels`. Default none.
    pub labels: BTreeMap<String, String>,
}

impl Default for SliRule {
    fn default() -> Self {
        SliRule {
            sli_name: String::new(),
            metric: String::new(),
            attributes: BTreeMap::new(),
            aggregation: Aggregation::Percentile(95.0),
            numerator: None,
            denominator: None,
            direction: Direction::Above,
            yellow: None,
            orange: None,
            red: None,
            evaluation_window: Duration::from_secs(300),
            evaluation_interval: Duration::from_secs(60),
            consecutive_breaches: 3,
            hysteresis: 0.1,
            labels: BTreeMap::new(),
        }
    }
}

impl SliRule {
    /// The configured thresholds, least severe first.
    pub fn thresholds(&self) -> [(super::Severity, Option<f64>); 3] {
        [
            (super::Severity::Yellow, self.yellow),
            (super::Severity::Orange, self.orange),
            (super::Severity::Red, self.red),
        ]
    }

    /// The selector of the main input or of a ratio side, with the SLI's defaults filled in.
    pub fn resolved_selector(&self, side: Option<&SliSelector>) -> SliSelector {
        let mut sel = SliSelector {
            metric: self.metric.clone(),
            attributes: self.attributes.clone(),
        };
        if let Some(side) = side {
            if !side.metric.is_empty() {
                sel.metric = side.metric.clone();
            }
            sel.attributes
                .extend(side.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        sel
    }

    fn validate(&self) -> Result<(), ValidationError> {
        if self.sli_name.trim().is_empty() {
            return Err(ValidationError::new("sli_name", "must not be empty"));
        }
        let is_ratio = self.aggregation == Aggregation::Ratio;
        if is_ratio {
            for (key, side) in [
                ("numerator", &self.numerator),
                ("denominator", &self.denominator),
            ] {
                match side {
                    None => return Err(ValidationError::new(
                        key,
                        "is required with `aggregation: ratio` (e.g. `{ metric: packets.lost }`)",
                    )),
                    Some(s) if s.metric.is_empty() && self.metric.is_empty() => {
                        return Err(ValidationError::new(
                            key,
                            "names no metric and the SLI has no `metric` to default to",
                        ))
                    }
                    Some(_) => {}
                }
            }
        } else {
            if self.metric.is_empty() {
                return Err(ValidationError::new("metric", "must not be empty"));
            }
            for (key, side) in [
                ("numerator", &self.numerator),
                ("denominator", &self.denominator),
            ] {
                if side.is_some() {
                    return Err(ValidationError::new(
                        key,
                        format!(
                            "only applies to `aggregation: ratio`, not `{}`",
                            self.aggregation
                        ),
                    ));
                }
            }
        }
        let set: Vec<(super::Severity, f64)> = self
            .thresholds()
            .into_iter()
            .filter_map(|(s, t)| t.map(|t| (s, t)))
            .collect();
        if set.is_empty() {
            return Err(ValidationError::new(
                "red",
                "at least one of `yellow`, `orange`, `red` must be set",
            ));
        }
        for (s, t) in &set {
            if !t.is_finite() {
                return Err(ValidationError::new(
                    s.as_str(),
                    format!("must be a finite number, found {t}"),
                ));
            }
        }
        for pair in set.windows(2) {
            let ((low_sev, low), (high_sev, high)) = (pair[0], pair[1]);
            let ordered = match self.direction {
                Direction::Above => low < high,
                Direction::Below => low > high,
            };
            if !ordered {
                let word = match self.direction {
                    Direction::Above => "above",
                    Direction::Below => "below",
                };
                return Err(ValidationError::new(
                    high_sev.as_str(),
                    format!(
                        "must be strictly {word} `{}` ({low}) with `direction: {}`, found {high}",
                        low_sev.as_str(),
                        self.direction.as_str()
                    ),
                ));
            }
        }
        if self.evaluation_window.is_zero() {
            return Err(ValidationError::new(
                "evaluation_window",
                "must be longer than 0s",
            ));
        }
        if self.evaluation_interval.is_zero() || self.evaluation_interval > self.evaluation_window {
            return Err(ValidationError::new(
                "evaluation_interval",
                format!(
                    "must be longer than 0s and at most evaluation_window ({}), found {}",
                    humantime::format_duration(self.evaluation_window),
                    humantime::format_duration(self.evaluation_interval)
                ),
            ));
        }
        if self.consecutive_breaches == 0 {
            return Err(ValidationError::new(
                "consecutive_breaches",
                "must be at least 1",
            ));
        }
        let span = self
            .evaluation_interval
            .saturating_mul(self.consecutive_breaches - 1);
        if span >= self.evaluation_window {
            return Err(ValidationError::new(
                "consecutive_breaches",
                format!(
                    "{} breaches {} apart span {}, which does not fit within evaluation_window ({}): Yellow and Orange could never fire",
                    self.consecutive_breaches,
                    humantime::format_duration(self.evaluation_interval),
                    humantime::format_duration(span),
                    humantime::format_duration(self.evaluation_window)
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.hysteresis) {
            return Err(ValidationError::new(
                "hysteresis",
                format!("must be from 0 to under 1, found {}", self.hysteresis),
            ));
        }
        validate_labels(&self.labels).map_err(|e| e.under("labels"))?;
        Ok(())
    }
}

fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    for key in labels.keys() {
        if key.is_empty() {
            return Err(ValidationError::new("", "a label name must not be empty"));
        }
        if RESERVED_ATTRIBUTES.contains(&key.as_str()) {
            return Err(ValidationError::new(
                key.as_str(),
                format!("`{key}` is an attribute every alert carries; choose another label name"),
            ));
        }
    }
    Ok(())
}

impl Validate for SliProcessorConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.slis.is_empty() {
            return Err(ValidationError::new("slis", "at least one SLI is required"));
        }
        if self.max_series == 0 {
            return Err(ValidationError::new("max_series", "must be at least 1"));
        }
        validate_labels(&self.labels).map_err(|e| e.under("labels"))?;
        for (i, rule) in self.slis.iter().enumerate() {
            rule.validate()
                .map_err(|e| e.under(&format!("slis::{i}")))?;
            if let Some(j) = self.slis[..i]
                .iter()
                .position(|r| r.sli_name == rule.sli_name)
            {
                return Err(ValidationError::new(
                    format!("slis::{i}::sli_name"),
                    format!(
                        "`{}` is already the name of SLI {j}; names must be unique",
                        rule.sli_name
                    ),
                ));
            }
        }
        Ok(())
    }
}
