//! Network interface counters from `/proc/net/dev`, and byte rates between scrapes.

use std::collections::HashMap;
use std::time::Duration;

use sluice_proto::metrics::v1::Metric;

use sluice_pipeline::otlp::kv_str;

use super::config::matches_any;
use super::otlp::{rate, MetricBuilder, Timestamps};

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InterfaceStats {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
}

/// Parses `/proc/net/dev` (two header lines, then `name: 8 receive and 8 transmit columns`)
/// into `out`; returns how many interface lines were malformed.
pub(crate) fn parse_net_dev(text: &str, out: &mut Vec<InterfaceStats>) -> usize {
    out.clear();
    let mut malformed = 0;
    for line in text.lines().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        // Interface names cannot contain ':' (the kernel refuses them), the counters neither;
        // a long counter may touch the colon, so split on it rather than on whitespace.
        let Some((name, counters)) = line.split_once(':') else {
            malformed += 1;
            continue;
        };
        let mut v = [0u64; 16];
        let mut n = 0;
        for (slot, field) in v.iter_mut().zip(counters.split_ascii_whitespace()) {
            match field.parse() {
                Ok(x) => *slot = x,
                Err(_) => break,
            }
            n += 1;
        }
        if n < 16 || name.trim().is_empty() {
            malformed += 1;
            continue;
        }
        out.push(InterfaceStats {
            name: name.trim().to_string(),
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_errors: v[2],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_errors: v[10],
        });
    }
    malformed
}

/// The network scraper's memory between scrapes: bytes received and sent per interface.
#[derive(Debug, Default)]
pub(crate) struct NetworkState {
    /// Where the scraper parses this scrape's `/proc/net/dev`.
    pub cur: Vec<InterfaceStats>,
    prev: HashMap<String, [u64; 2]>,
    spare: HashMap<String, [u64; 2]>,
}

impl NetworkState {
    /// Appends `system.network.io`, `.packets`, `.errors` and (from the second scrape on)
    /// `system.network.io.rate` for the interfaces of `self.cur` not excluded.
    pub(crate) fn record(
        &mut self,
        exclude: &[String],
        elapsed: Duration,
        ts: &Timestamps,
        out: &mut Vec<Metric>,
    ) {
        let mut io = MetricBuilder::counter(
            "system.network.io",
            "By",
            "Bytes received and transmitted per interface.",
            ts,
        );
        let mut packets = MetricBuilder::counter(
            "system.network.packets",
            "{packet}",
            "Packets received and transmitted per interface.",
            ts,
        );
        let mut errors = MetricBuilder::counter(
            "system.network.errors",
            "{error}",
            "Receive and transmit errors per interface.",
            ts,
        );
        let mut io_rate = MetricBuilder::gauge(
            "system.network.io.rate",
            "By/s",
            "Bytes per second received and transmitted per interface since the previous scrape.",
            ts,
        );
        let mut seen = std::mem::take(&mut self.spare);
        seen.clear();
        for i in &self.cur {
            if matches_any(exclude, &i.name) {
                continue;
            }
            let attrs = |direction: &str| {
                vec![
                    kv_str("network.interface.name", i.name.as_str()),
                    kv_str("network.io.direction", direction),
                ]
            };
            io.int(i.rx_bytes, attrs("receive"));
            io.int(i.tx_bytes, attrs("transmit"));
            packets.int(i.rx_packets, attrs("receive"));
            packets.int(i.tx_packets, attrs("transmit"));
            errors.int(i.rx_errors, attrs("receive"));
            errors.int(i.tx_errors, attrs("transmit"));
            if let Some([rx, tx]) = self.prev.get(&i.name) {
                if let Some(r) = rate(*rx, i.rx_bytes, elapsed) {
                    io_rate.double(r, attrs("receive"));
                }
                if let Some(r) = rate(*tx, i.tx_bytes, elapsed) {
                    io_rate.double(r, attrs("transmit"));
                }
            }
            seen.insert(i.name.clone(), [i.rx_bytes, i.tx_bytes]);
        }
        io.finish(out);
        packets.finish(out);
        errors.finish(out);
        io_rate.finish(out);
        self.spare = std::mem::replace(&mut self.prev, seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_interfaces_including_a_counter_touching_the_colon() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n\
            \x20   lo:    3245      30    0    0    0     0          0         0     3245      30    0    0    0     0       0          0\n\
            eth0:12345678901 2374 1 0 0 0 0 0 193364 1936 2 0 0 0 0 0\n\
            bad0: 1 2 3\n";
        let mut v = Vec::new();
        assert_eq!(parse_net_dev(text, &mut v), 1);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "lo");
        assert_eq!(v[1].name, "eth0");
        assert_eq!(v[1].rx_bytes, 12_345_678_901);
        assert_eq!(
            (v[1].rx_errors, v[1].tx_bytes, v[1].tx_errors),
            (1, 193_364, 2)
        );
    }
}
