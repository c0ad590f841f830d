//! `voice_drop` — minutes of use (MOU) dropping suddenly [002][000]: the last 7 days' voice
//! minutes below `drop_ratio` (default 50%) of the subscriber's own weekly baseline, if that
//! baseline is at least `min_weekly_baseline` minutes (default 60). See [`super::baseline`].

use crate::config::VoiceDropConfig;
use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::SubscriberState;

use super::baseline::{judge_drop, DropSpec, Verdict};
use super::RuleId;

pub fn judge(cfg: &VoiceDropConfig, state: &SubscriberState, day: Day, cal: &Calendar) -> Verdict {
    let spec = DropSpec {
        rule: RuleId::VoiceDrop,
        enabled: cfg.enabled,
        ratio: cfg.drop_ratio,
        min_weekly_baseline: cfg.min_weekly_baseline,
        unit_divisor: 60.0,
        unit: "minutes",
        what: "Voice minutes",
    };
    judge_drop(&spec, state, day, cal, |d| d.voice_s())
}
