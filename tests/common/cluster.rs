//! Processes for the durability tests, run as a platform engineer runs them: a broker in a
//! process of its own (the embedded one, `churnwatch broker`, or Tansu, an independent
//! Kafka implementation), `churnwatch run` as child processes configured through
//! `CHURNWATCH__*` variables, and plain Kafka clients to produce input, read tickets and
//! look at the group's committed offsets. Every child is killed when its handle drops, so a
//! failing test leaks no process; its output goes to files kept (and named) on failure.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use churnwatch::proto;
use churnwatch::tools::workload::WireEvent;
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

pub use crate::process::{free_port, Logs, Proc, Service};

/// Which broker a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `churnwatch broker`: librdkafka's mock cluster in its own process.
    Embedded,
    /// Tansu, an independent Kafka implementation (memory storage).
    Tansu,
}

/// Topic names and group id of one test.
#[derive(Debug, Clone)]
pub struct Names {
    pub cdr: String,
    pub account: String,
    pub outcomes: String,
    pub tickets: String,
    pub dead_letter: String,
    pub changelog: String,
    pub group: String,
}

impl Names {
    pub fn new(test: &str) -> Names {
        let n = |t: &str| format!("{test}-{t}-{}", std::process::id());
        Names {
            cdr: n("cdr"),
            account: n("account"),
            outcomes: n("outcomes"),
            tickets: n("tickets"),
            dead_letter: n("dlq"),
            changelog: n("state"),
            group: n("group"),
        }
    }

    /// The `CHURNWATCH__*` variables that name them.
    pub fn env(&self) -> Vec<(String, String)> {
        let t = |k: &str, v: &str| (format!("CHURNWATCH__KAFKA__TOPICS__{k}"), v.to_string());
        vec![
            t("CDR", &self.cdr),
            t("ACCOUNT", &self.account),
            t("OUTCOMES", &self.outcomes),
            t("TICKETS", &self.tickets),
            t("DEAD_LETTER", &self.dead_letter),
            t("CHANGELOG", &self.changelog),
            ("CHURNWATCH__KAFKA__GROUP_ID".into(), self.group.clone()),
        ]
    }
}

/// How the test's producer puts a subscriber's records on a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Kafka's Java default, murmur2 of the key, chosen by the test (`partition_of`).
    Murmur2,
    /// librdkafka's own default partitioner (CRC32, `consistent_random`): the producer is
    /// given the key only, and picks the partition itself.
    LibrdkafkaDefault,
}

impl Placement {
    /// The partition the producer puts `sub` on.
    pub fn partition_of(self, sub: &str, partitions: i32) -> i32 {
        use churnwatch::config::Partitioner;
        use churnwatch::kafka::partitioner::partition_for;
        match self {
            Placement::Murmur2 => churnwatch::tools::live::partition_of(sub, partitions),
            Placement::LibrdkafkaDefault => {
                partition_for(Partitioner::ConsistentRandom, sub.as_bytes(), partitions)
                    .unwrap_or(0)
            }
        }
    }
}

/// A broker process with the test's topics created.
pub struct Broker {
    pub kind: Kind,
    pub bootstrap: String,
    pub partitions: i32,
    /// How [`Broker::produce`] partitions (murmur2 unless a test says otherwise).
    pub placement: Placement,
    pub names: Names,
    pub logs: Logs,
    ends: Arc<Mutex<LogEnds>>,
    _proc: Proc,
    _stdout: Option<std::process::ChildStdout>,
}

