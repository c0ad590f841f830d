//! What catching issue 24's decays by day 10 would cost, measured on `generate`'s workload.
//!
//! The drop rules judge a window's usage against the subscriber's own usual week. This asks
//! the question under any such rule: for each threshold on that ratio, how soon would the
//! planted drops (the metric their rule reads: voice for calls moved to apps, spend for paid
//! calls moved away, data for a second data SIM; for paid calls moved away also the spend
//! per voice minute, evidence other than the level) cross it, and how many loyal subscribers of
//! the same habits cross it at some point? The window is 7 days (or the number given) against
//! the 28 before it, judged as the rules judge: every closed day, not on a holiday week, with
//! the usual week at least the rule's `min_weekly_baseline`. "The same habits" are subscribers
//! with no journey and no look-alike role whose daily means of voice, data and spend all lie
//! within the range the drop subscribers had in the 35 days before their onset. Records
//! delivered twice (0.5% of `generate`'s) are counted twice: an error of 0.5% beside weeks
//! that swing by 15%.
//!
//! ```sh
//! churnwatch generate --out /tmp/w110 --subscribers 20000 --days 110 --seed 7 --format proto
//! cargo bench --bench decay_bound -- /tmp/w110/cdr.pb /tmp/w110/journeys.csv 7
//! ```
//!
//! Without arguments (as `cargo test --all-targets` runs it) it checks its own arithmetic on
//! two made-up subscribers.

use std::collections::{HashMap, HashSet};
use std::io::BufReader;

use churnwatch::codec::{read_delimited, Frame};
use churnwatch::detect::calendar::{Calendar, Day};
use churnwatch::detect::config::DetectConfig;
use churnwatch::proto::{CallDetailRecord, RecordType};
use churnwatch::replay::delay::{parse_journeys, PlantedJourney};
use prost::Message;

/// Voice seconds, data bytes, charge in fen.
type Usage = [f64; 3];
const METRICS: [&str; 4] = ["voice", "data", "spend", "spend per voice minute"];
/// Spend over voice seconds: a composition, not a level. Weeks move a subscriber's calls
/// made and received together, so a busy week changes it little; paid calls moved to
/// another operator lower it while the calls received here go on.
const SPEND_PER_VOICE: usize = 3;
/// Drop journeys and the metric their rule reads (and, for paid calls moved away, the
/// composition tried as evidence other than the level).
const DROPS: [(&str, usize); 4] = [
    ("calls_moved_to_apps", 0),
    ("paid_calls_moved_away", 2),
    ("paid_calls_moved_away", SPEND_PER_VOICE),
    ("second_data_sim", 1),
];
const REFERENCE: i32 = 28;
const THRESHOLDS: [f64; 8] = [0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8];

/// Every subscriber's usage per day, from the first day of the file, and how the rules
/// judge it: the calendar and each metric's smallest judged weekly baseline, in raw units.
struct Days {
    first: Day,
    last: Day,
    by_subscriber: HashMap<String, Vec<Usage>>,
    cal: Calendar,
    min_weekly: Usage,
}

impl Days {
    fn read(path: &str) -> Days {
        let cal = calendar();
        let mut r = BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("cdr"));
        let mut buf = Vec::new();
        let mut cells: HashMap<(String, Day), Usage> = HashMap::new();
        while let Frame::Record = read_delimited(&mut r, &mut buf).expect("framing") {
            let c = CallDetailRecord::decode(&buf[..]).expect("a CallDetailRecord");
            let voice = matches!(c.r#type(), RecordType::VoiceOut | RecordType::VoiceIn);
            let cell = cells
                .entry((c.subscriber, cal.day_of(c.event_time_ms)))
                .or_default();
            if voice {
                cell[0] += f64::from(c.duration_s);
            }
            cell[1] += c.data_bytes as f64;
            cell[2] += c.charge as f64;
        }
        Days::from_cells(cells, cal)
    }

