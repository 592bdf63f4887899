//! The alert rules of one SLI: when Yellow, Orange and Red fire, and when an alert resolves.
//!
//! - A value *breaches* a threshold when it is strictly past it (`> 400` for `direction: above`).
//!   Its *level* is the most severe threshold it breaches.
//! - **Red** fires on a single breaching evaluation.
//! - **Orange** and **Yellow** fire after `consecutive_breaches` consecutive evaluations at or
//!   past their level, all within `evaluation_window` (an evaluation at a lower level breaks the
//!   run). A breach of a higher level counts for the lower ones too.
//! - One alert per SLI at a time. It fires when a severity becomes due and nothing is active,
//!   and fires again (same `alert_id`, new severity) when a more severe one becomes due: it
//!   escalates, never steps down while active.
//! - It **resolves** when the value comes back past the least severe threshold by the hysteresis:
//!   at or below `t − |t| × hysteresis` for `above` (at or above `t + |t| × hysteresis` for
//!   `below`). Values between that and the threshold neither fire nor resolve; the runs of
//!   breaches restart from zero after a resolution.

use super::config::{Direction, SliRule};

/// An alert's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Yellow = 1,
    Orange = 2,
    Red = 3,
}

impl Severity {
    /// `yellow`, `orange` or `red`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Yellow => "yellow",
            Severity::Orange => "orange",
            Severity::Red => "red",
        }
    }

    /// The `sluice.sli.status` value: 1, 2 or 3.
    pub fn status(self) -> i64 {
        self as i64
    }
}

/// Whether an alert fired (or escalated) or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Fired,
    Resolved,
}

impl Change {
    /// `firing` or `resolved`, the AlertEvent's `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Fired => "firing",
            Change::Resolved => "resolved",
        }
    }
}

/// What an evaluation changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub change: Change,
    /// Stable from the first firing to the resolution.
    pub alert_id: String,
    /// Fired: the severity that fired. Resolved: the severity that resolved.
    pub severity: Severity,
    /// Fired: the threshold of `severity`. Resolved: the value it came back past (the least
    /// severe threshold moved by the hysteresis).
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Active {
    alert_id: String,
    severity: Severity,
}

/// Thresholds and counting rules, taken from an [`SliRule`].
#[derive(Debug, Clone)]
pub struct AlertRules {
    sli_name: String,
    direction: Direction,
    yellow: Option<f64>,
    orange: Option<f64>,
    red: Option<f64>,
    consecutive: usize,
    window_ns: u64,
    hysteresis: f64,
}

impl AlertRules {
    /// The rules of `rule`.
    pub fn new(rule: &SliRule) -> AlertRules {
        AlertRules {
            sli_name: rule.sli_name.clone(),
            direction: rule.direction,
            yellow: rule.yellow,
            orange: rule.orange,
            red: rule.red,
            consecutive: rule.consecutive_breaches.max(1) as usize,
            window_ns: rule.evaluation_window.as_nanos().min(u64::MAX as u128) as u64,
            hysteresis: rule.hysteresis,
        }
    }

    fn threshold(&self, s: Severity) -> Option<f64> {
        match s {
            Severity::Yellow => self.yellow,
            Severity::Orange => self.orange,
            Severity::Red => self.red,
        }
    }

    /// The most severe threshold `value` breaches.
    pub fn level(&self, value: f64) -> Option<Severity> {
        [Severity::Red, Severity::Orange, Severity::Yellow]
            .into_iter()
            .find(|s| {
                self.threshold(*s)
                    .is_some_and(|t| self.direction.breaches(value, t))
            })
    }

    /// The value an active alert must come back to (inclusive) to resolve.
    pub fn resolve_threshold(&self) -> f64 {
        let lowest = self.yellow.or(self.orange).or(self.red).unwrap_or(0.0);
        match self.direction {
            Direction::Above => lowest - lowest.abs() * self.hysteresis,
            Direction::Below => lowest + lowest.abs() * self.hysteresis,
        }
    }

    fn resolves(&self, value: f64) -> bool {
        let r = self.resolve_threshold();
        match self.direction {
            Direction::Above => value <= r,
            Direction::Below => value >= r,
        }
    }
}

/// The alert state of one SLI.
#[derive(Debug, Clone, Default)]
pub struct AlertState {
    active: Option<Active>,
    /// Times of the current run of consecutive breaches at or past Yellow, and Orange.
    runs: [Vec<u64>; 2],
}

impl AlertState {
    /// The active alert's severity, if any.
    pub fn severity(&self) -> Option<Severity> {
        self.active.as_ref().map(|a| a.severity)
    }

    /// The `sluice.sli.status` value: 0 ok, 1 yellow, 2 orange, 3 red.
    pub fn status(&self) -> i64 {
        self.severity().map_or(0, Severity::status)
    }

    /// Takes the evaluation of `value` at time `t` (nanoseconds since the epoch).
    pub fn evaluate(&mut self, rules: &AlertRules, t: u64, value: f64) -> Option<Transition> {
        let level = rules.level(value);
        let since = t.saturating_sub(rules.window_ns);
        for (i, sev) in [Severity::Yellow, Severity::Orange].into_iter().enumerate() {
            let run = &mut self.runs[i];
            if level.is_some_and(|l| l >= sev) {
                run.push(t);
                run.retain(|x| *x > since);
            } else {
                run.clear();
            }
        }
        let due = if level == Some(Severity::Red) {
            Some(Severity::Red)
        } else if rules.orange.is_some() && self.runs[1].len() >= rules.consecutive {
            Some(Severity::Orange)
        } else if rules.yellow.is_some() && self.runs[0].len() >= rules.consecutive {
            Some(Severity::Yellow)
        } else {
            None
        };
        if let Some(due) = due {
            match &mut self.active {
                Some(a) if a.severity >= due => return None,
                Some(a) => {
                    a.severity = due;
                    return Some(Transition {
                        change: Change::Fired,
                        alert_id: a.alert_id.clone(),
                        severity: due,
                        threshold: rules.threshold(due).unwrap_or(f64::NAN),
                    });
                }
                None => {
                    let alert_id = format!("{}-{}", rules.sli_name, t / 1_000_000);
                    self.active = Some(Active {
                        alert_id: alert_id.clone(),
                        severity: due,
                    });
                    return Some(Transition {
                        change: Change::Fired,
                        alert_id,
                        severity: due,
                        threshold: rules.threshold(due).unwrap_or(f64::NAN),
                    });
                }
            }
        }
        if self.active.is_some() && rules.resolves(value) {
            let a = self.active.take()?;
            self.runs = Default::default();
            return Some(Transition {
                change: Change::Resolved,
                alert_id: a.alert_id,
                severity: a.severity,
                threshold: rules.resolve_threshold(),
            });
        }
        None
    }
}
