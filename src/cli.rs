//! The command line's shape: every command, its flags and their help (clap). Running
//! them is `main.rs`'s.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use churnwatch::config::{Format, TicketFormat};

#[derive(Parser)]
#[command(
    name = "churnwatch",
    version,
    about = "Real-time churn detection: CDRs and account events in, care tickets out"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) log: crate::logging::LogArgs,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Replay CDR and account-event files through the engine and write the tickets.
    Replay(ReplayArgs),
    /// Generate a synthetic workload (population, planted churn journeys, loyal
    /// look-alikes) as replay input files plus journeys.csv, the ground truth.
    Generate(GenerateArgs),
    /// The whole service with no setup: an embedded Kafka-protocol broker, a synthetic
    /// workload streamed into it, the detector as a consumer group, tickets shown live.
    Demo {
        /// Configuration file (TOML); built-in defaults when absent.
        #[arg(long, env = "CHURNWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// Stop after this many seconds and print the summary (exit code 0); without it,
        /// run until Ctrl-C.
        #[arg(long)]
        duration: Option<u64>,
        /// Events per second streamed into the broker (0 = as fast as possible).
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        /// Skip Kafka: run the workload through the engine in-process and print the tickets.
        #[arg(long)]
        in_process: bool,
    },
    /// Start the embedded broker alone (topics created) and print its bootstrap address, for
    /// `kcat`, `churnwatch generate --bootstrap` and `churnwatch run`.
    Broker {
        /// Configuration file (TOML): topic names.
        #[arg(long, env = "CHURNWATCH_CONFIG")]
        config: Option<PathBuf>,
        /// Partitions of each input topic.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
    /// Run the Kafka service: consume CDR, account and outcome topics, publish care tickets,
    /// serve /metrics, /healthz, /readyz (`http.listen`) and, with a bearer token,
    /// /subscribers/{msisdn} (`http.lookup_listen`). Stops on Ctrl-C/SIGTERM.
    Run {
        /// Configuration file (TOML); `CHURNWATCH__SECTION__KEY` variables override it.
        #[arg(long, env = "CHURNWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Benchmarks on this machine: a table, then one `name value unit` line per figure.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// Check a configuration file: prints "ok", or the error naming the key (exit code 2).
    CheckConfig {
        /// The TOML file to check.
        #[arg(required_unless_present = "config", conflicts_with = "config")]
        file: Option<PathBuf>,
        /// The same file, as `run` takes it: a `run` command line checks as it is.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// One thread: pre-encoded CDRs decoded and run through the full rule set over N
    /// subscribers with a full history; events/s and state bytes per subscriber.
    Engine {
        /// Distinct subscribers (drawn at random by the timed records).
        #[arg(long, default_value_t = 1_000_000)]
        subscribers: u64,
        /// Days of history built before the timed part (35 fills every ring).
        #[arg(long, default_value_t = 35)]
        days: u32,
        /// Records per day in the timed part (default: four per subscriber).
        #[arg(long)]
        events_per_day: Option<u64>,
        /// Days of records timed (each closes one day for every subscriber).
        #[arg(long, default_value_t = 2)]
        timed_days: u32,
        /// Seed of the workload.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Configuration file (TOML): rules and numbering; defaults when absent.
        #[arg(long, env = "CHURNWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The service on the embedded broker: workload produced first, then timed until every
    /// record is processed and acknowledged; then latency at half that rate.
    E2e {
        /// Distinct subscribers.
        #[arg(long, default_value_t = 100_000)]
        subscribers: u64,
        /// Records produced (CDRs, and about 2% account events).
        #[arg(long, default_value_t = 2_000_000)]
        events: u64,
        /// Partitions of each input topic.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Seconds of the half-rate latency run (0 skips it).
        #[arg(long, default_value_t = 20)]
        latency_secs: u64,
        /// Input rate of the latency run, events/s (0: half the measured throughput).
        #[arg(long, default_value_t = 0)]
        latency_rate: u64,
        /// Days of event time the throughput run's backlog spans (a catch-up).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=60))]
        days: u32,
        /// Encoding of the records produced (and of the service's input).
        #[arg(long, value_enum, default_value_t = Format::Protobuf)]
        input_format: Format,
        /// Seed of the workload.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Configuration file (TOML); defaults when absent.
        #[arg(long, env = "CHURNWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Two `churnwatch run` processes over the embedded broker at an operator's scale: the
    /// changelog seeded with N subscribers, a backlog, a steady rate, and one instance leaving.
    Cluster {
        /// Subscribers, checkpointed in the changelog (keyed to their partitions).
        #[arg(long, default_value_t = 10_000_000)]
        subscribers: u64,
        /// Partitions of every topic (two instances share them).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(2..=64))]
        partitions: i32,
        /// Days of usage in each subscriber's checkpointed state.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=35))]
        history_days: u32,
        /// Records of the backlog the instances catch up on.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Hours of event time the backlog spans.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=72))]
        backlog_hours: u32,
        /// Input rate of the latency and leaving phases, events/s.
        #[arg(long, default_value_t = 50_000)]
        rate: u64,
        /// Seconds of the latency phase (the leaving phase lasts as long, 30 s at least).
        #[arg(long, default_value_t = 40)]
        latency_secs: u64,
        /// Seed of the workload.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Configuration file (TOML) the instances run with; defaults when absent.
        #[arg(long, env = "CHURNWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// State restore from the changelog: a full checkpoint of N subscribers written to the
    /// embedded broker, then restored into fresh engines.
    Restore {
        /// Subscribers checkpointed and restored.
        #[arg(long, default_value_t = 1_000_000)]
        subscribers: u64,
        /// Restores timed (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Changelog partitions the subscribers are split over, restored in parallel (as a
        /// survivor takes over a departed instance's partitions).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=64))]
        partitions: i32,
        /// Full checkpoints written before the one restored: a longer log in front of it,
        /// as a partition's changelog holds until compaction.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=16))]
        earlier_checkpoints: u32,
        /// Configuration file (TOML); defaults when absent.
        #[arg(long, env = "CHURNWATCH_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// Call-detail records, proto3 JSON lines or length-delimited protobuf.
    #[arg(long)]
    pub(crate) cdr: Option<PathBuf>,
    /// Account (billing/CRM) events, same encodings.
    #[arg(long)]
    pub(crate) account: Option<PathBuf>,
    /// Ticket outcomes fed back by the call center (counted in the summary).
    #[arg(long)]
    pub(crate) outcomes: Option<PathBuf>,
    /// Where the tickets go.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Ticket encoding.
    #[arg(long, value_enum, default_value_t = TicketFormat::Json)]
    pub(crate) format: TicketFormat,
    /// Input encoding; by default `.pb`, `.binpb` and `.bin` files are protobuf, others JSON.
    #[arg(long, value_enum)]
    pub(crate) input_format: Option<Format>,
    /// Write the detection-quality report (precision, recall, lead times) as JSON here.
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    /// `generate`'s ground truth (journeys.csv): adds each journey's detection delay (days
    /// from onset to first ticket) to the quality report.
    #[arg(long)]
    pub(crate) journeys: Option<PathBuf>,
    /// Configuration file (TOML); built-in defaults when absent.
    #[arg(long, env = "CHURNWATCH_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(crate) struct GenerateArgs {
    /// Directory for cdr.jsonl, account.jsonl (or .pb) and journeys.csv; created if missing.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Subscribers in the population.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) subscribers: usize,
    /// Days of traffic; 150 or more plants every journey (sustained_decline needs four
    /// full calendar months plus the weeks before churn).
    #[arg(long, default_value_t = 150)]
    pub(crate) days: u32,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// First day (operator's calendar), YYYY-MM-DD.
    #[arg(long, default_value = churnwatch::tools::generate::DEFAULT_START)]
    pub(crate) start: chrono::NaiveDate,
    /// File encoding.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub(crate) format: Format,
    /// Configuration file (TOML): time zone and holiday calendar; defaults when absent.
    #[arg(long, env = "CHURNWATCH_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Also stream the workload into Kafka at this bootstrap address (topics from the
    /// config), CDR and account records merged by event time, keyed by subscriber.
    #[arg(long)]
    pub(crate) bootstrap: Option<String>,
    /// Records per second when streaming into Kafka (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
}
