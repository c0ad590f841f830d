//! The `churnwatch` command line: parse flags, load the config, call the library.
//!
//! Everything here is wiring; the work happens in [`churnwatch::replay`] and
//! [`churnwatch::tools`]. This is the only place that uses `anyhow`: errors below carry
//! their own typed context (file, key), and here they only need to be printed.

/// mimalloc: per-thread heaps, so a record allocated on one thread and freed on another
/// does not make the threads queue on an arena lock (glibc's did, measurably, on 2 cores).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod logging;

use cli::{BenchCommand, Cli, Command, GenerateArgs, ReplayArgs};

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use churnwatch::config::Config;
use churnwatch::config::Format;
use churnwatch::replay::{self, ReplayOptions};

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn main() -> ExitCode {
    churnwatch::memory::no_transparent_huge_pages();
    let cli = Cli::parse();
    let logs = logging::init(&cli.log).map_err(anyhow::Error::from);
    match logs.and_then(|()| run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Replay(args) => run_replay(args),
        Command::Generate(args) => run_generate(args),
        Command::Demo {
            config,
            duration,
            rate,
            in_process: false,
        } => run_demo_live(config, duration, rate),
        Command::Demo {
            config,
            in_process: true,
            ..
        } => run_demo_in_process(config),
        Command::Broker { config, partitions } => run_broker(config, partitions),
        Command::Run { config } => run_service(config),
        Command::Bench { which } => {
            run_bench(which)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file, config } => Ok(check_config(file.or(config))),
    }
}

/// A multi-threaded tokio runtime for the commands that talk to Kafka.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(args.config.as_deref())?;
    let opts = ReplayOptions {
        cdr: args.cdr,
        account: args.account,
        outcomes: args.outcomes,
        out: args.out,
        input_format: args.input_format,
        format: args.format,
        progress: std::io::stderr().is_terminal(),
        report: args.report,
        journeys: args.journeys,
    };
    let summary = replay::run(&opts, &cfg).context("replay failed")?;
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

fn run_generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(args.config.as_deref())?;
    let opts = churnwatch::tools::generate::GenerateOptions {
        out: args.out,
        subscribers: args.subscribers,
        days: args.days,
        seed: args.seed,
        start: args.start,
        format: args.format,
        progress: std::io::stderr().is_terminal(),
    };
    let summary = churnwatch::tools::generate::run(&opts, &cfg).context("generate failed")?;
    eprintln!("{summary}");
    if let Some(bootstrap) = args.bootstrap {
        stream_generated(&cfg, &opts.out, args.format, &bootstrap, args.rate)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `generate --bootstrap`: streams the files just written in `dir` into Kafka.
fn stream_generated(
    cfg: &Config,
    dir: &Path,
    format: Format,
    bootstrap: &str,
    rate: u64,
) -> anyhow::Result<()> {
    let ext = if format == Format::Protobuf {
        "pb"
    } else {
        "jsonl"
    };
    let (cdr, account) = (
        dir.join(format!("cdr.{ext}")),
        dir.join(format!("account.{ext}")),
    );
    let rt = runtime()?;
    let started = std::time::Instant::now();
    let sent = rt.block_on(churnwatch::tools::live::publish_files(
        cfg,
        &cdr,
        &account,
        bootstrap,
        rate,
        std::io::stderr().is_terminal(),
    ))?;
    eprintln!(
        "streamed {sent} records to {bootstrap} in {:.1}s ({:.0} records/s)",
        started.elapsed().as_secs_f64(),
        sent as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    Ok(())
}

#[cfg(feature = "embedded-broker")]
fn run_demo_live(
    config: Option<PathBuf>,
    duration: Option<u64>,
    rate: u64,
) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config.as_deref())?;
    let events = churnwatch::tools::workload::stories::workload();
    let planted = churnwatch::tools::workload::stories::planted()
        .into_iter()
        .map(|j| (j.subscriber, j.rule.to_string()))
        .collect();
    let rt = runtime()?;
    let mut out = std::io::stdout();
    let summary = rt.block_on(churnwatch::tools::live::run_demo(
        cfg,
        events,
        planted,
        rate,
        duration.map(std::time::Duration::from_secs),
        shutdown_signal(&rt),
        &mut out,
    ))?;
    print_demo_summary(&summary);
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(ExitCode::SUCCESS)
}

/// A command that needs the embedded broker, in a build without it.
#[cfg(not(feature = "embedded-broker"))]
fn without_embedded_broker(command: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`churnwatch {command}` needs the embedded broker, which this build leaves out (built \
         without the `embedded-broker` feature); `churnwatch demo --in-process` needs none"
    )
}

#[cfg(not(feature = "embedded-broker"))]
fn run_demo_live(_: Option<PathBuf>, _: Option<u64>, _: u64) -> anyhow::Result<ExitCode> {
    Err(without_embedded_broker("demo"))
}

/// The end of `churnwatch demo`: what was streamed, and which planted journeys were found.
#[cfg(feature = "embedded-broker")]
fn print_demo_summary(summary: &churnwatch::tools::live::LiveSummary) {
    println!();
    println!(
        "streamed {} events in {:.1}s; {} distinct tickets",
        summary.produced,
        summary.elapsed.as_secs_f64(),
        summary.tickets.len()
    );
    let found = summary.found.iter().filter(|f| f.2).count();
    println!("planted journeys found: {found}/{}", summary.found.len());
    let planted_subs: std::collections::BTreeSet<&str> =
        summary.found.iter().map(|f| f.0.as_str()).collect();
    let stray = summary
        .tickets
        .values()
        .filter(|t| !planted_subs.contains(t.subscriber.as_str()))
        .count();
    println!("tickets for subscribers with no planted journey (false alarms): {stray}");
    for (sub, rule, hit) in &summary.found {
        let who = churnwatch::detect::Msisdn::parse(sub)
            .map(|m| m.masked())
            .unwrap_or_default();
        println!(
            "  {}  {who}  {rule}",
            if *hit { "found " } else { "MISSED" }
        );
    }
}

