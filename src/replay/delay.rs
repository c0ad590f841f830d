//! Detection delay per planted journey: how long after a journey's onset its subscriber got
//! a first ticket, beside the lead time that ticket left before the churn.
//!
//! Pure (no I/O): the ground truth `generate` writes (`journeys.csv`: subscriber, journey,
//! churn time, look-alike flag, onset time) and the final tickets go in; a
//! [`JourneyDelays`] comes out, part of the [`super::quality::QualityReport`] when
//! `replay --journeys` is given.
//!
//! Definitions, per journey name:
//! - **detection** = the subscriber's first ticket created at or after the onset (a ticket
//!   before the onset is a false alarm, not a detection) and, for a leaver, before the churn
//!   (a ticket after the subscriber left catches nothing). Control-group tickets count: the
//!   delay measures the detector, not who was called;
//! - **caught** = journeys with a detection; the rest (never ticketed, or only too early or
//!   too late) are **missed**;
//! - **delay** = days from onset to detection: median (mean of the middle two for an even
//!   count) and p90 (nearest rank: 90% of delays are shorter or equal), one decimal;
//! - **lead** = days from detection to churn, median over the caught leavers.
//!
//! Look-alikes have no onset: they are counted with the subscribers among them who got any
//! ticket at all, since every such ticket is a false alarm.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use super::quality::{median, nearest_rank};
use crate::proto::CareTicket;

const DAY_MS: f64 = 86_400_000.0;

/// One row of the ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedJourney {
    pub subscriber: String,
    pub journey: String,
    pub churn_ms: Option<i64>,
    pub look_alike: bool,
    /// Start of the onset day; `None` for look-alikes.
    pub onset_ms: Option<i64>,
}

/// Delays of one journey name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JourneyDelay {
    pub planted: u64,
    pub caught: u64,
    pub missed: u64,
    /// Days from onset to detection, one decimal; absent when nothing was caught.
    pub delay_days_median: Option<f64>,
    pub delay_days_p90: Option<f64>,
    /// Days from detection to churn over the caught leavers, one decimal.
    pub lead_days_median: Option<f64>,
}

/// How many of one look-alike were ticketed at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LookAlikeTickets {
    pub planted: u64,
    pub ticketed: u64,
}

/// Per-journey delays and look-alike false alarms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JourneyDelays {
    pub by_journey: BTreeMap<String, JourneyDelay>,
    pub look_alikes: BTreeMap<String, LookAlikeTickets>,
}

/// Why a ground-truth file could not be read: the 1-based line and the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct JourneysError {
    pub line: usize,
    pub reason: String,
}

