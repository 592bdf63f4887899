//! Tests of the `procfs` receiver: exact values from a fixture `/proc` tree (copied to a
//! temporary directory so a test can change counters between scrapes), the real `/proc`
//! cross-checked against independent reads, the config files, and the run loop.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sluice_pipeline::config::decode_str;
use sluice_pipeline::factory::{ComponentContext, Endpoints, ReceiverPlugin, ReceiverRunContext};
use sluice_pipeline::runtime::fanout::{Output, Outputs, PipelineInput};
use sluice_pipeline::telemetry::{ComponentTelemetry, Counter, Telemetry};
use sluice_pipeline::{
    CancellationToken, ComponentId, Kind, Payload, PipelineId, Signal, Validate,
};
use sluice_proto::common::v1::{any_value, KeyValue};
use sluice_proto::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics,
};

use super::{ProcfsReceiverConfig, ProcfsReceiverFactory, ProcfsScrapers, Scraper};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/procfs/testdata");
/// The fixture's boot time (`btime` in `testdata/proc/stat`), in nanoseconds.
const BOOT: u64 = 1_700_000_000 * 1_000_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A copy of `testdata/proc` under a temporary root.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        copy_dir(&Path::new(TESTDATA).join("proc"), &dir.path().join("proc"))
            .expect("copy the fixture");
        Fixture { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        fs::write(self.root().join(rel), text).expect("rewrite a fixture file");
    }

    fn config(&self) -> ProcfsReceiverConfig {
        ProcfsReceiverConfig {
            root_path: self.root().to_path_buf(),
            ..Default::default()
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn value_text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn attrs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = kvs
        .iter()
        .map(|kv| (kv.key.clone(), value_text(kv)))
        .collect();
    v.sort();
    v
}

fn resource_attrs(rm: &ResourceMetrics) -> Vec<(String, String)> {
    attrs(sluice_pipeline::otlp::resource_attributes(&rm.resource))
}

fn resource_attr(rm: &ResourceMetrics, key: &str) -> Option<String> {
    resource_attrs(rm)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn metrics(rm: &ResourceMetrics) -> &[Metric] {
    &rm.scope_metrics[0].metrics
}

fn find<'a>(ms: &'a [Metric], name: &str) -> Option<&'a Metric> {
    ms.iter().find(|m| m.name == name)
}

fn points(m: &Metric) -> &[NumberDataPoint] {
    match &m.data {
        Some(metric::Data::Gauge(g)) => &g.data_points,
        Some(metric::Data::Sum(s)) => &s.data_points,
        _ => &[],
    }
}

/// The point of metric `name` whose attributes are exactly `want`.
fn point<'a>(ms: &'a [Metric], name: &str, want: &[(&str, &str)]) -> Option<&'a NumberDataPoint> {
    let mut want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.sort();
    find(ms, name)
        .map(points)
        .unwrap_or(&[])
        .iter()
        .find(|p| attrs(&p.attributes) == want)
}

fn int(ms: &[Metric], name: &str, want: &[(&str, &str)]) -> Option<i64> {
    match point(ms, name, want)?.value {
        Some(number_data_point::Value::AsInt(i)) => Some(i),
        _ => None,
    }
}

fn double(ms: &[Metric], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    match point(ms, name, want)?.value {
        Some(number_data_point::Value::AsDouble(d)) => Some(d),
        _ => None,
    }
}

/// Every value of attribute `key` among the points of metric `name`.
fn attr_values(ms: &[Metric], name: &str, key: &str) -> BTreeSet<String> {
    find(ms, name)
        .map(points)
        .unwrap_or(&[])
        .iter()
        .flat_map(|p| {
            p.attributes
                .iter()
                .filter(|kv| kv.key == key)
                .map(value_text)
        })
        .collect()
}

fn process(rms: &[ResourceMetrics], pid: u32) -> Option<&ResourceMetrics> {
    rms.iter()
        .find(|rm| resource_attr(rm, "process.pid") == Some(pid.to_string()))
}