/// The Tansu binary: `$CHURNWATCH_TANSU`, or what `.ci/tansu` fetches.
fn tansu_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CHURNWATCH_TANSU") {
        return p.into();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/tansu");
    let out = Command::new(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

impl Broker {
    pub fn start(kind: Kind, test: &str, partitions: i32) -> Broker {
        let names = Names::new(test);
        let logs = Logs::new();
        match kind {
            Kind::Embedded => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_churnwatch"));
                cmd.args(["broker", "--partitions", &partitions.to_string()])
                    .envs(names.env());
                let mut proc = Proc::spawn("broker", &mut cmd, logs.path(), true);
                let stdout = proc.child.stdout.take().unwrap();
                let mut lines = std::io::BufReader::new(stdout);
                let mut first = String::new();
                lines.read_line(&mut first).unwrap();
                let bootstrap = first.trim().to_string();
                assert!(!bootstrap.is_empty(), "the broker printed no address");
                Broker {
                    kind,
                    bootstrap,
                    partitions,
                    placement: Placement::Murmur2,
                    names,
                    logs,
                    ends: Default::default(),
                    _proc: proc,
                    _stdout: Some(lines.into_inner()),
                }
            }
            Kind::Tansu => {
                let port = free_port();
                let url = format!("tcp://127.0.0.1:{port}");
                let mut cmd = Command::new(tansu_binary());
                cmd.args(["broker", "--listener-url", &url])
                    .args(["--advertised-listener-url", &url])
                    .args(["--storage-engine", "memory://tansu/"]);
                let proc = Proc::spawn("tansu", &mut cmd, logs.path(), false);
                let deadline = Instant::now() + Duration::from_secs(30);
                while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                    assert!(Instant::now() < deadline, "Tansu never listened");
                    std::thread::sleep(Duration::from_millis(50)); // until it listens
                }
                let b = Broker {
                    kind,
                    bootstrap: format!("127.0.0.1:{port}"),
                    partitions,
                    placement: Placement::Murmur2,
                    names,
                    logs,
                    ends: Default::default(),
                    _proc: proc,
                    _stdout: None,
                };
                b.create_topics();
                b
            }
        }
    }

    /// What `churnwatch broker` does for itself, but the changelog: inputs, tickets and dead
    /// letters. The changelog is left to the first service, which creates it (compacted, one
    /// partition per input partition) through the admin API at start-up, as on Kafka.
    fn create_topics(&self) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().unwrap();
        let n = &self.names;
        let p = self.partitions;
        let r = || TopicReplication::Fixed(1);
        let topics = [
            NewTopic::new(&n.cdr, p, r()),
            NewTopic::new(&n.account, p, r()),
            NewTopic::new(&n.outcomes, p, r()),
            NewTopic::new(&n.tickets, p, r()),
            NewTopic::new(&n.dead_letter, 1, r()),
        ];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for res in rt.block_on(admin.create_topics(&topics, &opts)).unwrap() {
            res.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
        }
        // Metadata catches up before anyone produces.
        let c: BaseConsumer = self.client().create().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        for t in [&n.cdr, &n.account, &n.tickets] {
            while c
                .fetch_metadata(Some(t), Duration::from_secs(5))
                .map_or(true, |m| m.topics()[0].partitions().len() != p as usize)
            {
                assert!(Instant::now() < deadline, "topic {t} never appeared");
                std::thread::sleep(Duration::from_millis(100)); // metadata poll
            }
        }
    }

    pub fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        c
    }

    /// `churnwatch run` against this broker, as member `name` of the test's group.
    pub fn service(&self, name: &str) -> Service {
        self.service_with(name, ServiceOptions::default())
    }

    /// [`Broker::service`], with `opts` changing what the harness sets.
    pub fn service_with(&self, name: &str, opts: ServiceOptions) -> Service {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_churnwatch"));
        cmd.arg("run")
            .envs(self.names.env())
            .env_remove("CHURNWATCH_CONFIG")
            .env(
                "RUST_LOG",
                std::env::var("CHURNWATCH_TEST_LOG").unwrap_or_else(|_| "info".into()),
            );
        for (k, v) in [
            ("BROKERS", self.bootstrap.as_str()),
            ("CHECKPOINT_INTERVAL_MS", "1000"),
            ("SESSION_TIMEOUT_MS", "6000"),
            ("DRAIN_TIMEOUT_MS", "2000"),
            // An input quiet for 3 s stops holding the others (the product waits a minute,
            // which the freeze test keeps): every test stream ends with a quiet input.
            ("IDLE_TIMEOUT_MS", "3000"),
            ("OPTIONS__MAX_POLL_INTERVAL_MS", "10000"),
            // Before issue 11 the group's offsets are librdkafka's auto-commits (every 5 s
            // by default): as often as the checkpoints, so a kill comes after some.
            ("OPTIONS__AUTO_COMMIT_INTERVAL_MS", "1000"),
        ] {
            cmd.env(format!("CHURNWATCH__KAFKA__{k}"), v);
        }
        if opts.default_idle_timeout {
            cmd.env_remove("CHURNWATCH__KAFKA__IDLE_TIMEOUT_MS");
        }
        if opts.default_session_timeout {
            // librdkafka wants `max.poll.interval.ms` at least the session timeout.
            cmd.env_remove("CHURNWATCH__KAFKA__SESSION_TIMEOUT_MS");
            cmd.env_remove("CHURNWATCH__KAFKA__OPTIONS__MAX_POLL_INTERVAL_MS");
        }
        cmd.env("CHURNWATCH__HTTP__LISTEN", format!("127.0.0.1:{port}"));
        let proc = Proc::spawn(name, &mut cmd, self.logs.path(), false);
        Service { proc, port }
    }

    /// Produces the events to the input topics, keyed and partitioned by subscriber, in
    /// order; returns when the broker has acknowledged all of them.
    pub fn produce(&self, events: &[WireEvent]) {
        if self.placement == Placement::LibrdkafkaDefault {
            let all: Vec<&WireEvent> = events.iter().collect();
            self.produce_to(None, &all);
            let failed = self.ends.lock().unwrap().failed;
            assert_eq!(failed, 0, "records the broker did not take");
            return;
        }
        // One producer per partition, in parallel: each partition's records stay in order.
        let mut by_partition = vec![Vec::new(); self.partitions as usize];
        for e in events {
            let sub = match e {
                WireEvent::Cdr(c) => &c.subscriber,
                WireEvent::Account(a) => &a.subscriber,
            };
            by_partition[churnwatch::tools::live::partition_of(sub, self.partitions) as usize]
                .push(e);
        }
        std::thread::scope(|s| {
            for (p, events) in by_partition.iter().enumerate() {
                s.spawn(move || self.produce_to(Some(p as i32), events));
            }
        });
        let failed = self.ends.lock().unwrap().failed;
        assert_eq!(failed, 0, "records the broker did not take");
    }

    /// Produces `events` in order, to `partition`, or (`None`) where librdkafka's default
    /// partitioner puts each key.
    fn produce_to(&self, partition: Option<i32>, events: &[&WireEvent]) {
        let prod: BaseProducer<Ends> = self
            .producer_config()
            .create_with_context(Ends(self.ends.clone()))
            .unwrap();
        let n = &self.names;
        for e in events {
            let (topic, sub, bytes) = match e {
                WireEvent::Cdr(c) => (&n.cdr, &c.subscriber, c.encode_to_vec()),
                WireEvent::Account(a) => (&n.account, &a.subscriber, a.encode_to_vec()),
            };
            let mut rec = BaseRecord::to(topic).key(sub).payload(&bytes);
            if let Some(p) = partition {
                rec = rec.partition(p);
            }
            loop {
                match prod.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        prod.poll(Duration::from_millis(50));
                        rec = r;
                    }
                }
            }
        }
        prod.flush(Duration::from_secs(120)).unwrap();
    }

    /// The input producers' configuration.
    fn producer_config(&self) -> ClientConfig {
        let mut cfg = self.client();
        cfg.set("linger.ms", "5");
        if self.kind == Kind::Tansu {
            // Tansu 0.6's high watermark counts the last record batch as one record, and
            // the service takes an input whose fetched records reach the high watermark as
            // at its end (the event-time merge then goes ahead without it): with batches,
            // a fetch that stops short of the last one reads as the end, and the rest is
            // dead-lettered as late. One record per batch keeps the high watermark right.
            cfg.set("batch.num.messages", "1");
        }
        cfg
    }

    /// A producer of input for a test that sends records itself, configured as
    /// [`Broker::produce`]'s and then by `settings`; its delivery reports count towards the
    /// log ends [`Offsets`] compares with, and its failures towards
    /// [`Broker::failed_deliveries`].
    pub fn producer(&self, settings: &[(&str, &str)]) -> ThreadedProducer<Ends> {
        let mut cfg = self.producer_config();
        for (k, v) in settings {
            cfg.set(*k, *v);
        }
        cfg.create_with_context(Ends(self.ends.clone())).unwrap()
    }

    /// Records the broker did not take, over every producer of input.
    pub fn failed_deliveries(&self) -> u64 {
        self.ends.lock().unwrap().failed
    }

    /// The broker's process id (to stop and continue it).
    pub fn pid(&self) -> u32 {
        self._proc.pid()
    }

    /// A client of the test's group that never joins it: it only reads committed offsets.
    pub fn offsets(&self) -> Offsets {
        let c: BaseConsumer = self
            .client()
            .set("group.id", &self.names.group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        Offsets {
            c,
            topics: vec![self.names.cdr.clone(), self.names.account.clone()],
            partitions: self.partitions,
            ends: self.ends.clone(),
        }
    }

    /// Every ticket emission on the ticket topic (each partition in log order), up to a
    /// marker this appends to every partition: call it once the services have stopped, and
    /// what precedes the marker is all they published. (Tansu 0.6's high watermark counts
    /// the last record batch as one record, so the log end is not asked for.)
    pub fn tickets(&self) -> Vec<proto::CareTicket> {
        static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nonce = format!(
            "end-{}",
            NONCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let t = &self.names.tickets;
        let prod: BaseProducer = self.client().create().unwrap();
        for p in 0..self.partitions {
            let rec = BaseRecord::to(t)
                .key(END_MARKER)
                .payload(&nonce)
                .partition(p);
            prod.send(rec).map_err(|(e, _)| e).unwrap();
        }
        prod.flush(Duration::from_secs(30)).unwrap();
        let c: BaseConsumer = self
            .client()
            .set("group.id", format!("{}-reader", self.names.group))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
        }
        c.assign(&tpl).unwrap();
        let mut open: std::collections::BTreeSet<i32> = (0..self.partitions).collect();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !open.is_empty() {
            assert!(Instant::now() < deadline, "the ticket topic was not read");
            if let Some(m) = c.poll(Duration::from_millis(200)) {
                let m = m.unwrap();
                if m.key() == Some(END_MARKER.as_bytes()) {
                    if m.payload() == Some(nonce.as_bytes()) {
                        open.remove(&m.partition());
                    }
                    continue;
                }
                out.push(proto::CareTicket::decode(m.payload().unwrap()).unwrap());
            }
        }
        out
    }
}