/// Parses `journeys.csv`, finding its columns by the header's names (`subscriber`,
/// `journey`, `churn_time_ms`, `look_alike`, `onset_time_ms`); a journey row needs an onset.
pub fn parse_journeys(text: &str) -> Result<Vec<PlantedJourney>, JourneysError> {
    let err = |line: usize, reason: String| JourneysError { line, reason };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            err(
                1,
                format!("no `{name}` column (written by an older generate?)"),
            )
        })
    };
    let cols = [
        col("subscriber")?,
        col("journey")?,
        col("churn_time_ms")?,
        col("look_alike")?,
        col("onset_time_ms")?,
    ];
    let time = |n: usize, v: &str, what: &str| -> Result<Option<i64>, JourneysError> {
        match v.trim() {
            "" => Ok(None),
            v => v
                .parse()
                .map(Some)
                .map_err(|_| err(n, format!("{what} `{v}` is not a number"))),
        }
    };
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let [sub, journey, churn, look, onset] =
            cols.map(|c| f.get(c).copied().unwrap_or_default());
        if f.len() < header.len() {
            return Err(err(
                n,
                format!("{} fields, expected {}", f.len(), header.len()),
            ));
        }
        let row = PlantedJourney {
            subscriber: sub.trim().to_string(),
            journey: journey.trim().to_string(),
            churn_ms: time(n, churn, "churn_time_ms")?,
            look_alike: look.trim() == "true",
            onset_ms: time(n, onset, "onset_time_ms")?,
        };
        if !row.look_alike && row.onset_ms.is_none() {
            return Err(err(
                n,
                format!("journey {} has no onset_time_ms", row.journey),
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Measures every planted journey against the final tickets (last version per id).
pub fn measure(planted: &[PlantedJourney], tickets: &[CareTicket]) -> JourneyDelays {
    let mut times: HashMap<&str, Vec<i64>> = HashMap::new();
    for t in tickets {
        times
            .entry(t.subscriber.as_str())
            .or_default()
            .push(t.created_time_ms);
    }
    for v in times.values_mut() {
        v.sort_unstable();
    }
    let mut delays: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut out = JourneyDelays::default();
    for j in planted {
        let seen = times.get(j.subscriber.as_str());
        if j.look_alike {
            let e = out.look_alikes.entry(j.journey.clone()).or_default();
            e.planted += 1;
            e.ticketed += u64::from(seen.is_some());
            continue;
        }
        let row = out.by_journey.entry(j.journey.clone()).or_default();
        row.planted += 1;
        let (delay, lead) = delays.entry(j.journey.as_str()).or_default();
        match (j.onset_ms, seen.and_then(|v| detection(v, j))) {
            (Some(onset), Some(at)) => {
                row.caught += 1;
                delay.push((at - onset) as f64 / DAY_MS);
                if let Some(c) = j.churn_ms {
                    lead.push((c - at) as f64 / DAY_MS);
                }
            }
            _ => row.missed += 1,
        }
    }
    for (name, (mut delay, mut lead)) in delays {
        delay.sort_by(f64::total_cmp);
        lead.sort_by(f64::total_cmp);
        if let Some(row) = out.by_journey.get_mut(name) {
            row.delay_days_median = median(&delay).map(tenths);
            row.delay_days_p90 = nearest_rank(&delay, 0.90).map(tenths);
            row.lead_days_median = median(&lead).map(tenths);
        }
    }
    out
}

/// The first of the subscriber's sorted ticket times at or after the onset, if it is
/// before the churn.
fn detection(sorted: &[i64], j: &PlantedJourney) -> Option<i64> {
    let onset = j.onset_ms?;
    let at = *sorted.get(sorted.partition_point(|&t| t < onset))?;
    j.churn_ms.is_none_or(|c| at < c).then_some(at)
}

/// Rounds to one decimal.
fn tenths(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn days(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.1}"))
}

impl fmt::Display for JourneyDelays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  detection delay by journey (days from onset to the first ticket)"
        )?;
        writeln!(
            f,
            "    {:<36} {:>7} {:>6} {:>7} {:>7} {:>6}",
            "", "planted", "caught", "delay50", "delay90", "lead50"
        )?;
        for (name, j) in &self.by_journey {
            writeln!(
                f,
                "    {name:<36} {:>7} {:>6} {:>7} {:>7} {:>6}",
                j.planted,
                j.caught,
                days(j.delay_days_median),
                days(j.delay_days_p90),
                days(j.lead_days_median)
            )?;
        }
        if !self.look_alikes.is_empty() {
            writeln!(f, "  look-alikes ticketed")?;
            for (name, l) in &self.look_alikes {
                writeln!(f, "    {name:<36} {:>3} of {}", l.ticketed, l.planted)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn ticket(sub: &str, day: f64) -> CareTicket {
        CareTicket {
            subscriber: sub.into(),
            created_time_ms: (day * DAY as f64) as i64,
            ..Default::default()
        }
    }

    fn journey(sub: &str, name: &str, onset: i64, churn: Option<i64>) -> PlantedJourney {
        PlantedJourney {
            subscriber: sub.into(),
            journey: name.into(),
            churn_ms: churn.map(|c| c * DAY),
            look_alike: false,
            onset_ms: Some(onset * DAY),
        }
    }

    #[test]
    fn delay_is_from_onset_to_the_first_ticket_at_or_after_it() {
        let planted = [
            journey("a", "silent", 10, Some(40)),
            journey("b", "silent", 20, Some(45)),
        ];
        let tickets = [ticket("a", 17.0), ticket("a", 30.0), ticket("b", 22.5)];
        let r = measure(&planted, &tickets);
        let s = &r.by_journey["silent"];
        assert_eq!((s.planted, s.caught, s.missed), (2, 2, 0));
        assert_eq!(s.delay_days_median, Some(4.8), "mean of 2.5 and 7");
        assert_eq!(s.delay_days_p90, Some(7.0));
        assert_eq!(s.lead_days_median, Some(22.8), "mean of 23 and 22.5");
    }

    #[test]
    fn a_ticket_before_onset_is_not_a_detection() {
        let planted = [journey("a", "decay", 30, Some(60))];
        let r = measure(&planted, &[ticket("a", 12.0)]);
        let d = &r.by_journey["decay"];
        assert_eq!((d.caught, d.missed), (0, 1));
        assert_eq!(d.delay_days_median, None);
        // The same ticket at the onset itself is one, with no delay.
        let r = measure(&planted, &[ticket("a", 12.0), ticket("a", 30.0)]);
        assert_eq!(r.by_journey["decay"].delay_days_median, Some(0.0));
    }

    #[test]
    fn a_journey_never_ticketed_or_ticketed_after_churn_is_missed() {
        let planted = [
            journey("a", "care", 5, Some(30)),
            journey("b", "care", 5, Some(30)),
            journey("c", "care", 5, None),
        ];
        let r = measure(&planted, &[ticket("b", 31.0), ticket("c", 6.0)]);
        let c = &r.by_journey["care"];
        assert_eq!((c.planted, c.caught, c.missed), (3, 1, 2));
        assert_eq!(c.delay_days_median, Some(1.0));
        assert_eq!(c.lead_days_median, None, "the one caught stayed");
    }

    #[test]
    fn p90_is_the_nearest_rank() {
        let planted: Vec<PlantedJourney> = (0..20)
            .map(|i| journey(&format!("s{i}"), "drop", 0, Some(100)))
            .collect();
        let tickets: Vec<CareTicket> = (0..20)
            .map(|i| ticket(&format!("s{i}"), f64::from(i + 1)))
            .collect();
        let r = measure(&planted, &tickets);
        let d = &r.by_journey["drop"];
        assert_eq!(d.delay_days_p90, Some(18.0), "18 of 20 at or below");
        assert_eq!(d.delay_days_median, Some(10.5));
        let one = measure(&planted[..1], &tickets[..1]);
        assert_eq!(one.by_journey["drop"].delay_days_p90, Some(1.0));
    }

    #[test]
    fn look_alikes_count_any_ticket() {
        let mut l = journey("x", "holiday_dip", 0, None);
        (l.look_alike, l.onset_ms) = (true, None);
        let mut m = l.clone();
        m.subscriber = "y".into();
        let r = measure(&[l, m], &[ticket("x", 3.0)]);
        assert_eq!(
            r.look_alikes["holiday_dip"],
            LookAlikeTickets {
                planted: 2,
                ticketed: 1
            }
        );
        assert!(r.by_journey.is_empty());
    }

    #[test]
    fn the_ground_truth_is_read_by_column_name() {
        let text = "subscriber,journey,expected_rule,churn_time_ms,look_alike,onset_time_ms\n\
                    861,goes_silent,silent_days,900,false,100\n\
                    862,holiday_dip,,,true,\n";
        let rows = parse_journeys(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], journey_ms("861", "goes_silent", 100, Some(900)));
        assert!(rows[1].look_alike && rows[1].onset_ms.is_none() && rows[1].churn_ms.is_none());
        let old = "subscriber,journey,expected_rule,churn_time_ms,look_alike\n";
        assert!(parse_journeys(old)
            .unwrap_err()
            .reason
            .contains("onset_time_ms"));
        let bad = "subscriber,journey,expected_rule,churn_time_ms,look_alike,onset_time_ms\n\
                   861,goes_silent,silent_days,,false,\n";
        assert_eq!(parse_journeys(bad).unwrap_err().line, 2);
    }

    fn journey_ms(sub: &str, name: &str, onset: i64, churn: Option<i64>) -> PlantedJourney {
        PlantedJourney {
            subscriber: sub.into(),
            journey: name.into(),
            churn_ms: churn,
            look_alike: false,
            onset_ms: Some(onset),
        }
    }
}