fn pids(rms: &[ResourceMetrics]) -> Vec<u32> {
    rms.iter()
        .filter_map(|rm| resource_attr(rm, "process.pid")?.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The fixture tree.

#[test]
fn fixture_scrape_reports_exact_values() {
    let fx = Fixture::new();
    let errors = Counter::default();
    let config = ProcfsReceiverConfig {
        exclude_interfaces: vec!["veth*".to_string()],
        ..fx.config()
    };
    let mut scraper = Scraper::new(&config, errors.clone())
        .expect("fixture scraper")
        .with_units(100, 4096);
    let rms = scraper.scrape_at(at(1_800_000_000), Duration::ZERO);

    let host = &rms[0];
    assert_eq!(
        resource_attrs(host),
        vec![
            ("host.name".to_string(), "fixture-host".to_string()),
            ("os.type".to_string(), "linux".to_string())
        ]
    );
    let scope = host.scope_metrics[0]
        .scope
        .as_ref()
        .map(|s| s.name.as_str());
    assert_eq!(scope, Some("sluice/procfs"));
    let ms = metrics(host);

    // CPU: ticks / 100, cumulative since boot; no utilization before a second scrape.
    let cpu_time = find(ms, "system.cpu.time").expect("system.cpu.time");
    assert_eq!(cpu_time.unit, "s");
    match &cpu_time.data {
        Some(metric::Data::Sum(s)) => {
            assert!(s.is_monotonic);
            assert_eq!(
                s.aggregation_temporality,
                AggregationTemporality::Cumulative as i32
            );
            assert_eq!(s.data_points.len(), 8);
            assert!(s.data_points.iter().all(|p| p.start_time_unix_nano == BOOT
                && p.time_unix_nano == 1_800_000_000 * 1_000_000_000));
        }
        other => panic!("system.cpu.time is not a sum: {other:?}"),
    }
    let mode = |m| double(ms, "system.cpu.time", &[("cpu.mode", m)]);
    assert_eq!(mode("user"), Some(10.0));
    assert_eq!(mode("nice"), Some(0.1));
    assert_eq!(mode("system"), Some(5.0));
    assert_eq!(mode("idle"), Some(80.0));
    assert_eq!(mode("iowait"), Some(1.0));
    assert_eq!(mode("irq"), Some(0.2));
    assert_eq!(mode("softirq"), Some(0.3));
    assert_eq!(mode("steal"), Some(0.4));
    assert!(find(ms, "system.cpu.utilization").is_none());
    assert_eq!(int(ms, "system.cpu.logical.count", &[]), Some(2));

    // Memory: used = MemTotal − MemAvailable.
    let mem = |s| int(ms, "system.memory.usage", &[("system.memory.state", s)]);
    assert_eq!(mem("used"), Some(6_000_000 * 1024));
    assert_eq!(mem("free"), Some(4_000_000 * 1024));
    assert_eq!(mem("cached"), Some(5_000_000 * 1024));
    assert_eq!(mem("buffers"), Some(500_000 * 1024));
    let mem_util = |s| {
        double(
            ms,
            "system.memory.utilization",
            &[("system.memory.state", s)],
        )
    };
    assert_eq!(mem_util("used"), Some(0.375));
    assert_eq!(mem_util("free"), Some(0.25));
    assert_eq!(int(ms, "system.memory.limit", &[]), Some(16_000_000 * 1024));
    let swap = |s| int(ms, "system.paging.usage", &[("system.paging.state", s)]);
    assert_eq!(swap("used"), Some(500_000 * 1024));
    assert_eq!(swap("free"), Some(1_500_000 * 1024));

    assert_eq!(double(ms, "system.cpu.load_average.1m", &[]), Some(0.5));
    assert_eq!(double(ms, "system.cpu.load_average.5m", &[]), Some(0.25));
    assert_eq!(double(ms, "system.cpu.load_average.15m", &[]), Some(1.75));

    // Network: veth* excluded; no rate before a second scrape.
    let net = |name, m, d| {
        int(
            ms,
            name,
            &[("network.interface.name", m), ("network.io.direction", d)],
        )
    };
    assert_eq!(
        attr_values(ms, "system.network.io", "network.interface.name"),
        BTreeSet::from(["eth0".to_string(), "lo".to_string()])
    );
    assert_eq!(net("system.network.io", "eth0", "receive"), Some(1_000_000));
    assert_eq!(net("system.network.io", "eth0", "transmit"), Some(400_000));
    assert_eq!(net("system.network.packets", "eth0", "receive"), Some(2000));
    assert_eq!(net("system.network.packets", "lo", "transmit"), Some(50));
    assert_eq!(net("system.network.errors", "eth0", "receive"), Some(3));
    assert_eq!(net("system.network.errors", "eth0", "transmit"), Some(1));
    assert!(find(ms, "system.network.io.rate").is_none());

    // Disks: whole devices only (no partitions, loop or zram); sectors of 512 bytes.
    assert_eq!(
        attr_values(ms, "system.disk.io", "system.device"),
        BTreeSet::from(["nvme0n1".to_string(), "sda".to_string()])
    );
    let disk = |name, d| {
        int(
            ms,
            name,
            &[("system.device", "sda"), ("disk.io.direction", d)],
        )
    };
    assert_eq!(disk("system.disk.io", "read"), Some(20_000 * 512));
    assert_eq!(disk("system.disk.io", "write"), Some(8_000 * 512));
    assert_eq!(disk("system.disk.operations", "read"), Some(1000));
    assert_eq!(disk("system.disk.operations", "write"), Some(400));
    assert_eq!(
        double(ms, "system.disk.io_time", &[("system.device", "sda")]),
        Some(0.7)
    );
    assert!(find(ms, "system.disk.io.rate").is_none());

    // Filesystems: pseudo types skipped; `/` is measured at the fixture root; `/data` does not
    // exist there, so it is skipped and counted.
    assert_eq!(
        attr_values(
            ms,
            "system.filesystem.usage",
            "system.filesystem.mountpoint"
        ),
        BTreeSet::from(["/".to_string()])
    );
    let fs_attrs = |state| {
        [
            ("system.device", "/dev/sda1"),
            ("system.filesystem.mountpoint", "/"),
            ("system.filesystem.type", "ext4"),
            ("system.filesystem.mode", "rw"),
            ("system.filesystem.state", state),
        ]
    };
    let used = int(ms, "system.filesystem.usage", &fs_attrs("used")).expect("used");
    let free = int(ms, "system.filesystem.usage", &fs_attrs("free")).expect("free");
    let reserved = int(ms, "system.filesystem.usage", &fs_attrs("reserved")).expect("reserved");
    assert!(used > 0 && free >= 0 && reserved >= 0);
    let util = double(ms, "system.filesystem.utilization", &fs_attrs("used")[..4])
        .expect("filesystem utilization");
    assert_eq!(util, used as f64 / (used + free) as f64);

    // Processes: 77 vanished before its statm was read, 99's stat is malformed.
    assert_eq!(pids(&rms[1..]), vec![1, 2, 4242]);
    let app = process(&rms, 4242).expect("process 4242");
    assert_eq!(
        resource_attrs(app),
        vec![
            ("host.name".to_string(), "fixture-host".to_string()),
            ("os.type".to_string(), "linux".to_string()),
            (
                "process.command_line".to_string(),
                "/usr/bin/python3 -m myapp --name=a b".to_string()
            ),
            (
                "process.executable.name".to_string(),
                "my app) (x".to_string()
            ),
            ("process.parent_pid".to_string(), "1".to_string()),
            ("process.pid".to_string(), "4242".to_string()),
        ]
    );
    let pm = metrics(app);
    assert_eq!(int(pm, "process.memory.usage", &[]), Some(51_200 * 4096));
    assert_eq!(int(pm, "process.memory.virtual", &[]), Some(300_000 * 4096));
    assert_eq!(
        double(pm, "process.cpu.time", &[("cpu.mode", "user")]),
        Some(10.0)
    );
    assert_eq!(
        double(pm, "process.cpu.time", &[("cpu.mode", "system")]),
        Some(2.0)
    );
    let started =
        point(pm, "process.cpu.time", &[("cpu.mode", "user")]).map(|p| p.start_time_unix_nano);
    assert_eq!(started, Some(BOOT + 200 * 1_000_000_000));
    assert!(find(pm, "process.cpu.utilization").is_none());
    let kernel_thread = process(&rms, 2).expect("process 2");
    assert_eq!(resource_attr(kernel_thread, "process.command_line"), None);
    assert_eq!(
        resource_attr(kernel_thread, "process.executable.name").as_deref(),
        Some("kthreadd")
    );

    assert_eq!(errors.get(), 3, "/data, pid 99's stat and pid 77's statm");
}

#[test]
fn second_scrape_gives_exact_utilization_and_rates() {
    let fx = Fixture::new();
    let errors = Counter::default();
    let config = ProcfsReceiverConfig {
        top_processes: 1,
        ..fx.config()
    };
    let per_cpu_config = ProcfsReceiverConfig {
        per_cpu: true,
        ..config.clone()
    };
    let mut scraper = Scraper::new(&config, errors.clone())
        .expect("fixture scraper")
        .with_units(100, 4096);
    let mut per_cpu = Scraper::new(&per_cpu_config, Counter::default())
        .expect("fixture scraper")
        .with_units(100, 4096);
    let first = scraper.scrape_at(at(1_800_000_000), Duration::ZERO);
    per_cpu.scrape_at(at(1_800_000_000), Duration::ZERO);
    // The top process by RSS (77) vanished before its statm was read.
    assert_eq!(pids(&first), Vec::<u32>::new());
    assert_eq!(errors.get(), 3);

    // Over the next 2 s: 1000 ticks (user 100, system 50, idle 800, iowait 25, steal 25),
    // split 500/500 between the CPUs.
    fx.write(
        "proc/stat",
        "cpu  1100 10 550 8800 125 20 30 65 0 0\n\
         cpu0 675 5 275 4375 75 10 15 20 0 0\n\
         cpu1 425 5 275 4425 50 10 15 45 0 0\n\
         btime 1700000000\n",
    );
    // eth0 got 3000 bytes and sent 1 (0.5 B/s must not floor to 0); lo idle.
    let net_dev = fs::read_to_string(fx.root().join("proc/net/dev")).expect("net/dev");
    fx.write(
        "proc/net/dev",
        &net_dev
            .replace("eth0: 1000000", "eth0: 1003000")
            .replace("400000    1500", "400001    1500"),
    );
    // sda read 8 sectors and wrote 1; nvme0n1's read counter went back (a reset).
    let diskstats = fs::read_to_string(fx.root().join("proc/diskstats")).expect("diskstats");
    fx.write(
        "proc/diskstats",
        &diskstats
            .replace(
                "sda 1000 10 20000 500 400 20 8000",
                "sda 1001 10 20008 500 401 20 8001",
            )
            .replace("nvme0n1 50 0 1000", "nvme0n1 50 0 500"),
    );
    // pid 1 used 300 ticks, 4242 used 200; pid 2 is a new process with the same pid; 77 exited.
    let stat1 = fs::read_to_string(fx.root().join("proc/1/stat")).expect("1/stat");
    fx.write("proc/1/stat", &stat1.replace(" 150 50 ", " 350 150 "));
    let stat4242 = fs::read_to_string(fx.root().join("proc/4242/stat")).expect("4242/stat");
    fx.write(
        "proc/4242/stat",
        &stat4242.replace(" 1000 200 ", " 1150 250 "),
    );
    let stat2 = fs::read_to_string(fx.root().join("proc/2/stat")).expect("2/stat");
    fx.write(
        "proc/2/stat",
        &stat2
            .replace(" 0 10 ", " 0 900 ")
            .replace(" 5 123456789", " 6000 123456789"),
    );
    fs::remove_dir_all(fx.root().join("proc/77")).expect("remove pid 77");

    let elapsed = Duration::from_secs(2);
    let second = scraper.scrape_at(at(1_800_000_002), elapsed);
    let ms = metrics(&second[0]);
    let util = |m| double(ms, "system.cpu.utilization", &[("cpu.mode", m)]);
    assert_eq!(util("user"), Some(0.1));
    assert_eq!(util("nice"), Some(0.0));
    assert_eq!(util("system"), Some(0.05));
    assert_eq!(util("idle"), Some(0.8));
    assert_eq!(util("iowait"), Some(0.025));
    assert_eq!(util("irq"), Some(0.0));
    assert_eq!(util("softirq"), Some(0.0));
    assert_eq!(util("steal"), Some(0.025));

    let net = |m, d| {
        double(
            ms,
            "system.network.io.rate",
            &[("network.interface.name", m), ("network.io.direction", d)],
        )
    };
    assert_eq!(net("eth0", "receive"), Some(1500.0));
    assert_eq!(net("eth0", "transmit"), Some(0.5));
    assert_eq!(net("lo", "receive"), Some(0.0));
    let rate_unit = find(ms, "system.network.io.rate").map(|m| m.unit.as_str());
    assert_eq!(rate_unit, Some("By/s"));

    let disk = |dev, d| {
        double(
            ms,
            "system.disk.io.rate",
            &[("system.device", dev), ("disk.io.direction", d)],
        )
    };
    assert_eq!(disk("sda", "read"), Some(2048.0));
    assert_eq!(disk("sda", "write"), Some(256.0));
    assert_eq!(
        disk("nvme0n1", "read"),
        None,
        "a counter that went back has no rate"
    );
    assert_eq!(disk("nvme0n1", "write"), Some(0.0));

    // Top 1 by RSS is 4242, top 1 by CPU is pid 1: both reported.
    assert_eq!(pids(&second[1..]), vec![1, 4242]);
    let cpu_of = |pid| {
        process(&second, pid).and_then(|rm| double(metrics(rm), "process.cpu.utilization", &[]))
    };
    assert_eq!(cpu_of(1), Some(1.5));
    assert_eq!(cpu_of(4242), Some(1.0));
    assert_eq!(errors.get(), 5, "/data and pid 99 again");

    // Per CPU: one series per logical CPU, numbered.
    let per = per_cpu.scrape_at(at(1_800_000_002), elapsed);
    let ms = metrics(&per[0]);
    let util = |cpu, m| {
        double(
            ms,
            "system.cpu.utilization",
            &[("cpu.mode", m), ("cpu.logical_number", cpu)],
        )
    };
    assert_eq!(util("0", "user"), Some(0.15));
    assert_eq!(util("0", "idle"), Some(0.75));
    assert_eq!(util("1", "user"), Some(0.05));
    assert_eq!(util("1", "steal"), Some(0.05));
    assert_eq!(
        double(ms, "system.cpu.utilization", &[("cpu.mode", "user")]),
        None
    );
    assert_eq!(
        double(
            ms,
            "system.cpu.time",
            &[("cpu.mode", "user"), ("cpu.logical_number", "1")]
        ),
        Some(4.25)
    );
}

#[test]
fn a_reused_pid_starts_afresh() {
    let fx = Fixture::new();
    let mut scraper = Scraper::new(&fx.config(), Counter::default())
        .expect("fixture scraper")
        .with_units(100, 4096);
    scraper.scrape_at(at(10), Duration::ZERO);
    let stat2 = fs::read_to_string(fx.root().join("proc/2/stat")).expect("2/stat");
    fx.write(
        "proc/2/stat",
        &stat2
            .replace(" 0 10 ", " 0 900 ")
            .replace(" 5 123456789", " 6000 123456789"),
    );
    let stat1 = fs::read_to_string(fx.root().join("proc/1/stat")).expect("1/stat");
    fx.write("proc/1/stat", &stat1.replace(" 150 50 ", " 160 50 "));
    let rms = scraper.scrape_at(at(12), Duration::from_secs(2));
    let cpu_of =
        |pid| process(&rms, pid).and_then(|rm| double(metrics(rm), "process.cpu.utilization", &[]));
    assert_eq!(cpu_of(1), Some(0.05));
    assert_eq!(cpu_of(2), None);
    assert!(process(&rms, 2).is_some());
}

#[test]
fn disabled_scrapers_read_nothing_of_theirs() {
    let fx = Fixture::new();
    let errors = Counter::default();
    let config = ProcfsReceiverConfig {
        scrapers: ProcfsScrapers {
            cpu: false,
            memory: false,
            network: false,
            disk: false,
            filesystem: false,
            processes: false,
            load: true,
        },
        ..fx.config()
    };
    let mut scraper = Scraper::new(&config, errors.clone()).expect("fixture scraper");
    let rms = scraper.scrape_at(at(10), Duration::ZERO);
    assert_eq!(rms.len(), 1);
    let names: Vec<&str> = metrics(&rms[0]).iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "system.cpu.load_average.1m",
            "system.cpu.load_average.5m",
            "system.cpu.load_average.15m"
        ]
    );
    assert_eq!(errors.get(), 0);
}