fn run_demo_in_process(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config.as_deref())?;
    let report = churnwatch::tools::demo::run(&cfg).context("demo failed")?;
    match write!(std::io::stdout().lock(), "{report}") {
        // `churnwatch demo | head` closes the pipe early; that is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(feature = "embedded-broker")]
fn run_broker(config: Option<PathBuf>, partitions: i32) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config.as_deref())?;
    let rt = runtime()?;
    rt.block_on(churnwatch::tools::live::run_broker(
        &cfg,
        partitions,
        shutdown_signal(&rt),
        &mut std::io::stdout(),
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "embedded-broker"))]
fn run_broker(_: Option<PathBuf>, _: i32) -> anyhow::Result<ExitCode> {
    Err(without_embedded_broker("broker"))
}

fn run_service(config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config.as_deref())?;
    let ported = churnwatch::config::ported::configured(&cfg)?;
    let rt = runtime()?;
    rt.block_on(churnwatch::app::run(
        cfg,
        config,
        ported,
        churnwatch::kafka::service::Shared::default(),
        shutdown_signal(&rt),
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `check-config`: "ok" on stdout (exit 0), or the error on stderr (exit 2). `file` is
/// always given (clap requires the argument or `--config`).
fn check_config(file: Option<PathBuf>) -> ExitCode {
    // Load the ported-numbers file and build an engine too: a config is only "ok"
    // if the service would start with it.
    let checked = || -> anyhow::Result<()> {
        let cfg = Config::load(file.as_deref())?;
        let ported = churnwatch::config::ported::configured(&cfg)?;
        churnwatch::detect::Engine::new(&cfg, &ported)?;
        Ok(())
    };
    match checked() {
        Ok(_) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn run_bench(which: BenchCommand) -> anyhow::Result<()> {
    use churnwatch::tools::bench;
    match which {
        BenchCommand::Engine {
            subscribers,
            days,
            events_per_day,
            timed_days,
            seed,
            config,
        } => {
            let cfg = load_config(config.as_deref())?;
            let opts = bench::EngineOptions {
                subscribers,
                days,
                events_per_day,
                timed_days,
                seed,
            };
            let report = bench::run_engine(&opts, &cfg).context("engine benchmark failed")?;
            print!("{report}");
        }
        #[cfg(feature = "embedded-broker")]
        BenchCommand::E2e {
            subscribers,
            events,
            partitions,
            latency_secs,
            latency_rate,
            days,
            input_format,
            seed,
            config,
        } => {
            let mut cfg = load_config(config.as_deref())?;
            cfg.kafka.input_format = input_format;
            let opts = bench::E2eOptions {
                subscribers,
                events,
                partitions,
                latency_secs,
                latency_rate,
                days,
                seed,
            };
            report_async(bench::run_e2e(&opts, &cfg), "end-to-end")?;
        }
        #[cfg(feature = "embedded-broker")]
        BenchCommand::Restore {
            subscribers,
            runs,
            partitions,
            earlier_checkpoints,
            config,
        } => {
            let cfg = load_config(config.as_deref())?;
            let opts = bench::RestoreOptions {
                subscribers,
                runs,
                partitions,
                earlier_checkpoints,
            };
            report_async(bench::run_restore(&opts, &cfg), "restore")?;
        }
        #[cfg(feature = "embedded-broker")]
        BenchCommand::Cluster {
            subscribers,
            partitions,
            history_days,
            events,
            backlog_hours,
            rate,
            latency_secs,
            seed,
            config,
        } => {
            let cfg = load_config(config.as_deref())?;
            let opts = bench::ClusterOptions {
                subscribers,
                partitions,
                history_days,
                events,
                backlog_hours,
                rate,
                latency_secs,
                seed,
                config,
            };
            report_async(bench::run_cluster(&opts, &cfg), "cluster")?;
        }
        #[cfg(not(feature = "embedded-broker"))]
        BenchCommand::Cluster { .. } => return Err(without_embedded_broker("bench cluster")),
        #[cfg(not(feature = "embedded-broker"))]
        BenchCommand::E2e { .. } => return Err(without_embedded_broker("bench e2e")),
        #[cfg(not(feature = "embedded-broker"))]
        BenchCommand::Restore { .. } => return Err(without_embedded_broker("bench restore")),
    }
    Ok(())
}

/// Runs an asynchronous benchmark on its own runtime and prints its report.
#[cfg(feature = "embedded-broker")]
fn report_async<R: std::fmt::Display, E: std::error::Error + Send + Sync + 'static>(
    bench: impl std::future::Future<Output = Result<R, E>>,
    what: &str,
) -> anyhow::Result<()> {
    let rt = runtime()?;
    let report = rt
        .block_on(bench)
        .with_context(|| format!("{what} benchmark failed"))?;
    print!("{report}");
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what an orchestrator sends). The handlers are installed
/// here, at once: a signal that comes while the service is still starting (joining its
/// group, restoring) then stops it cleanly instead of killing it.
fn shutdown_signal(rt: &tokio::runtime::Runtime) -> impl std::future::Future<Output = ()> {
    let _entered = rt.enter();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (term, int) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let ctrl_c = tokio::signal::ctrl_c();
        async move {
            let _ = ctrl_c.await;
        }
    }
}
