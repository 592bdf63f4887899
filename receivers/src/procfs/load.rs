//! Load average from `/proc/loadavg`.

use sluice_proto::metrics::v1::Metric;

use super::otlp::{MetricBuilder, Timestamps};

/// Parses the first three fields of `/proc/loadavg` (1, 5 and 15 minute averages).
pub(crate) fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_ascii_whitespace();
    let mut avg = [0.0; 3];
    for slot in &mut avg {
        *slot = fields.next()?.parse().ok()?;
    }
    Some(avg)
}

/// Appends `system.cpu.load_average.1m`, `.5m` and `.15m`.
pub(crate) fn record(avg: [f64; 3], ts: &Timestamps, out: &mut Vec<Metric>) {
    let names = [
        (
            "system.cpu.load_average.1m",
            "Load average over the last minute.",
        ),
        (
            "system.cpu.load_average.5m",
            "Load average over the last 5 minutes.",
        ),
        (
            "system.cpu.load_average.15m",
            "Load average over the last 15 minutes.",
        ),
    ];
    for ((name, description), value) in names.into_iter().zip(avg) {
        let mut m = MetricBuilder::gauge(name, "1", description, ts);
        m.double(value, Vec::new());
        m.finish(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_averages() {
        assert_eq!(
            parse_loadavg("0.03 0.19 0.10 2/82 5258\n"),
            Some([0.03, 0.19, 0.10])
        );
        assert_eq!(parse_loadavg("0.03 x 0.10 2/82 5258\n"), None);
        assert_eq!(parse_loadavg("0.03\n"), None);
    }
}