#[test]
fn unreadable_and_malformed_files_are_skipped_and_counted() {
    let fx = Fixture::new();
    let errors = Counter::default();
    let config = ProcfsReceiverConfig {
        scrapers: ProcfsScrapers {
            filesystem: false,
            processes: false,
            ..Default::default()
        },
        ..fx.config()
    };
    let mut scraper = Scraper::new(&config, errors.clone()).expect("fixture scraper");
    fx.write("proc/meminfo", "MemFree: lots\n");
    fx.write("proc/loadavg", "high\n");
    fx.write(
        "proc/net/dev",
        "h1\nh2\n  eth0: 1 2 3\n    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
    );
    fs::remove_file(fx.root().join("proc/diskstats")).expect("remove diskstats");
    let rms = scraper.scrape_at(at(10), Duration::ZERO);
    let ms = metrics(&rms[0]);
    assert!(find(ms, "system.memory.usage").is_none());
    assert!(find(ms, "system.cpu.load_average.1m").is_none());
    assert!(find(ms, "system.disk.io").is_none());
    assert_eq!(
        attr_values(ms, "system.network.io", "network.interface.name"),
        BTreeSet::from(["lo".to_string()])
    );
    assert!(find(ms, "system.cpu.time").is_some());
    // meminfo: a bad line and no MemTotal; loadavg; eth0's line; diskstats missing.
    assert_eq!(errors.get(), 5);
}

