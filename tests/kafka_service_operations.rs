//! What an operator sees of the service over librdkafka's mock cluster: rules reloaded
//! from the config file, an idle partition closing its days, a publication refused for
//! good (a dead letter given up, a ticket that stops the service), exactly-once
//! transactions, and a refused login.

#[path = "common/live.rs"]
mod live;
#[path = "common/mock.rs"]
mod mock;
#[path = "common/wire.rs"]
mod wire;

use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::kafka::service::{self, Shared};
use churnwatch::proto;
use live::start;
use mock::{producer, read, send, setup, Setup};
use prost::Message as _;
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::util::Timeout;
use wire::{care_call, now_ms};

#[test]
fn rules_reload_from_the_config_file_without_a_restart_and_a_bad_file_is_rejected() {
    let s = setup(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churnwatch.toml");
    let kafka = format!(
        "[kafka]\nbrokers = \"{}\"\ngroup_id = \"{}\"\n[kafka.topics]\ncdr = \"{}\"\naccount = \"{}\"\noutcomes = \"{}\"\ntickets = \"{}\"\ndead_letter = \"{}\"\nchangelog = \"{}\"\n[http]\nlisten = \"\"\n",
        s.cfg.kafka.brokers,
        s.cfg.kafka.group_id,
        s.cfg.kafka.topics.cdr,
        s.cfg.kafka.topics.account,
        s.cfg.kafka.topics.outcomes,
        s.cfg.kafka.topics.tickets,
        s.cfg.kafka.topics.dead_letter,
        s.cfg.kafka.topics.changelog
    );
    std::fs::write(&path, &kafka).unwrap();
    let cfg = churnwatch::config::Config::load_with_env(Some(&path), Vec::new()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shared = Shared::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    {
        let shared = shared.clone();
        let path = path.clone();
        rt.spawn(async move {
            churnwatch::app::run(cfg, Some(path), vec![], shared, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    }
    let p = producer(&s.cfg);
    let t = now_ms() - 600_000;
    let topics = &s.cfg.kafka.topics;
    send(
        &p,
        &topics.cdr,
        "8613012345678",
        &care_call("a", "8613012345678", t),
    );
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    assert_eq!(read(&s.cfg, &topics.tickets, 1).len(), 1);
    let version = || shared.metrics.config_version.get();
    assert_eq!(version(), 1);

    // A 300 s call no longer qualifies once the threshold is 600 s.
    std::fs::write(
        &path,
        format!("{kafka}[rules.competitor_care_call]\nmin_duration_s = 600\n"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while version() < 2 {
        assert!(
            Instant::now() < deadline,
            "the new config was never applied"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
    // Another subscriber's 300 s call raises nothing now; a 700 s call still does.
    send(
        &p,
        &topics.cdr,
        "8613012345679",
        &care_call("b", "8613012345679", t + 1000),
    );
    let mut long =
        proto::CallDetailRecord::decode(care_call("c", "8613012345670", t + 2000).as_slice())
            .unwrap();
    long.duration_s = 700;
    send(&p, &topics.cdr, "8613012345670", &long.encode_to_vec());
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    let tickets = read(&s.cfg, &topics.tickets, 2);
    let subs: Vec<String> = tickets
        .iter()
        .map(|m| {
            proto::CareTicket::decode(m.payload().unwrap())
                .unwrap()
                .subscriber
        })
        .collect();
    assert_eq!(
        subs,
        vec!["8613012345678", "8613012345670"],
        "the 300 s call raised nothing under the new rules"
    );

    // An invalid file is rejected; the running rules stay.
    std::fs::write(
        &path,
        format!("{kafka}[rules.competitor_care_call]\nmin_duration_s = 0\n"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while shared
        .metrics
        .config_reloads
        .with_label_values(&["rejected"])
        .get()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the bad config was never noticed"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
    assert_eq!(version(), 2);
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}

fn account(id: &str, sub: &str, t: i64, kind: proto::account_event::Kind) -> Vec<u8> {
    proto::AccountEvent {
        event_id: id.into(),
        subscriber: sub.into(),
        event_time_ms: t,
        kind: Some(kind),
    }
    .encode_to_vec()
}

/// Source idleness: a partition whose inputs go quiet closes its days with the wall clock.
/// The last record sits two seconds of event time short of closing the day of a contract
/// update (its day ends 48 h, the allowed lateness, before the record); with a one-second
/// idle timeout the day closes, and its contract-expiry ticket comes out, with no further
/// input. Event times are recent so the future-skew check lets them in.
#[test]
fn an_idle_partition_closes_its_days_with_the_wall_clock() {
    use proto::account_event::Kind;
    let mut s = setup(1);
    s.cfg.kafka.idle_timeout_ms = 1_000;
    let cal = churnwatch::detect::calendar::Calendar::new("Asia/Shanghai", &[]).unwrap();
    let lateness = 48 * 3_600_000;
    // The latest day start whose close is at least a minute in the past.
    let next_day = cal.day_start_ms(cal.day_of(now_ms() - lateness - 60_000));
    let sub = "8613012345678";
    let topic = &s.cfg.kafka.topics.account;
    let p = producer(&s.cfg);
    let plan = Kind::PlanChanged(proto::PlanChanged {
        plan_id: "p88".into(),
        monthly_fee: 8_800,
    });
    // A VIP plan (tiers read it as it stood 48 h before the ticket): the weak
    // contract-expiry signal raises a ticket.
    let plan_at = next_day - 3 * 86_400_000;
    send(&p, topic, sub, &account("plan", sub, plan_at, plan));
    let contract = Kind::Contract(proto::ContractUpdated {
        end_time_ms: next_day + 50 * 86_400_000,
    });
    send(
        &p,
        topic,
        sub,
        &account("k", sub, next_day - 3_600_000, contract),
    );
    let other = "8613012340000";
    let last = next_day + lateness - 2_000;
    send(
        &p,
        topic,
        other,
        &account("r", other, last, Kind::Resumed(proto::Resumed {})),
    );
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();

    let (rt, stop, shared) = start(&s.cfg);
    let tickets = read(&s.cfg, &s.cfg.kafka.topics.tickets, 1);
    let t = proto::CareTicket::decode(tickets[0].payload().unwrap()).unwrap();
    assert_eq!(t.subscriber, sub);
    assert_eq!(t.signals[0].rule, "contract_expiry");
    assert_eq!(
        t.created_time_ms, next_day,
        "raised at the close of its day"
    );
    let idle = shared
        .metrics
        .partition_idle
        .with_label_values(&["0"])
        .get();
    assert_eq!(idle, 1, "the partition is idle");
    let late = shared
        .metrics
        .late_records
        .with_label_values(&[topic])
        .get();
    assert_eq!(late, 0);
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}

/// Makes the broker refuse the next produce request with `error` (librdkafka's mock
/// cluster: a fault injected for one request).
/// Runs the service until it stops by itself (within a minute); its error, as printed.
fn run_until_it_stops(cfg: &Config) -> String {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let run = service::run(
        cfg.clone(),
        vec![],
        Shared::default(),
        rx,
        std::future::pending(),
    );
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), run).await })
        .expect("the service stops")
        .unwrap_err()
        .to_string()
}

fn refuse_next_produce(s: &Setup, error: rdkafka::types::RDKafkaRespErr) {
    s.cluster
        .request_errors(rdkafka::types::RDKafkaApiKey::Produce, &[error]);
}

/// A dead letter the broker refuses for good (message too large) is given up and counted:
/// bad input never stops the line, so the next record still raises its ticket.
#[test]
fn a_dead_letter_refused_for_good_is_given_up_and_the_line_goes_on() {
    let s = setup(1);
    let p = producer(&s.cfg);
    let topics = &s.cfg.kafka.topics;
    send(&p, &topics.cdr, "8613012345679", b"\xff\xfe not protobuf");
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    refuse_next_produce(
        &s,
        rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
    );
    let (rt, stop, shared) = start(&s.cfg);
    let refused = || {
        shared
            .metrics
            .publish_failures
            .with_label_values(&[&topics.dead_letter, "permanent"])
            .get()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while refused() == 0 {
        assert!(
            Instant::now() < deadline,
            "the dead letter was never refused"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
    let t = now_ms() - 60_000;
    send(
        &p,
        &topics.cdr,
        "8613012345678",
        &care_call("a", "8613012345678", t),
    );
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    let tickets = read(&s.cfg, &topics.tickets, 1);
    let ticket = proto::CareTicket::decode(tickets[0].payload().unwrap()).unwrap();
    assert_eq!(ticket.subscriber, "8613012345678");
    assert_eq!(refused(), 1);
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}

/// A ticket the broker refuses for good is never dropped: the service stops with an error
/// naming the topic, its record's offset is not stored, and a restart publishes the ticket.
#[test]
fn a_ticket_refused_for_good_stops_the_service_and_a_restart_publishes_it() {
    let s = setup(1);
    let p = producer(&s.cfg);
    let topics = &s.cfg.kafka.topics;
    let t = now_ms() - 60_000;
    send(
        &p,
        &topics.cdr,
        "8613012345678",
        &care_call("a", "8613012345678", t),
    );
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    refuse_next_produce(
        &s,
        rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
    );
    let msg = run_until_it_stops(&s.cfg);
    assert!(
        msg.contains(&format!("publishing to `{}`", topics.tickets))
            && msg.contains("refused for good"),
        "{msg}"
    );

    let (rt, stop, _shared) = start(&s.cfg);
    let tickets = read(&s.cfg, &topics.tickets, 1);
    let ticket = proto::CareTicket::decode(tickets[0].payload().unwrap()).unwrap();
    assert_eq!(ticket.subscriber, "8613012345678");
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}

#[test]
fn exactly_once_publishes_tickets_and_checkpoints_in_transactions() {
    let mut s = setup(2);
    s.cfg.kafka.processing_guarantee = churnwatch::config::Guarantee::ExactlyOnce;
    s.cfg.kafka.checkpoint_interval_ms = 200;
    let (rt, stop, shared) = start(&s.cfg);
    let p = producer(&s.cfg);
    let t = now_ms() - 60_000;
    let topics = s.cfg.kafka.topics.clone();
    for (id, sub) in [("a", "8613012345678"), ("b", "8613012345679")] {
        send(&p, &topics.cdr, sub, &care_call(id, sub, t));
    }
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    // `read` uses librdkafka's default isolation level, read_committed.
    let tickets = read(&s.cfg, &topics.tickets, 2);
    assert_eq!(tickets.len(), 2);
    // The last complete checkpoint of each partition names the CDR offsets it reflects.
    let client = churnwatch::kafka::client_config(&s.cfg);
    let reflected = || -> i64 {
        (0..2)
            .filter_map(|p| {
                churnwatch::kafka::changelog::restore::latest_marker(&client, &topics.changelog, p)
                    .unwrap()
            })
            .flat_map(|m| m.inputs)
            .filter(|(topic, _)| *topic == topics.cdr)
            .map(|(_, next)| next)
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reflected() < 2 {
        assert!(
            Instant::now() < deadline,
            "no checkpoint reflects both CDRs"
        );
        std::thread::sleep(Duration::from_millis(100)); // changelog poll
    }
    assert!(
        shared
            .metrics
            .durability
            .checkpoints
            .with_label_values(&["full"])
            .get()
            >= 1
    );
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}

/// A consumer the broker refuses for good (here the group's ACL: JoinGroup answers
/// GROUP_AUTHORIZATION_FAILED) stops the service with an error that says so and what to
/// check, instead of retrying forever with the partitions unread.
#[test]
fn an_authorization_failure_stops_the_service_saying_what_to_check() {
    let s = setup(1);
    s.cluster.request_errors(
        rdkafka::types::RDKafkaApiKey::JoinGroup,
        &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED],
    );
    let msg = run_until_it_stops(&s.cfg);
    assert!(
        msg.contains("cannot go on") && msg.contains("Group authorization") && msg.contains("ACL"),
        "{msg}"
    );
}
