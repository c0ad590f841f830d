//! The demo workload through the engine: every planted churn journey must be found.
//!
//! Awaits the core's rules; until they land the engine raises nothing and this fails by
//! listing the journeys it missed.

use churnwatch::config::Config;
use churnwatch::tools::demo;
use churnwatch::tools::workload::stories::planted;

#[test]
fn every_planted_journey_raises_its_rule() {
    let report = demo::run(&Config::default()).unwrap();
    let missed: Vec<String> = planted()
        .into_iter()
        .filter(|j| !report.has_signal(&j.subscriber, j.rule))
        .map(|j| format!("{} ({})", j.rule, j.story))
        .collect();
    assert!(missed.is_empty(), "missed journeys: {missed:#?}\n{report}");
}

#[test]
fn redelivered_records_are_counted_as_duplicates() {
    let report = demo::run(&Config::default()).unwrap();
    assert_eq!(report.malformed, 0);
    let s = &report.stats;
    assert!(
        s.duplicates > 0,
        "the workload re-delivers some records: {s:?}"
    );
    assert_eq!(
        s.late, 0,
        "nothing in the workload is later than 24 h: {s:?}"
    );
    assert_eq!(s.accepted + s.duplicates, report.events as u64, "{s:?}");
}

#[test]
fn background_subscribers_raise_no_tickets() {
    let report = demo::run(&Config::default()).unwrap();
    let planted: Vec<String> = planted().into_iter().map(|j| j.subscriber).collect();
    let stray: Vec<String> = report
        .tickets
        .iter()
        .filter(|t| !planted.contains(&t.subscriber))
        .map(|t| {
            format!(
                "{:?}",
                t.signals.iter().map(|s| &s.summary).collect::<Vec<_>>()
            )
        })
        .collect();
    assert!(
        stray.is_empty(),
        "tickets for subscribers with steady usage: {stray:#?}"
    );
}