#[test]
fn a_root_without_procfs_fails_to_build() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = ProcfsReceiverConfig {
        root_path: dir.path().to_path_buf(),
        ..Default::default()
    };
    let id: ComponentId = "procfs".parse().expect("id");
    let ctx = context(&id, dir.path()).0;
    let err = ReceiverPlugin::build(&ProcfsReceiverFactory, config, ctx)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("holds no readable procfs"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The real /proc, checked against independent reads.

fn real_scrape(top_processes: usize) -> (Scraper, Vec<ResourceMetrics>) {
    let config = ProcfsReceiverConfig {
        top_processes,
        ..Default::default()
    };
    let mut scraper = Scraper::new(&config, Counter::default()).expect("real /proc");
    let rms = scraper.scrape();
    (scraper, rms)
}

fn proc_field(file: &str, key: &str) -> Option<String> {
    fs::read_to_string(file)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

#[test]
fn real_memory_limit_is_memtotal() {
    let (_, rms) = real_scrape(0);
    let mem_total_kib: i64 = proc_field("/proc/meminfo", "MemTotal:")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    assert_eq!(
        int(metrics(&rms[0]), "system.memory.limit", &[]),
        Some(mem_total_kib * 1024)
    );
}

#[test]
fn real_interfaces_are_those_of_proc_net_dev() {
    let text = fs::read_to_string("/proc/net/dev").expect("/proc/net/dev");
    let expected: BTreeSet<String> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let (mut scraper, rms) = real_scrape(0);
    let ms = metrics(&rms[0]);
    assert_eq!(
        attr_values(ms, "system.network.io", "network.interface.name"),
        expected
    );
    // A second scrape has a rate for every interface, never negative.
    let rms = scraper.scrape();
    let ms = metrics(&rms[0]);
    assert_eq!(
        attr_values(ms, "system.network.io.rate", "network.interface.name"),
        expected
    );
    for p in find(ms, "system.network.io.rate")
        .map(points)
        .unwrap_or(&[])
    {
        assert!(matches!(p.value, Some(number_data_point::Value::AsDouble(v)) if v >= 0.0));
    }
}

#[test]
fn real_load_average_and_boot_time_match() {
    let read_load = || -> f64 {
        fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .expect("/proc/loadavg")
    };
    let before = read_load();
    let (_, rms) = real_scrape(0);
    let after = read_load();
    let ms = metrics(&rms[0]);
    let scraped = double(ms, "system.cpu.load_average.1m", &[]).expect("load average");
    assert!(
        scraped >= before.min(after) - 0.5 && scraped <= before.max(after) + 0.5,
        "{before} {scraped} {after}"
    );

    let btime: u64 = proc_field("/proc/stat", "btime ")
        .and_then(|v| v.parse().ok())
        .expect("btime in /proc/stat");
    let start =
        point(ms, "system.cpu.time", &[("cpu.mode", "user")]).map(|p| p.start_time_unix_nano);
    assert_eq!(start, Some(btime * 1_000_000_000));
    let cpus = fs::read_to_string("/proc/stat")
        .expect("/proc/stat")
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    assert_eq!(int(ms, "system.cpu.logical.count", &[]), Some(cpus as i64));
}

#[test]
fn real_disks_and_root_filesystem_are_reported() {
    let (_, rms) = real_scrape(0);
    let ms = metrics(&rms[0]);
    let listed: BTreeSet<String> = fs::read_to_string("/proc/diskstats")
        .expect("/proc/diskstats")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    for dev in attr_values(ms, "system.disk.io", "system.device") {
        assert!(listed.contains(&dev), "{dev} not in /proc/diskstats");
        assert!(!dev.starts_with("loop") && !dev.starts_with("ram"), "{dev}");
    }

    // The size of the filesystem holding `/`, as df(1) reports it, when df is there.
    let mount_points = attr_values(
        ms,
        "system.filesystem.usage",
        "system.filesystem.mountpoint",
    );
    if !mount_points.contains("/") {
        return; // `/` is a pseudo filesystem here (e.g. a tmpfs root).
    }
    let total: i64 = ["used", "free", "reserved"]
        .iter()
        .filter_map(|state| {
            find(ms, "system.filesystem.usage")
                .map(points)
                .unwrap_or(&[])
                .iter()
                .find(|p| {
                    let a = attrs(&p.attributes);
                    a.contains(&("system.filesystem.mountpoint".into(), "/".into()))
                        && a.contains(&("system.filesystem.state".into(), state.to_string()))
                })
                .and_then(|p| match p.value {
                    Some(number_data_point::Value::AsInt(v)) => Some(v),
                    _ => None,
                })
        })
        .sum();
    let df = std::process::Command::new("df")
        .args(["-B1", "--output=size", "/"])
        .output();
    if let Some(out) = df.ok().filter(|o| o.status.success()) {
        let size: Option<i64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok());
        assert_eq!(Some(total), size);
    }
}

#[test]
fn real_scrape_includes_this_process() {
    let (_, rms) = real_scrape(usize::MAX);
    let me = std::process::id();
    let rm = process(&rms, me).expect("this process is reported");
    let comm = fs::read_to_string("/proc/self/comm").expect("/proc/self/comm");
    assert_eq!(
        resource_attr(rm, "process.executable.name").as_deref(),
        Some(comm.trim_end())
    );
    let vm_rss: i64 = proc_field("/proc/self/status", "VmRSS:")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kib| kib * 1024)
        .expect("VmRSS in /proc/self/status");
    let rss = int(metrics(rm), "process.memory.usage", &[]).expect("process.memory.usage");
    assert!(rss > 1 << 20, "{rss}");
    assert!(
        rss > vm_rss / 2 && rss < vm_rss * 2,
        "scraped {rss}, VmRSS {vm_rss}"
    );
}

