//! `sustained_decline` — spend down more than 20% month over month, three months running.
//!
//! Why: China Telecom Guangdong's high-risk list starts with "local-call spend down more than
//! 20% for three consecutive months" [002]; leavers' spend declines month after month before
//! they go. Judged at month close on the subscriber's total spend (CDR charges; the local-call
//! share is not separable in CDRs). Fires when the run of declining months reaches exactly
//! `months` (default 3), so a fourth declining month is the same episode. The month the
//! decline starts from must have at least `min_start_spend_yuan` (default 20).
//!
//! Withdrawn (`recovered`) once a month closed after the ticket's spends at least the
//! midpoint of the ticket's start and last month (see [`crate::detect::withdraw`]).
//!
//! Aim and delay: three months of 20% falls is a trend no ordinary month-to-month swing
//! repeats, so the rule aims at no false alarm on a steady subscriber; its delay is the
//! three months by definition (92 days from the reference month's start on `generate`'s
//! 150-day workload). The daily drop rules catch a fast fall far sooner.

use crate::detect::calendar::{first_day_of_month, Calendar};
use crate::detect::event::Period;
use crate::detect::state::{SubscriberState, MONTHS};

use super::baseline::{round2, Verdict};
use super::{RuleId, SignalDraft};

rule_config! {
    /// `sustained_decline` [002].
    SustainedDeclineConfig { weight: 55, cooldown_days: 28,
        /// Each month's spend must be below (1 - this) times the month before.
        min_monthly_drop: f64 = 0.2,
        /// Consecutive months of decline.
        months: u32 = 3,
        /// Spend of the month the decline starts from, yuan.
        min_start_spend_yuan: f64 = 20.0 }
    validate(self, key) {
        check_fraction(key, "min_monthly_drop", self.min_monthly_drop)?;
        if !(1..=4).contains(&self.months) { return Err(invalid(&format!("{key}.months"), "must be 1 to 4 (6 months are kept)")); }
        check_positive(key, "min_start_spend_yuan", self.min_start_spend_yuan)?;
    }
}

/// Judges the month that just closed (after its spend was stored).
/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "Usage is falling: call to learn why and offer a plan that fits, free minutes or \
     a data pack.";

pub fn judge(
    cfg: &SustainedDeclineConfig,
    state: &SubscriberState,
    month: Period,
    cal: &Calendar,
) -> Verdict {
    let k = cfg.months as i32;
    if !cfg.enabled || !state.known_since(first_day_of_month(Period(month.0 - k))) {
        return Verdict::No;
    }
    let spend = |m: i32| state.month_spend_fen(m) as f64;
    let keep = 1.0 - cfg.min_monthly_drop;
    let mut run = 0;
    while run < MONTHS as i32 - 1 {
        let m = month.0 - run;
        if spend(m - 1) > 0.0 && spend(m) < keep * spend(m - 1) {
            run += 1;
        } else {
            break;
        }
    }
    let start = spend(month.0 - k) / 100.0;
    if run != k || start < cfg.min_start_spend_yuan {
        return Verdict::No;
    }
    let now = spend(month.0) / 100.0;
    let summary = format!(
        "Monthly spend fell {k} months running: {start:.2} yuan in {} to {now:.2} yuan in {month}",
        Period(month.0 - k)
    );
    let next = first_day_of_month(Period(month.0 + 1));
    let mut d = SignalDraft::at(
        RuleId::SustainedDecline,
        i64::from(month.0),
        cal.day_start_ms(next),
        summary,
    )
    .with("start_month_yuan", round2(start))
    .with("last_month_yuan", round2(now))
    .with("months", f64::from(k as u32));
    d.first_seen_ms = cal.day_start_ms(first_day_of_month(Period(month.0 - k + 1)));
    Verdict::Holds(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::new("Asia/Shanghai", &[]).unwrap()
    }

    fn with_months(spend_yuan: &[u32], last: Period) -> SubscriberState {
        let mut s = SubscriberState::default();
        let first = Period(last.0 - spend_yuan.len() as i32 + 1);
        s.note_seen(first_day_of_month(first));
        for (i, y) in spend_yuan.iter().enumerate() {
            s.month_charge_fen = y * 100;
            s.close_month(first.0 + i as i32);
        }
        s
    }

    #[test]
    fn three_declines_fire_two_do_not() {
        let m = Period::parse("2026-06").unwrap();
        let cfg = SustainedDeclineConfig::default();
        assert!(matches!(
            judge(&cfg, &with_months(&[100, 100, 79, 63, 50], m), m, &cal()),
            Verdict::Holds(_)
        ));
        assert_eq!(
            judge(&cfg, &with_months(&[100, 100, 100, 79, 63], m), m, &cal()),
            Verdict::No
        );
    }

    #[test]
    fn exactly_twenty_percent_is_not_more_than_twenty() {
        let m = Period::parse("2026-06").unwrap();
        let cfg = SustainedDeclineConfig::default();
        assert_eq!(
            judge(&cfg, &with_months(&[100, 100, 80, 64, 51], m), m, &cal()),
            Verdict::No
        );
    }

    #[test]
    fn a_fourth_declining_month_is_the_same_episode() {
        let m = Period::parse("2026-06").unwrap();
        let cfg = SustainedDeclineConfig::default();
        assert_eq!(
            judge(&cfg, &with_months(&[100, 79, 63, 50, 39], m), m, &cal()),
            Verdict::No
        );
    }
}
