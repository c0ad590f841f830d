//! `offnet_ip_calls` — calls dialled through a competitor's IP-call access prefix.
//!
//! Why: a subscriber who routes long-distance calls over another network's IP service
//! (17951 China Mobile, 17909 China Telecom...) already pays a competitor; China Telecom
//! Guangdong lists "over 50 yuan a month on another network's IP-call service" as high risk
//! [002]. The competitor's charge never appears in our records, so spend is estimated as
//! minutes x `tariff_yuan_per_minute` (default 0.30). Judged at day close on the month's
//! closed days; once per month.
//!
//! Aim and delay: no false alarm is aimed at beyond a subscriber who uses a rival's IP service
//! and stays. The delay is the month's calls passing 50 yuan. On `generate`'s workload
//! (docs/quality.md: 20,000 subscribers, 110 days): median 11 days from the first such call
//! (p90 13), precision 1.00.

use crate::detect::calendar::{Calendar, Day};
use crate::detect::event::Period;

use super::baseline::{round2, Verdict};
use super::{RuleId, SignalDraft};

rule_config! {
    /// `offnet_ip_calls` [002].
    OffnetIpCallsConfig { weight: 50, cooldown_days: 28,
        /// Estimated monthly spend on the other network that fires the rule, yuan.
        monthly_threshold_yuan: f64 = 50.0,
        /// The competitor's estimated per-minute IP-call tariff, yuan.
        tariff_yuan_per_minute: f64 = 0.30 }
    validate(self, key) {
        check_positive(key, "monthly_threshold_yuan", self.monthly_threshold_yuan)?;
        check_positive(key, "tariff_yuan_per_minute", self.tariff_yuan_per_minute)?;
    }
}

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str = "The customer routes calls over a competitor's IP-call service: offer a \
                 long-distance or roaming pack.";

pub fn judge(
    cfg: &OffnetIpCallsConfig,
    month_ip_s: u16,
    day: Day,
    month: Period,
    cal: &Calendar,
) -> Verdict {
    if !cfg.enabled {
        return Verdict::No;
    }
    let minutes = f64::from(month_ip_s) / 60.0;
    let estimate = f64::from(month_ip_s) * cfg.tariff_yuan_per_minute / 60.0;
    if estimate < cfg.monthly_threshold_yuan {
        return Verdict::No;
    }
    let summary =
        format!("About {estimate:.0} yuan of calls over a competitor's IP-call service in {month}");
    Verdict::Holds(
        SignalDraft::at(
            RuleId::OffnetIpCalls,
            i64::from(month.0),
            cal.day_start_ms(day + 1),
            summary,
        )
        .with("minutes", round2(minutes))
        .with("estimated_yuan", round2(estimate)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_yuan_fires_just_under_does_not() {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        let cfg = OffnetIpCallsConfig::default();
        let m = Period::parse("2026-05").unwrap();
        // 50 yuan at 0.30 a minute is 166.67 minutes = 10,000 s.
        assert_eq!(judge(&cfg, 9_999, 10, m, &cal), Verdict::No);
        assert!(matches!(
            judge(&cfg, 10_000, 10, m, &cal),
            Verdict::Holds(_)
        ));
    }
}