// ---------------------------------------------------------------------------------------------
// Config.

#[test]
fn config_file_decodes_whole() {
    let yaml = fs::read_to_string(Path::new(TESTDATA).join("config.yaml")).expect("config.yaml");
    let config: ProcfsReceiverConfig = decode_str(&yaml).expect("a valid config");
    assert_eq!(
        config,
        ProcfsReceiverConfig {
            collection_interval: Duration::from_secs(1),
            root_path: "/hostfs".into(),
            per_cpu: true,
            top_processes: 5,
            scrapers: ProcfsScrapers {
                filesystem: false,
                ..Default::default()
            },
            exclude_interfaces: vec!["lo".into(), "veth*".into()],
            exclude_devices: vec!["dm-*".into(), "/dev/sdb1".into()],
            exclude_mount_points: vec!["/boot/efi".into()],
        }
    );
    assert_eq!(config.validate(), Ok(()));
    let empty: ProcfsReceiverConfig = decode_str("").expect("an empty config");
    assert_eq!(empty, ProcfsReceiverConfig::default());
    assert_eq!(empty.collection_interval, Duration::from_secs(10));
    let example: ProcfsReceiverConfig =
        decode_str(<ProcfsReceiverFactory as ReceiverPlugin>::EXAMPLE).expect("the example");
    assert_eq!(example.validate(), Ok(()));
}

