//! The `sluice` binary: command line, logging, and the plugin crates this build links.

mod ci;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use sluice_pipeline::config::{self, ConfigErrors, ConfigSource, ResolvedConfig};
use sluice_pipeline::registry::Registry;
use sluice_pipeline::runtime::graph;
use sluice_pipeline::runtime::shutdown::StopSignals;
use sluice_pipeline::telemetry::Telemetry;

// Name the plugin crates so their compile-time registrations are linked in.
use sluice_exporters as _;
use sluice_processors as _;
use sluice_receivers as _;

/// mimalloc: the collector allocates every decoded string and frees it once exported; mimalloc's
/// thread-local free lists make that cheaper than glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The configuration `sluice` runs when given none.
const DEFAULT_CONFIG: &str = include_str!("../configs/default.yaml");
const DEFAULT_CONFIG_NAME: &str = "<embedded configs/default.yaml>";

/// Exit code for an invalid configuration (as `sluice validate` documents).
const EXIT_INVALID: u8 = 2;
/// Exit code for a failure to start or run.
const EXIT_FAILED: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "A telemetry pipeline in the manner of the OpenTelemetry Collector"
)]
struct Cli {
    #[command(flatten)]
    configs: ConfigArgs,
    /// sluice's own log level (error, warn, info, debug, trace); overrides
    /// `service.telemetry.logs.level`. `RUST_LOG` takes precedence over both.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone, Default)]
struct ConfigArgs {
    /// Config file(s); several are merged in order. Without one, the embedded
    /// `configs/default.yaml` runs.
    #[arg(long = "config", short = 'c', global = true, value_name = "FILE")]
    config: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the collector (the default).
    Run,
    /// Check a configuration: exit 0 when valid, 2 when not, with every error.
    Validate,
    /// List the components this build contains.
    Components,
    /// Print the configuration after `${env:…}` expansion and merging.
    PrintConfig,
    /// CI job telemetry: run a command (or a job's steps) with host metrics and output
    /// captured, and write charts and a report for $GITHUB_STEP_SUMMARY.
    Ci(Box<ci::CiArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.configs, cli.log_level.as_deref()),
        Command::Validate => validate(&cli.configs),
        Command::Components => components(),
        Command::PrintConfig => print_config(&cli.configs),
        Command::Ci(args) => ci::main(*args, &cli.configs, cli.log_level.as_deref()),
    }
}

fn load(configs: &ConfigArgs) -> Result<config::Node, ConfigErrors> {
    load_or(configs, &[default_source()])
}

fn default_source() -> ConfigSource {
    ConfigSource {
        name: DEFAULT_CONFIG_NAME.to_string(),
        text: DEFAULT_CONFIG.to_string(),
    }
}

/// The `--config` files, or the embedded `sources` (merged in order) when none is given.
fn load_or(configs: &ConfigArgs, sources: &[ConfigSource]) -> Result<config::Node, ConfigErrors> {
    if configs.config.is_empty() {
        config::load_sources(sources, &|name| std::env::var(name).ok())
    } else {
        config::load_files(&configs.config)
    }
}

fn registry() -> Result<&'static Registry, ExitCode> {
    Registry::global().map_err(|dups| {
        for d in dups {
            eprintln!("error: {d}");
        }
        ExitCode::from(EXIT_FAILED)
    })
}

fn resolve(configs: &ConfigArgs) -> Result<ResolvedConfig, ExitCode> {
    registry()?;
    resolve_or(configs, &[default_source()]).map_err(|e| {
        eprint!("{e}");
        ExitCode::from(EXIT_INVALID)
    })
}

/// Loads and resolves the `--config` files, or the embedded `sources` when none is given; the
/// error is the text to print.
fn resolve_or(configs: &ConfigArgs, sources: &[ConfigSource]) -> Result<ResolvedConfig, String> {
    let registry = Registry::global().map_err(|dups| {
        dups.iter()
            .map(|d| format!("error: {d}\n"))
            .collect::<String>()
    })?;
    let node = load_or(configs, sources).map_err(|e| e.to_string())?;
    config::resolve(&node, registry, &|name| std::env::var(name).ok()).map_err(|e| e.to_string())
}

fn validate(configs: &ConfigArgs) -> ExitCode {
    match resolve(configs) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("warning: {w}");
            }
            println!("configuration is valid");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn components() -> ExitCode {
    let registry = match registry() {
        Ok(r) => r,
        Err(code) => return code,
    };
    println!("{:<10} {:<12} {:<24} STABILITY", "KIND", "TYPE", "SIGNALS");
    for c in registry.components() {
        let signals: Vec<&str> = c.signals.iter().map(|s| s.as_str()).collect();
        println!(
            "{:<10} {:<12} {:<24} {}",
            c.kind.as_str(),
            c.type_name,
            signals.join(","),
            c.stability
        );
    }
    ExitCode::SUCCESS
}

fn print_config(configs: &ConfigArgs) -> ExitCode {
    match load(configs) {
        Ok(node) => match serde_yaml_ng::to_string(&node.to_json()) {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot print the configuration: {e}");
                ExitCode::from(EXIT_FAILED)
            }
        },
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn init_logging(cli_level: Option<&str>, config_level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::new(s),
        _ => EnvFilter::new(cli_level.or(config_level).unwrap_or("info")),
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn run(configs: &ConfigArgs, log_level: Option<&str>) -> ExitCode {
    let cfg = match resolve(configs) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logging(log_level, cfg.service.telemetry.logs.level.as_deref());
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    rt.block_on(async move {
        // Listen before starting: a stop during startup then shuts down cleanly too.
        let mut signals = match StopSignals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen for SIGINT/SIGTERM: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        };
        let telemetry = Telemetry::new();
        let source = if configs.config.is_empty() {
            DEFAULT_CONFIG_NAME.to_string()
        } else {
            configs
                .config
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let pipelines = cfg.pipelines.len();
        let service = match graph::start(cfg, Arc::clone(&telemetry)).await {
            Ok(s) => s,
            Err(e) => {
                eprint!("{e}");
                return ExitCode::from(EXIT_FAILED);
            }
        };
        tracing::info!(config = %source, pipelines, "sluice is running; stop it with Ctrl-C or SIGTERM.");
        let signal = signals.recv().await.name();
        tracing::info!(signal, "Shutting down: stopping receivers, draining pipelines and exporters.");
        service.shutdown().await;
        let lines = telemetry.summary_lines();
        eprintln!("sluice stopped. Self-telemetry at shutdown:");
        if lines.is_empty() {
            eprintln!("  (no data moved)");
        }
        for l in lines {
            eprintln!("  {l}");
        }
        ExitCode::SUCCESS
    })
}