/// Key of the records [`Broker::tickets`] appends to the ticket topic to find its end.
const END_MARKER: &str = "churnwatch-test-end-marker";

/// The group's committed offsets against the log end of every input partition.
pub struct Offsets {
    c: BaseConsumer,
    topics: Vec<String>,
    partitions: i32,
    ends: Arc<Mutex<LogEnds>>,
}

/// The log end of every input partition, from the test producer's delivery reports (the
/// tests are the only producer of the inputs), whatever the broker says its high
/// watermark is.
#[derive(Debug, Clone, Default)]
pub struct LogEnds {
    end: BTreeMap<(String, i32), i64>,
    failed: u64,
}

/// Producer context that records [`LogEnds`].
pub struct Ends(Arc<Mutex<LogEnds>>);

impl ClientContext for Ends {}

impl ProducerContext for Ends {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        let mut ends = self.0.lock().unwrap();
        match r {
            Ok(m) => {
                let e = ends.end.entry((m.topic().to_string(), m.partition()));
                let e = e.or_insert(0);
                *e = (*e).max(m.offset() + 1);
            }
            Err(_) => ends.failed += 1,
        }
    }
}

impl Offsets {
    /// (committed, log end) summed over the input partitions; a partition with no
    /// commit counts as 0.
    pub fn progress(&self) -> (i64, i64) {
        let ends = self.ends.lock().unwrap().clone();
        let mut tpl = TopicPartitionList::new();
        let mut end = 0;
        for t in &self.topics {
            for p in 0..self.partitions {
                tpl.add_partition(t, p);
                end += ends.end.get(&(t.clone(), p)).copied().unwrap_or(0);
            }
        }
        let committed = self.c.committed_offsets(tpl, Duration::from_secs(10));
        let committed = committed.map_or(0, |tpl| {
            tpl.elements()
                .iter()
                .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
                .sum()
        });
        (committed, end)
    }