#[test]
fn misspelt_key_is_named_with_its_line() {
    sluice_pipeline::testing::assert_misspelt_key::<ProcfsReceiverConfig>(
        &fs::read_to_string(Path::new(TESTDATA).join("typo_config.yaml"))
            .expect("typo_config.yaml"),
        "scrapers::memmory",
        3,
    );
}

#[test]
fn validation_rejects_a_zero_interval_and_bad_patterns() {
    let yaml = fs::read_to_string(Path::new(TESTDATA).join("invalid_config.yaml"))
        .expect("invalid_config.yaml");
    let config: ProcfsReceiverConfig = decode_str(&yaml).expect("decodes");
    let err = config.validate().expect_err("a zero interval is invalid");
    assert_eq!(err.key, "collection_interval");
    let config = ProcfsReceiverConfig {
        exclude_interfaces: vec!["lo".into(), "v*th".into()],
        ..Default::default()
    };
    let err = config.validate().expect_err("a `*` inside is invalid");
    assert_eq!(err.key, "exclude_interfaces::1");
}

// ---------------------------------------------------------------------------------------------
// The run loop.

fn context(id: &ComponentId, dir: &Path) -> (ComponentContext, ComponentTelemetry) {
    let telemetry = ComponentTelemetry::new(Telemetry::new(), Kind::Receiver, id);
    let ctx = ComponentContext::new(
        id.clone(),
        Kind::Receiver,
        vec![Signal::Metrics],
        telemetry.clone(),
        dir.to_path_buf(),
        Endpoints::default(),
    );
    (ctx, telemetry)
}