    fn from_cells(cells: HashMap<(String, Day), Usage>, cal: Calendar) -> Days {
        let r = DetectConfig::default().rules;
        let min_weekly = [
            r.voice_drop.min_weekly_baseline * 60.0,
            r.data_drop.min_weekly_baseline * f64::from(1u32 << 20),
            r.spend_drop.min_weekly_baseline * 100.0,
        ];
        let first = cells.keys().map(|k| k.1).min().expect("records");
        let last = cells.keys().map(|k| k.1).max().expect("records");
        let mut by_subscriber: HashMap<String, Vec<Usage>> = HashMap::new();
        for ((s, d), u) in cells {
            let v = by_subscriber
                .entry(s)
                .or_insert_with(|| vec![[0.0; 3]; (last - first + 1) as usize]);
            v[(d - first) as usize] = u;
        }
        Days {
            first,
            last,
            by_subscriber,
            cal,
            min_weekly,
        }
    }

    fn onset(&self, j: &PlantedJourney) -> Day {
        self.cal.day_of(j.onset_ms.expect("a journey has an onset"))
    }

    fn mean(&self, s: &str, from: Day, to: Day) -> Usage {
        let v = &self.by_subscriber[s];
        let mut m = [0.0; 3];
        for d in from.max(self.first)..=to.min(self.last) {
            for (k, x) in m.iter_mut().enumerate() {
                *x += v[(d - self.first) as usize][k];
            }
        }
        m.map(|x| x / f64::from(to - from + 1))
    }
}

/// `(day, ratio)` for every judged day from `from` to `to`: the last `window` days' mean of
/// `metric` over the mean of the [`REFERENCE`] days before.
fn ratios(days: &Days, s: &str, metric: usize, window: i32, from: Day, to: Day) -> Vec<(Day, f64)> {
    let start = from.max(days.first + window + REFERENCE - 1);
    (start..=to.min(days.last))
        .filter(|&t| !days.cal.any_holiday(t - window + 1, t))
        .filter_map(|t| {
            let recent = days.mean(s, t - window + 1, t);
            let usual = days.mean(s, t - window - REFERENCE + 1, t - window);
            let judged = |k: usize| usual[k] * 7.0 >= days.min_weekly[k];
            if metric == SPEND_PER_VOICE {
                let per_voice = |u: Usage| u[2] / u[0];
                return (judged(0) && judged(2) && recent[0] > 0.0)
                    .then(|| (t, per_voice(recent) / per_voice(usual)));
            }
            judged(metric).then(|| (t, recent[metric] / usual[metric]))
        })
        .collect()
}

/// The operator's calendar, holidays included, as the engine's defaults have it.
fn calendar() -> Calendar {
    let cfg = DetectConfig::default();
    Calendar::new(&cfg.engine.time_zone, &cfg.calendar.holidays).expect("calendar")
}

fn main() {
    // `cargo bench` adds `--bench`; `cargo test` runs it with no arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (cdr, journeys, window) = match &args[..] {
        [] => return self_check(),
        [cdr, journeys] => (cdr, journeys, 7),
        [cdr, journeys, w] => (cdr, journeys, w.parse().expect("window days")),
        _ => panic!("usage: decay_bound CDR.pb JOURNEYS.csv [WINDOW_DAYS]"),
    };
    let days = Days::read(cdr);
    let text = std::fs::read_to_string(journeys).expect("journeys.csv");
    let planted = parse_journeys(&text).expect("journeys.csv");
    let in_truth: HashSet<&str> = planted.iter().map(|j| j.subscriber.as_str()).collect();
    let drops: Vec<&PlantedJourney> = planted
        .iter()
        .filter(|j| DROPS.iter().any(|(n, _)| *n == j.journey))
        .collect();
    let before: Vec<Usage> = drops
        .iter()
        .map(|j| days.mean(&j.subscriber, days.onset(j) - 35, days.onset(j) - 1))
        .collect();
    let lo: Usage = std::array::from_fn(|k| before.iter().map(|u| u[k]).fold(f64::MAX, f64::min));
    let hi: Usage = std::array::from_fn(|k| before.iter().map(|u| u[k]).fold(0.0, f64::max));
    let alike: Vec<&String> = days
        .by_subscriber
        .keys()
        .filter(|s| !in_truth.contains(s.as_str()))
        .filter(|s| {
            let m = days.mean(s, days.first, days.last);
            (0..3).all(|k| lo[k] <= m[k] && m[k] <= hi[k])
        })
        .collect();
    println!(
        "{} days; window {window} days against the {REFERENCE} before; {} loyal subscribers \
         with the drop subscribers' habits",
        days.last - days.first + 1,
        alike.len()
    );
    for (name, metric) in DROPS {
        report(&days, &drops, &alike, name, metric, window);
    }
}

