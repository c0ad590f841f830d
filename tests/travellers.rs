//! A subscriber abroad is not a leaver (issue 24's regular traveller), seen as a user sees
//! it: the `churnwatch replay` binary over JSONL whose roaming records carry
//! `"roaming": true`, the tickets read back from its output file.
//!
//! Three daily callers in March and April 2026 (Shanghai time) who stop calling on April
//! 10th and keep a small data session a day: one at home (a silence, ticketed on its
//! seventh day), one abroad for ten days who then calls from home again (a trip, no
//! ticket), and one abroad who never calls again (ticketed once the silence passes
//! `abroad_max_days`, 21 days).

#[path = "common/cli.rs"]
mod cli;
mod common;

use churnwatch::proto::{self, RecordType};
use cli::churnwatch;

const HOME: &str = "8613012345611";
const TRIP: &str = "8613012345612";
const GONE: &str = "8613012345613";
const CLOCK: &str = "8613012340000";

/// The local time `hour`:00 on the `day`th day from March 1st.
fn day_at(day: i64, hour: i64) -> i64 {
    common::at("2026-03-01 00:00") + day * common::DAY + hour * 3_600_000
}

/// A call, or a data session of `mib` MiB.
fn record(id: String, sub: &str, t: i64, kind: RecordType, mib: u64, roaming: bool) -> String {
    let data = kind == RecordType::Data;
    serde_json::to_string(&proto::CallDetailRecord {
        record_id: id,
        subscriber: sub.into(),
        event_time_ms: t,
        r#type: kind as i32,
        other_party: if data { "" } else { "13012340001" }.into(),
        duration_s: if data { 0 } else { 180 },
        data_bytes: mib << 20,
        charge: if data { 1 } else { 300 },
        roaming,
        ..Default::default()
    })
    .unwrap()
}

/// Days 0-39 (March 1st to April 9th) a call and 200 MiB of data every day for all; from
/// day 40, a 5 MiB data session a day, roaming for `TRIP` on days 40-49 and for `GONE`
/// from day 40 on; `TRIP` calls from home again from day 50. `CLOCK` calls daily to day 70.
fn inputs() -> Vec<String> {
    let mut lines = Vec::new();
    for d in 0..=70 {
        let voice = RecordType::VoiceOut;
        let id = format!("clock-{d}");
        lines.push(record(id, CLOCK, day_at(d, 12), voice, 0, false));
        for sub in [HOME, TRIP, GONE] {
            let calls = d < 40 || (sub == TRIP && d >= 50);
            let abroad = d >= 40 && (sub == GONE || (sub == TRIP && d < 50));
            if calls {
                let id = format!("{sub}-v{d}");
                lines.push(record(id, sub, day_at(d, 10), voice, 0, false));
            }
            let (id, mib) = (format!("{sub}-d{d}"), if calls { 200 } else { 5 });
            lines.push(record(
                id,
                sub,
                day_at(d, 20),
                RecordType::Data,
                mib,
                abroad,
            ));
        }
    }
    lines
}

/// Every ticket line of the replay, as (subscriber, first rule, signal summary), and
/// stderr.
fn replay(lines: &[String]) -> (Vec<(String, String, String)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cdr_path, out_path) = (dir.path().join("cdr.jsonl"), dir.path().join("t.jsonl"));
    std::fs::write(&cdr_path, lines.join("\n") + "\n").unwrap();
    let out = churnwatch(&[
        "replay",
        "--cdr",
        cdr_path.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay failed: {err}");
    let tickets = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .map(|l| {
            let t: proto::CareTicket = serde_json::from_str(l).expect("a CareTicket");
            let s = &t.signals[0];
            (t.subscriber.clone(), s.rule.clone(), s.summary.clone())
        })
        .collect();
    (tickets, err)
}

#[test]
fn a_silence_abroad_is_a_trip_until_it_passes_three_weeks() {
    let (tickets, err) = replay(&inputs());
    let of = |sub: &str| -> Vec<(String, String)> {
        tickets
            .iter()
            .filter(|t| t.0 == sub)
            .map(|t| (t.1.clone(), t.2.clone()))
            .collect()
    };
    let home = of(HOME);
    assert!(
        home.iter()
            .any(|(r, s)| r == "silent_days" && s.contains("for 7 days")),
        "the silence at home on its seventh day: {home:?}\n{err}"
    );
    assert_eq!(
        of(TRIP),
        vec![],
        "ten days abroad, then home: no ticket\n{err}"
    );
    let gone = of(GONE);
    assert!(
        gone.iter().all(|(r, _)| r == "silent_days"),
        "abroad, no drop rule fires: {gone:?}"
    );
    assert!(
        gone.iter()
            .any(|(_, s)| s.contains("for 22 days, the line used abroad")),
        "a silence abroad past 21 days: {gone:?}\n{err}"
    );
    let abroad = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("abroad"))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(
        abroad.is_some_and(|n| n >= 15),
        "the trips' silent days counted as suppressed `abroad`:\n{err}"
    );
}