#[tokio::test]
async fn receiver_sends_a_batch_per_scrape_until_shutdown() {
    let fx = Fixture::new();
    let id: ComponentId = "procfs".parse().expect("id");
    let (ctx, telemetry) = context(&id, fx.root());
    let config = ProcfsReceiverConfig {
        collection_interval: Duration::from_millis(5),
        ..fx.config()
    };
    let receiver =
        ReceiverPlugin::build(&ProcfsReceiverFactory, config, ctx).expect("build the receiver");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let pipeline: PipelineId = "metrics".parse().expect("pipeline id");
    let mut outputs = Outputs::default();
    outputs.insert(Output::new(
        Signal::Metrics,
        id.clone(),
        vec![PipelineInput::new(pipeline, tx)],
        &telemetry,
    ));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(receiver.run(ReceiverRunContext {
        shutdown: shutdown.clone(),
        outputs,
    }));

    let first = rx.recv().await.expect("a first batch");
    let second = rx.recv().await.expect("a second batch");
    shutdown.cancel();
    run.await.expect("the run task").expect("a clean stop");

    assert_eq!(first.meta.source.as_ref(), Some(&id));
    let Payload::Metrics(first) = first.payload else {
        panic!("not metrics");
    };
    let Payload::Metrics(second) = second.payload else {
        panic!("not metrics");
    };
    assert!(find(metrics(&first[0]), "system.network.io.rate").is_none());
    assert!(find(metrics(&second[0]), "system.network.io.rate").is_some());
    let registry = telemetry.registry();
    let accepted = registry
        .value(
            "sluice_receiver_accepted_metric_points",
            &[("receiver", "procfs")],
        )
        .unwrap_or(0);
    assert!(accepted > 0);
    let scrape_errors = registry
        .value(
            "sluice_receiver_procfs_scrape_errors",
            &[("receiver", "procfs")],
        )
        .unwrap_or(0);
    assert!(
        scrape_errors >= 6,
        "3 per scrape of the fixture: {scrape_errors}"
    );
}