/// One journey's table: per threshold, the median delay and the loyal look-alikes crossing.
fn report(
    days: &Days,
    drops: &[&PlantedJourney],
    alike: &[&String],
    name: &str,
    metric: usize,
    window: i32,
) {
    let lowest: Vec<f64> = alike
        .iter()
        .map(|s| {
            let r = ratios(days, s, metric, window, days.first, days.last);
            r.iter().map(|x| x.1).fold(f64::MAX, f64::min)
        })
        .collect();
    let paths: Vec<Vec<(Day, f64)>> = drops
        .iter()
        .filter(|j| j.journey == name)
        .map(|j| {
            let end = j.churn_ms.map_or(days.last, |ms| days.cal.day_of(ms) - 1);
            ratios(days, &j.subscriber, metric, window, days.onset(j), end)
                .into_iter()
                .map(|(t, r)| (t - days.onset(j) + 1, r))
                .collect()
        })
        .collect();
    println!("\n{name} ({} planted; {}):", paths.len(), METRICS[metric]);
    println!("  ratio at or below | median delay | by day 10 | loyal look-alikes crossing");
    for th in THRESHOLDS {
        let mut delays: Vec<i32> = paths
            .iter()
            .map(|p| p.iter().find(|x| x.1 <= th).map_or(i32::MAX, |x| x.0))
            .collect();
        delays.sort_unstable();
        let median = delays[(delays.len() - 1) / 2];
        let by_10 = delays.iter().filter(|&&d| d <= 10).count();
        let crossing = lowest.iter().filter(|&&r| r <= th).count();
        println!(
            "  {th:>17.2} | {:>12} | {by_10:>4} of {:<2} | {crossing} ({:.1}%)",
            if median == i32::MAX {
                "-".into()
            } else {
                format!("{median} days")
            },
            delays.len(),
            100.0 * crossing as f64 / alike.len().max(1) as f64
        );
    }
}

/// Two made-up subscribers, 30 minutes of calls a day from 2025-07-01: one steady, one whose
/// calls fall to a tenth over 21 days from day 50. The steady one never crosses; the other
/// crosses half its usual week on the day the mean of its last 7 days gets there.
fn self_check() {
    let cal = calendar();
    let first = cal.day_of(1_751_320_800_000); // 2025-07-01, 06:00 in Shanghai
    let mut cells = HashMap::new();
    for i in 0..90 {
        let fall = (f64::from(i - 50).max(0.0) / 21.0).min(1.0);
        cells.insert(("steady".to_string(), first + i), [1800.0, 1e8, 300.0]);
        let voice = 1800.0 * (1.0 - 0.9 * fall);
        cells.insert(("falling".to_string(), first + i), [voice, 1e8, 300.0]);
    }
    let days = Days::from_cells(cells, cal);
    assert_eq!(days.last - days.first, 89);
    let steady = ratios(&days, "steady", 0, 7, days.first, days.last);
    assert!(steady.len() > 40 && steady.iter().all(|r| (r.1 - 1.0).abs() < 1e-9));
    let steady_per_voice = ratios(&days, "steady", SPEND_PER_VOICE, 7, days.first, days.last);
    assert_eq!(steady_per_voice.len(), steady.len());
    assert!(steady_per_voice.iter().all(|r| (r.1 - 1.0).abs() < 1e-9));
    // Calls falling with the spend unchanged: each minute left costs more.
    let falling_per_voice = ratios(&days, "falling", SPEND_PER_VOICE, 7, days.first, days.last);
    assert!(falling_per_voice.iter().all(|r| r.1 >= 1.0 - 1e-9));
    assert!(falling_per_voice.iter().any(|r| r.1 > 1.5));
    let falling = ratios(&days, "falling", 0, 7, days.first, days.last);
    let crossed = falling
        .iter()
        .find(|r| r.1 <= 0.5)
        .expect("the fall crosses a half");
    // On day 50 + 16 the last 7 days average 1 - 0.9 * 13/21 = 0.443 of the first level,
    // and the 28 before them (the first 9 days of the fall among them) 0.932: 0.476. A day
    // earlier, 0.514.
    assert_eq!(crossed.0 - days.first, 50 + 16);
    assert!((crossed.1 - 0.443 / 0.932).abs() < 1e-3, "{crossed:?}");
    println!("decay_bound: self-check passed");
}
