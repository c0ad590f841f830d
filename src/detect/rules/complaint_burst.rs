//! `complaint_burst` — 2 or more complaints, or 3 or more fault reports, within 90 days.
//!
//! Why: 71% of subscribers who left had complained or reported faults in the half year
//! before; China Telecom Guangdong's high-risk list names "2+ complaints or 3+ repeated fault
//! reports in the past three months" [002]. Judged at day close over closed days; fires
//! when the burst begins, and not again while it lasts.
//!
//! Aim and delay: the seeds' own threshold, with no false alarm aimed at beyond a loyal
//! subscriber who complains twice. The delay is the wait for the second complaint or the third
//! fault report. On `generate`'s workload (docs/quality.md: 20,000 subscribers, 110 days):
//! median 23.5 days from the first complaint (p90 41), 25 from the first fault report (p90 38),
//! precision 0.98.

use crate::detect::calendar::{Calendar, Day};

use super::baseline::Verdict;
use super::{RuleId, SignalDraft};

rule_config! {
    /// `complaint_burst` [002].
    ComplaintBurstConfig { weight: 60, cooldown_days: 30,
        min_complaints: u32 = 2,
        min_fault_reports: u32 = 3,
        window_days: u32 = 90 }
    validate(self, key) {
        if !(1..=8).contains(&self.min_complaints) { return Err(invalid(&format!("{key}.min_complaints"), "must be 1 to 8")); }
        if !(1..=8).contains(&self.min_fault_reports) { return Err(invalid(&format!("{key}.min_fault_reports"), "must be 1 to 8")); }
        if !(1..=366).contains(&self.window_days) { return Err(invalid(&format!("{key}.window_days"), "must be 1 to 366")); }
    }
}

/// A complaint or fault report on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Contact {
    pub day: Day,
    pub fault: bool,
}

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "Repeated complaints or faults: make an apology call, confirm the fix and offer a \
     gift or one-off discount.";

pub fn judge(cfg: &ComplaintBurstConfig, history: &[Contact], day: Day, cal: &Calendar) -> Verdict {
    if !cfg.enabled {
        return Verdict::No;
    }
    let from = day - cfg.window_days as i32 + 1;
    let within = history.iter().filter(|c| c.day >= from && c.day <= day);
    let (faults, complaints): (Vec<&Contact>, Vec<&Contact>) = within.partition(|c| c.fault);
    let (nc, nf) = (complaints.len() as u32, faults.len() as u32);
    if nc < cfg.min_complaints && nf < cfg.min_fault_reports {
        return Verdict::No;
    }
    let summary = format!(
        "{nc} complaint(s) and {nf} fault report(s) in the last {} days",
        cfg.window_days
    );
    let first = complaints
        .iter()
        .chain(faults.iter())
        .map(|c| c.day)
        .min()
        .unwrap_or(day);
    let mut d = SignalDraft::at(
        RuleId::ComplaintBurst,
        i64::from(day),
        cal.day_start_ms(day + 1),
        summary,
    )
    .with("complaints", f64::from(nc))
    .with("fault_reports", f64::from(nf));
    d.first_seen_ms = cal.day_start_ms(first);
    Verdict::Holds(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::new("Asia/Shanghai", &[]).unwrap()
    }

    fn c(day: Day) -> Contact {
        Contact { day, fault: false }
    }
    fn f(day: Day) -> Contact {
        Contact { day, fault: true }
    }

    #[test]
    fn two_complaints_fire_one_does_not() {
        let cfg = ComplaintBurstConfig::default();
        assert_eq!(judge(&cfg, &[c(100)], 120, &cal()), Verdict::No);
        assert!(matches!(
            judge(&cfg, &[c(100), c(120)], 120, &cal()),
            Verdict::Holds(_)
        ));
    }

    #[test]
    fn three_faults_fire_two_do_not() {
        let cfg = ComplaintBurstConfig::default();
        assert_eq!(judge(&cfg, &[f(100), f(110)], 120, &cal()), Verdict::No);
        assert!(matches!(
            judge(&cfg, &[f(100), f(110), f(120)], 120, &cal()),
            Verdict::Holds(_)
        ));
    }

    #[test]
    fn the_window_is_ninety_days() {
        let cfg = ComplaintBurstConfig::default();
        // Days 100 and 189 are 90 days inclusive; 100 and 190 are 91.
        assert!(matches!(
            judge(&cfg, &[c(100), c(189)], 189, &cal()),
            Verdict::Holds(_)
        ));
        assert_eq!(judge(&cfg, &[c(100), c(190)], 190, &cal()), Verdict::No);
    }

    #[test]
    fn contacts_after_the_judged_day_do_not_count() {
        let cfg = ComplaintBurstConfig::default();
        assert_eq!(judge(&cfg, &[c(100), c(121)], 120, &cal()), Verdict::No);
    }
}