#[tokio::test]
async fn receiver_survives_a_closed_pipeline_and_stops_on_shutdown() {
    let fx = Fixture::new();
    let id: ComponentId = "procfs".parse().expect("id");
    let (ctx, telemetry) = context(&id, fx.root());
    let config = ProcfsReceiverConfig {
        collection_interval: Duration::from_millis(5),
        ..fx.config()
    };
    let receiver =
        ReceiverPlugin::build(&ProcfsReceiverFactory, config, ctx).expect("build the receiver");
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    let pipeline: PipelineId = "metrics".parse().expect("pipeline id");
    let mut outputs = Outputs::default();
    outputs.insert(Output::new(
        Signal::Metrics,
        id.clone(),
        vec![PipelineInput::new(pipeline, tx)],
        &telemetry,
    ));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(receiver.run(ReceiverRunContext {
        shutdown: shutdown.clone(),
        outputs,
    }));
    // Wait until a scrape was refused, then another: the loop went on after the refusal.
    let refused = telemetry.counter("refused", Signal::Metrics);
    while refused.get() == 0 {
        tokio::task::yield_now().await;
    }
    let after_first = refused.get();
    while refused.get() == after_first {
        tokio::task::yield_now().await;
    }
    shutdown.cancel();
    run.await.expect("the run task").expect("a clean stop");
}
