//! Every Prometheus metric churnwatch exports, declared once.
//!
//! Names follow Prometheus conventions: base units (`_seconds`, `_bytes`), `_total` for
//! counters, and bounded labels only (topic, partition, rule, tier, priority, queue,
//! reason). A subscriber number never appears in a label.

use prometheus::{
    exponential_buckets, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The registry and its metrics; cheap to clone (all handles are shared).
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub records_consumed: IntCounterVec,
    pub decode_errors: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub publish_failures: IntCounterVec,
    pub late_records: IntCounterVec,
    pub duplicate_records: IntCounterVec,
    pub alignment_waits: IntCounterVec,
    pub processing_latency: Histogram,
    pub append_latency: Histogram,
    pub event_time_lag: GaugeVec,
    pub consumer_lag: IntGaugeVec,
    pub offsets_skipped: IntCounterVec,
    pub partition_key_mismatches: IntCounterVec,
    pub tickets: IntCounterVec,
    pub ticket_signals: IntCounterVec,
    pub ticket_updates: IntCounter,
    pub tickets_withdrawn: IntCounterVec,
    pub suppressed: IntCounterVec,
    pub subscribers: IntGaugeVec,
    pub state_bytes: IntGaugeVec,
    pub dedup_ids_dropped: IntCounterVec,
    pub subscribers_evicted: IntCounterVec,
    pub recent_tickets_pruned: IntCounterVec,
    pub recent_tickets_subscribers: IntGauge,
    pub partition_idle: IntGaugeVec,
    pub partition_stalled: IntGaugeVec,
    pub rebalances: IntCounterVec,
    pub partition_restarts: IntCounterVec,
    pub assigned_partitions: IntGauge,
    pub input_partitions: IntGaugeVec,
    pub partitioner_detected: IntGaugeVec,
    pub config_version: IntGauge,
    pub config_reloads: IntCounterVec,
    pub ready: IntGauge,
    pub outcomes: IntCounterVec,
    pub build_info: Gauge,
    pub durability: DurabilityMetrics,
    pub quality: QualityMetrics,
    /// Resident memory and the container's limit, refreshed at each scrape.
    pub memory: crate::memory::MemoryMetrics,
}

mod quality;
use quality::quality_metrics;
pub use quality::{QualityMetrics, DAY_SECONDS};

/// Checkpoints written to the changelog and partitions restored from it.
#[derive(Clone)]
pub struct DurabilityMetrics {
    pub checkpoints: IntCounterVec,
    pub checkpoint_seconds: Histogram,
    pub changelog_records: IntCounter,
    pub changelog_bytes: IntCounter,
    pub restored_records: IntCounterVec,
    pub restored_subscribers: IntGaugeVec,
    pub restore_seconds: GaugeVec,
    pub restore_remaining: IntGaugeVec,
}

