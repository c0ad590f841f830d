//! The `churnwatch` command line: parse flags, load the config, call the library.
//!
//! Everything here is wiring; the work happens in [`churnwatch::replay`] and
//! [`churnwatch::demo`]. This is the only place that uses `anyhow`: errors below carry
//! their own typed context (file, key), and here they only need to be printed.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use churnwatch::config::Config;
use churnwatch::replay::{self, Format, ReplayOptions};

#[derive(Parser)]
#[command(
    name = "churnwatch",
    version,
    about = "Real-time churn detection: CDRs and account events in, care tickets out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay CDR and account-event files through the engine and write the tickets.
    Replay(ReplayArgs),
    /// Generate a synthetic workload (population, planted churn journeys, loyal
    /// look-alikes) as replay input files plus journeys.csv, the ground truth.
    Generate(GenerateArgs),
    /// Run a built-in synthetic workload (about 50 subscribers, 60 days) and print the tickets.
    Demo {
        /// Configuration file (TOML); built-in defaults when absent.
        #[arg(long, env = "CHURNWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file: prints "ok", or the error naming the key (exit code 2).
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Call-detail records, proto3 JSON lines or length-delimited protobuf.
    #[arg(long)]
    cdr: Option<PathBuf>,
    /// Account (billing/CRM) events, same encodings.
    #[arg(long)]
    account: Option<PathBuf>,
    /// Ticket outcomes fed back by the call center (counted in the summary).
    #[arg(long)]
    outcomes: Option<PathBuf>,
    /// Where the tickets go.
    #[arg(long)]
    out: PathBuf,
    /// Ticket encoding.
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    format: FormatArg,
    /// Input encoding; by default `.pb`, `.binpb` and `.bin` files are protobuf, others JSON.
    #[arg(long, value_enum)]
    input_format: Option<FormatArg>,
    /// Write the detection-quality report (precision, recall, lead times) as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Configuration file (TOML); built-in defaults when absent.
    #[arg(long, env = "CHURNWATCH_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Directory for cdr.jsonl, account.jsonl (or .pb) and journeys.csv; created if missing.
    #[arg(long)]
    out: PathBuf,
    /// Subscribers in the population.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Days of traffic; 150 or more plants every journey (sustained_decline needs four
    /// full calendar months plus the weeks before churn).
    #[arg(long, default_value_t = 150)]
    days: u32,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First day (operator's calendar), YYYY-MM-DD.
    #[arg(long, default_value = churnwatch::generate::DEFAULT_START)]
    start: chrono::NaiveDate,
    /// File encoding.
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    format: FormatArg,
    /// Configuration file (TOML): time zone and holiday calendar; defaults when absent.
    #[arg(long, env = "CHURNWATCH_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    /// Proto3 JSON, one message per line.
    Json,
    /// Length-delimited protobuf.
    Proto,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Json => Format::Json,
            FormatArg::Proto => Format::Protobuf,
        }
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Replay(args) => {
            let cfg = load_config(args.config.as_deref())?;
            let opts = ReplayOptions {
                cdr: args.cdr,
                account: args.account,
                outcomes: args.outcomes,
                out: args.out,
                input_format: args.input_format.map(Format::from),
                format: args.format.into(),
                progress: std::io::stderr().is_terminal(),
                report: args.report,
            };
            let summary = replay::run(&opts, &cfg).context("replay failed")?;
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate(args) => {
            let cfg = load_config(args.config.as_deref())?;
            let opts = churnwatch::generate::GenerateOptions {
                out: args.out,
                subscribers: args.subscribers,
                days: args.days,
                seed: args.seed,
                start: args.start,
                format: args.format.into(),
                progress: std::io::stderr().is_terminal(),
            };
            let summary = churnwatch::generate::run(&opts, &cfg).context("generate failed")?;
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { config } => {
            let cfg = load_config(config.as_deref())?;
            let report = churnwatch::demo::run(&cfg).context("demo failed")?;
            match write!(std::io::stdout().lock(), "{report}") {
                // `churnwatch demo | head` closes the pipe early; that is not a failure.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Command::CheckConfig { file } => {
            // Load the ported-numbers file and build an engine too: a config is only "ok"
            // if the service would start with it.
            match Config::load(&file)
                .map_err(replay::ReplayError::from)
                .and_then(|cfg| replay::build_engine(&cfg))
            {
                Ok(_) => {
                    println!("ok");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}