    /// Waits until the group has committed the log end of every input partition, checking
    /// that the services stay up meanwhile and dead-lettered nothing.
    pub fn wait_caught_up(&self, svcs: &mut [&mut Service], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (c, e) = self.progress();
            if c == e {
                svcs.iter().for_each(|s| s.assert_no_dead_letters());
                return;
            }
            for s in svcs.iter_mut() {
                assert!(s.proc.alive(), "{} exited", s.proc.name);
            }
            assert!(
                Instant::now() < deadline,
                "the group never committed the log end: {c} of {e}"
            );
            std::thread::sleep(Duration::from_millis(100)); // committed-offset poll
        }
    }
}

/// What [`Broker::service_with`] changes in the harness's configuration of a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceOptions {
    /// Leave `kafka.idle_timeout_ms` at the product default (the harness sets 3 s,
    /// `CHURNWATCH__KAFKA__IDLE_TIMEOUT_MS=3000`).
    pub default_idle_timeout: bool,
    /// Leave `kafka.session_timeout_ms` (and librdkafka's `max.poll.interval.ms`) at their
    /// defaults (the harness sets 6 s and 10 s, so that a killed member leaves soon).
    pub default_session_timeout: bool,
}

/// One scenario at a time in a test binary: each runs a broker, services and producers of
/// its own, and a service starved of CPU by another scenario misses its merge's alignment
/// wait (dead letters, not the behaviour under test).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