fn durability_metrics(r: &Registry) -> DurabilityMetrics {
    let int = |name: &str, help: &str| register(r, IntCounter::new(name, help).expect("valid"));
    let per_partition = |name: &str, help: &str| {
        let g = GaugeVec::new(Opts::new(name, help), &["partition"]).expect("valid");
        register(r, g)
    };
    let seconds = Histogram::with_opts(
        HistogramOpts::new(
            "churnwatch_checkpoint_duration_seconds",
            "Time a partition spends writing one checkpoint (acknowledged).",
        )
        .buckets(exponential_buckets(0.001, 2.5, 14).expect("valid buckets")),
    )
    .expect("valid");
    DurabilityMetrics {
        checkpoints: counter(
            r,
            "churnwatch_checkpoints_total",
            "Checkpoints written to the changelog, by kind (full, incremental).",
            &["kind"],
        ),
        checkpoint_seconds: register(r, seconds),
        changelog_records: int(
            "churnwatch_changelog_records_total",
            "Records written to the changelog.",
        ),
        changelog_bytes: int(
            "churnwatch_changelog_bytes_total",
            "Bytes of record values written to the changelog.",
        ),
        restored_records: counter(
            r,
            "churnwatch_restored_records_total",
            "Changelog records read while restoring, per partition.",
            &["partition"],
        ),
        restored_subscribers: gauge(
            r,
            "churnwatch_restored_subscribers",
            "Subscribers the last restore of a partition brought back.",
            &["partition"],
        ),
        restore_seconds: per_partition(
            "churnwatch_restore_seconds",
            "How long the last restore of a partition took.",
        ),
        restore_remaining: gauge(
            r,
            "churnwatch_restore_remaining_records",
            "Changelog records still to read before a partition is restored (restore lag).",
            &["partition"],
        ),
    }
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Registers `c` with `r` and returns it (handles are shared, so the clone is the metric).
fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

/// Records in: reading, decoding, lateness, duplicates and lag per input partition.
struct InputMetrics {
    records_consumed: IntCounterVec,
    decode_errors: IntCounterVec,
    late_records: IntCounterVec,
    duplicate_records: IntCounterVec,
    alignment_waits: IntCounterVec,
    event_time_lag: GaugeVec,
    consumer_lag: IntGaugeVec,
    offsets_skipped: IntCounterVec,
    partition_key_mismatches: IntCounterVec,
}

fn input_metrics(r: &Registry) -> InputMetrics {
    let event_time_lag = GaugeVec::new(
        Opts::new(
            "churnwatch_event_time_lag_seconds",
            "Wall clock minus the event time of the latest record.",
        ),
        &["topic", "partition"],
    )
    .expect("valid metric definition");
    InputMetrics {
        records_consumed: counter(
            r,
            "churnwatch_records_consumed_total",
            "Records read, by topic.",
            &["topic"],
        ),
        decode_errors: counter(
            r,
            "churnwatch_decode_errors_total",
            "Records that did not decode or validate.",
            &["topic"],
        ),
        late_records: counter(
            r,
            "churnwatch_late_records_total",
            "Records beyond the allowed lateness (rejected).",
            &["topic"],
        ),
        duplicate_records: counter(
            r,
            "churnwatch_duplicate_records_total",
            "Records seen before (ignored).",
            &["topic"],
        ),
        alignment_waits: counter(
            r,
            "churnwatch_input_alignment_waits_total",
            "Times a partition's other inputs waited for this input (it still counts but \
             delivered nothing), by the topic waited for.",
            &["topic"],
        ),
        event_time_lag: register(r, event_time_lag),
        consumer_lag: gauge(
            r,
            "churnwatch_consumer_lag_records",
            "High watermark minus the next offset to read, per partition.",
            &["topic", "partition"],
        ),
        offsets_skipped: counter(
            r,
            "churnwatch_offsets_skipped_total",
            "Offsets never read because retention deleted them first (offset out of range).",
            &["topic", "partition"],
        ),
        partition_key_mismatches: counter(
            r,
            "churnwatch_partition_key_mismatches_total",
            "Records read on a partition other than their key's under kafka.partitioner.",
            &["topic"],
        ),
    }
}

/// Records out: dead letters, publish failures, and latency to the acknowledgement.
struct OutputMetrics {
    dead_lettered: IntCounterVec,
    publish_failures: IntCounterVec,
    processing_latency: Histogram,
    append_latency: Histogram,
}

fn output_metrics(r: &Registry) -> OutputMetrics {
    let processing_latency = Histogram::with_opts(
        HistogramOpts::new(
            "churnwatch_processing_latency_seconds",
            "From a record's arrival to the broker's acknowledgement of the tickets it raised.",
        )
        .buckets(exponential_buckets(0.0001, 2.0, 18).expect("valid buckets")),
    )
    .expect("valid metric definition");
    let append_latency = Histogram::with_opts(
        HistogramOpts::new(
            "churnwatch_append_latency_seconds",
            "From a record's broker timestamp (its append time, or its producer's create time) \
             to the broker's acknowledgement of the tickets it raised: what a record waited in \
             the topic (consumer lag) plus its processing.",
        )
        .buckets(exponential_buckets(0.001, 2.0, 22).expect("valid buckets")),
    )
    .expect("valid metric definition");
    OutputMetrics {
        dead_lettered: counter(
            r,
            "churnwatch_dead_lettered_total",
            "Records sent to the dead-letter topic, by source topic and reason.",
            &["topic", "reason"],
        ),
        publish_failures: counter(
            r,
            "churnwatch_publish_failures_total",
            "Tickets and dead letters the producer could not publish, by topic and class \
             (retriable: sent again; permanent: a dead letter given up or the service stopped; \
             fatal: the service stopped).",
            &["topic", "class"],
        ),
        processing_latency: register(r, processing_latency),
        append_latency: register(r, append_latency),
    }
}

/// Tickets raised, re-emitted and held back, and the call center's outcomes.
struct TicketMetrics {
    tickets: IntCounterVec,
    ticket_signals: IntCounterVec,
    ticket_updates: IntCounter,
    tickets_withdrawn: IntCounterVec,
    suppressed: IntCounterVec,
    outcomes: IntCounterVec,
}

fn ticket_metrics(r: &Registry) -> TicketMetrics {
    let ticket_updates = IntCounter::new(
        "churnwatch_ticket_updates_total",
        "Tickets re-emitted under the same id with corrected content (late evidence, contact cap).",
    )
    .expect("valid metric definition");
    TicketMetrics {
        tickets: counter(
            r,
            "churnwatch_tickets_total",
            "New tickets, by tier, priority, queue and lead rule (the heaviest signal's).",
            &["tier", "priority", "queue", "rule"],
        ),
        ticket_signals: counter(r, "churnwatch_ticket_signals_total", "Signals on new tickets, by rule.", &["rule"]),
        ticket_updates: register(r, ticket_updates),
        tickets_withdrawn: counter(
            r,
            "churnwatch_tickets_withdrawn_total",
            "Tickets published again as WITHDRAWN because their cause went, by lead rule and \
             reason (paid, resumed, renewed, recovered, churned).",
            &["rule", "reason"],
        ),
        suppressed: counter(
            r,
            "churnwatch_suppressed_signals_total",
            "Signals or tickets held back, by reason (cooldown, below_threshold, contact_cap, ...).",
            &["reason"],
        ),
        outcomes: counter(r, "churnwatch_ticket_outcomes_total", "Call-center outcomes received.", &["outcome"]),
    }
}

/// Subscriber state held, per partition.
struct StateMetrics {
    subscribers: IntGaugeVec,
    state_bytes: IntGaugeVec,
    dedup_ids_dropped: IntCounterVec,
    subscribers_evicted: IntCounterVec,
    recent_tickets_pruned: IntCounterVec,
    recent_tickets_subscribers: IntGauge,
    partition_idle: IntGaugeVec,
    partition_stalled: IntGaugeVec,
}

fn state_metrics(r: &Registry) -> StateMetrics {
    StateMetrics {
        subscribers: gauge(r, "churnwatch_subscribers", "Subscribers in state, per partition.", &["partition"]),
        state_bytes: gauge(
            r,
            "churnwatch_state_bytes",
            "Bytes of state, per partition: subscribers, pending account facts, de-duplication ids.",
            &["partition"],
        ),
        dedup_ids_dropped: counter(
            r,
            "churnwatch_dedup_ids_dropped_total",
            "De-duplication ids dropped at engine.max_dedup_ids, per partition (their duplicates pass).",
            &["partition"],
        ),
        subscribers_evicted: counter(
            r,
            "churnwatch_subscribers_evicted_total",
            "Subscribers evicted from state at day close, by reason (churned, idle).",
            &["reason"],
        ),
        recent_tickets_pruned: counter(
            r,
            "churnwatch_recent_tickets_pruned_total",
            "Tickets dropped from the agent screens' recent list, by reason (age, cap).",
            &["reason"],
        ),
        recent_tickets_subscribers: register(
            r,
            IntGauge::new(
                "churnwatch_recent_tickets_subscribers",
                "Subscribers with recent tickets held for agent screens.",
            )
            .expect("valid"),
        ),
        partition_idle: gauge(
            r,
            "churnwatch_partition_idle",
            "1 while a partition's inputs are idle and its event-time clock follows the wall clock.",
            &["partition"],
        ),
        partition_stalled: gauge(
            r,
            "churnwatch_partition_stalled",
            "1 while a partition has records waiting and has made no progress for kafka.stall_timeout_ms.",
            &["partition"],
        ),
    }
}

/// The service itself: group membership, config, readiness and build.
struct ServiceMetrics {
    rebalances: IntCounterVec,
    assigned_partitions: IntGauge,
    input_partitions: IntGaugeVec,
    partitioner_detected: IntGaugeVec,
    config_version: IntGauge,
    config_reloads: IntCounterVec,
    ready: IntGauge,
    build_info: Gauge,
    partition_restarts: IntCounterVec,
}

fn service_metrics(r: &Registry) -> ServiceMetrics {
    let assigned_partitions = IntGauge::new(
        "churnwatch_assigned_partitions",
        "Input partitions this instance owns.",
    )
    .expect("valid");
    let config_version = IntGauge::new(
        "churnwatch_config_version",
        "Version of the active rules, tiers and routing: 1 at start, +1 per accepted reload.",
    )
    .expect("valid");
    let ready = IntGauge::new(
        "churnwatch_ready",
        "1 when no readiness condition holds (/readyz names those that do).",
    )
    .expect("valid");
    let build_info = Gauge::with_opts(
        Opts::new(
            "churnwatch_build_info",
            "Always 1; the version label says which build runs.",
        )
        .const_label("version", env!("CARGO_PKG_VERSION")),
    )
    .expect("valid");
    let build_info = register(r, build_info);
    build_info.set(1.0);
    ServiceMetrics {
        rebalances: counter(
            r,
            "churnwatch_rebalances_total",
            "Consumer-group rebalances, by kind.",
            &["kind"],
        ),
        assigned_partitions: register(r, assigned_partitions),
        input_partitions: gauge(
            r,
            "churnwatch_input_partitions",
            "Partitions of each input topic, as found at start-up.",
            &["topic"],
        ),
        partitioner_detected: gauge(
            r,
            "churnwatch_partitioner_detected",
            "1 for the upstream partitioner the input records follow (kafka.partitioner = auto).",
            &["partitioner"],
        ),
        config_version: register(r, config_version),
        config_reloads: counter(
            r,
            "churnwatch_config_reloads_total",
            "Config reloads, by result.",
            &["result"],
        ),
        ready: register(r, ready),
        build_info,
        partition_restarts: counter(
            r,
            "churnwatch_partition_restarts_total",
            "Partition tasks restarted from their last checkpoint after failing, per partition.",
            &["partition"],
        ),
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let InputMetrics {
            records_consumed,
            decode_errors,
            late_records,
            duplicate_records,
            alignment_waits,
            event_time_lag,
            consumer_lag,
            offsets_skipped,
            partition_key_mismatches,
        } = input_metrics(&r);
        let OutputMetrics {
            dead_lettered,
            publish_failures,
            processing_latency,
            append_latency,
        } = output_metrics(&r);
        let TicketMetrics {
            tickets,
            ticket_signals,
            ticket_updates,
            tickets_withdrawn,
            suppressed,
            outcomes,
        } = ticket_metrics(&r);
        let StateMetrics {
            subscribers,
            state_bytes,
            dedup_ids_dropped,
            subscribers_evicted,
            recent_tickets_pruned,
            recent_tickets_subscribers,
            partition_idle,
            partition_stalled,
        } = state_metrics(&r);
        let ServiceMetrics {
            rebalances,
            assigned_partitions,
            input_partitions,
            partitioner_detected,
            config_version,
            config_reloads,
            ready,
            build_info,
            partition_restarts,
        } = service_metrics(&r);
        let durability = durability_metrics(&r);
        let quality = quality_metrics(&r);
        let memory = crate::memory::MemoryMetrics::register(&r);
        Metrics {
            registry: r,
            records_consumed,
            decode_errors,
            dead_lettered,
            publish_failures,
            late_records,
            duplicate_records,
            alignment_waits,
            processing_latency,
            append_latency,
            event_time_lag,
            consumer_lag,
            offsets_skipped,
            partition_key_mismatches,
            tickets,
            ticket_signals,
            ticket_updates,
            tickets_withdrawn,
            suppressed,
            subscribers,
            state_bytes,
            dedup_ids_dropped,
            subscribers_evicted,
            recent_tickets_pruned,
            recent_tickets_subscribers,
            partition_idle,
            partition_stalled,
            rebalances,
            partition_restarts,
            assigned_partitions,
            input_partitions,
            partitioner_detected,
            config_version,
            config_reloads,
            ready,
            outcomes,
            build_info,
            durability,
            quality,
            memory,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_bounded_labels() {
        let m = Metrics::new();
        m.records_consumed.with_label_values(&["cdr"]).inc();
        m.tickets
            .with_label_values(&["vip", "P1", "vip_retention_desk", "competitor_care_call"])
            .inc();
        let text = m.render();
        assert!(
            text.contains("churnwatch_records_consumed_total{topic=\"cdr\"} 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE churnwatch_processing_latency_seconds histogram"));
    }
}
