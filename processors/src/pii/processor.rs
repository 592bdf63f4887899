//! The `pii` processor: walks every attribute list and log body of a batch through the
//! [`Scrubber`], in place, and counts what it changed per rule.

use sluice_pipeline::factory::Processor;
use sluice_pipeline::telemetry::{ComponentTelemetry, Counter};
use sluice_pipeline::{Batch, BuildError, Payload, ProcessError};
use sluice_proto::common::v1::InstrumentationScope;
use sluice_proto::metrics::v1::{metric, Exemplar, Metric};
use sluice_proto::resource::v1::Resource;

use super::config::PiiProcessorConfig;
use super::scrub::Scrubber;

/// The name of the counter of changes, labelled `rule`: one per value an attribute rule
/// replaced, one per match a pattern rule replaced.
pub const CHANGES_METRIC: &str = "sluice_processor_pii_changes";

/// Hashes or redacts personal data in traces, metrics and logs.
pub struct PiiProcessor {
    scrubber: Scrubber,
    /// One per rule, in the scrubber's label order.
    counters: Vec<Counter>,
    /// Changes per rule in the batch being processed.
    counts: Vec<u64>,
}

impl PiiProcessor {
    /// Compiles `config` (validated) and registers its counters in `telemetry`.
    pub fn new(
        config: &PiiProcessorConfig,
        telemetry: &ComponentTelemetry,
    ) -> Result<PiiProcessor, BuildError> {
        let scrubber = Scrubber::new(config).map_err(BuildError::Config)?;
        let counters: Vec<Counter> = scrubber
            .labels()
            .iter()
            .map(|rule| telemetry.counter_with(CHANGES_METRIC, &[("rule", rule)]))
            .collect();
        let counts = vec![0; counters.len()];
        Ok(PiiProcessor {
            scrubber,
            counters,
            counts,
        })
    }

    /// Scrubs `payload` in place.
    pub fn scrub(&mut self, payload: &mut Payload) {
        let s = &self.scrubber;
        let counts = &mut self.counts[..];
        match payload {
            Payload::Traces(resources) => {
                for rs in resources {
                    scrub_resource(s, rs.resource.as_mut(), counts);
                    for ss in &mut rs.scope_spans {
                        scrub_scope(s, ss.scope.as_mut(), counts);
                        for span in &mut ss.spans {
                            s.scrub_attributes(&mut span.attributes, counts);
                            for event in &mut span.events {
                                s.scrub_attributes(&mut event.attributes, counts);
                            }
                            for link in &mut span.links {
                                s.scrub_attributes(&mut link.attributes, counts);
                            }
                        }
                    }
                }
            }
            Payload::Metrics(resources) => {
                for rm in resources {
                    scrub_resource(s, rm.resource.as_mut(), counts);
                    for sm in &mut rm.scope_metrics {
                        scrub_scope(s, sm.scope.as_mut(), counts);
                        for m in &mut sm.metrics {
                            scrub_metric(s, m, counts);
                        }
                    }
                }
            }
            Payload::Logs(resources) => {
                for rl in resources {
                    scrub_resource(s, rl.resource.as_mut(), counts);
                    for sl in &mut rl.scope_logs {
                        scrub_scope(s, sl.scope.as_mut(), counts);
                        for record in &mut sl.log_records {
                            s.scrub_attributes(&mut record.attributes, counts);
                            if let Some(body) = record.body.as_mut() {
                                s.scrub_value(body, counts);
                            }
                        }
                    }
                }
            }
        }
        for (counter, n) in self.counters.iter().zip(self.counts.iter_mut()) {
            if *n > 0 {
                counter.add(*n);
                *n = 0;
            }
        }
    }
}

fn scrub_resource(s: &Scrubber, resource: Option<&mut Resource>, counts: &mut [u64]) {
    if let Some(r) = resource {
        s.scrub_attributes(&mut r.attributes, counts);
    }
}

fn scrub_scope(s: &Scrubber, scope: Option<&mut InstrumentationScope>, counts: &mut [u64]) {
    if let Some(sc) = scope {
        s.scrub_attributes(&mut sc.attributes, counts);
    }
}

fn scrub_exemplars(s: &Scrubber, exemplars: &mut [Exemplar], counts: &mut [u64]) {
    for e in exemplars {
        s.scrub_attributes(&mut e.filtered_attributes, counts);
    }
}

fn scrub_metric(s: &Scrubber, m: &mut Metric, counts: &mut [u64]) {
    s.scrub_attributes(&mut m.metadata, counts);
    match &mut m.data {
        Some(metric::Data::Gauge(g)) => {
            for p in &mut g.data_points {
                s.scrub_attributes(&mut p.attributes, counts);
                scrub_exemplars(s, &mut p.exemplars, counts);
            }
        }
        Some(metric::Data::Sum(sum)) => {
            for p in &mut sum.data_points {
                s.scrub_attributes(&mut p.attributes, counts);
                scrub_exemplars(s, &mut p.exemplars, counts);
            }
        }
        Some(metric::Data::Histogram(h)) => {
            for p in &mut h.data_points {
                s.scrub_attributes(&mut p.attributes, counts);
                scrub_exemplars(s, &mut p.exemplars, counts);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            for p in &mut h.data_points {
                s.scrub_attributes(&mut p.attributes, counts);
                scrub_exemplars(s, &mut p.exemplars, counts);
            }
        }
        Some(metric::Data::Summary(summary)) => {
            for p in &mut summary.data_points {
                s.scrub_attributes(&mut p.attributes, counts);
            }
        }
        None => {}
    }
}

impl Processor for PiiProcessor {
    fn process(&mut self, mut batch: Batch, out: &mut Vec<Batch>) -> Result<(), ProcessError> {
        self.scrub(&mut batch.payload);
        out.push(batch);
        Ok(())
    }
}
