//! What `generate` plants: churn journeys, one shape of behaviour per rule, and loyal
//! look-alikes that resemble a churn sign but must raise no ticket.
//!
//! Their names are the ground truth's vocabulary (`journeys.csv`), and each journey names
//! the rule it should raise, so detection quality can be scored per rule.

/// A planted churn journey: the rule it should raise, as a shape of behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JourneyKind {
    CareCall,
    ForwardStreak,
    ForwardRegistration,
    ZeroSpend,
    Silent,
    Overdue,
    ReminderBill,
    ReminderTopUp,
    SpendDrop,
    VoiceDrop,
    DataDrop,
    SustainedDecline,
    NumberRetention,
    ContractExpiry,
    ComplaintBurst,
    FaultBurst,
    IpCalls,
    BillShock,
    /// Ports out with no warning sign: the detector cannot catch these (honest recall).
    QuietLeaver,
}

impl JourneyKind {
    pub const ALL: [JourneyKind; 19] = [
        JourneyKind::CareCall,
        JourneyKind::ForwardStreak,
        JourneyKind::ForwardRegistration,
        JourneyKind::ZeroSpend,
        JourneyKind::Silent,
        JourneyKind::Overdue,
        JourneyKind::ReminderBill,
        JourneyKind::ReminderTopUp,
        JourneyKind::SpendDrop,
        JourneyKind::VoiceDrop,
        JourneyKind::DataDrop,
        JourneyKind::SustainedDecline,
        JourneyKind::NumberRetention,
        JourneyKind::ContractExpiry,
        JourneyKind::ComplaintBurst,
        JourneyKind::FaultBurst,
        JourneyKind::IpCalls,
        JourneyKind::BillShock,
        JourneyKind::QuietLeaver,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JourneyKind::CareCall => "competitor_care_call",
            JourneyKind::ForwardStreak => "offnet_forwarding_streak",
            JourneyKind::ForwardRegistration => "offnet_forwarding_registration",
            JourneyKind::ZeroSpend => "parked_sim_zero_spend",
            JourneyKind::Silent => "goes_silent",
            JourneyKind::Overdue => "unpaid_bill",
            JourneyKind::ReminderBill => "bill_paid_at_the_last_minute",
            JourneyKind::ReminderTopUp => "prepaid_runs_down",
            JourneyKind::SpendDrop => "paid_calls_moved_away",
            JourneyKind::VoiceDrop => "calls_moved_to_apps",
            JourneyKind::DataDrop => "second_data_sim",
            JourneyKind::SustainedDecline => "spend_declines_for_months",
            JourneyKind::NumberRetention => "parks_the_number",
            JourneyKind::ContractExpiry => "contract_ending",
            JourneyKind::ComplaintBurst => "complains_twice",
            JourneyKind::FaultBurst => "three_fault_reports",
            JourneyKind::IpCalls => "competitor_ip_calls",
            JourneyKind::BillShock => "first_bill_shock",
            JourneyKind::QuietLeaver => "quiet_leaver",
        }
    }

    /// The rule id this journey should raise (empty for the quiet leaver).
    pub fn expected_rule(self) -> &'static str {
        match self {
            JourneyKind::CareCall => "competitor_care_call",
            JourneyKind::ForwardStreak => "offnet_forwarding_streak",
            JourneyKind::ForwardRegistration => "offnet_forwarding_registration",
            JourneyKind::ZeroSpend => "zero_spend_month",
            JourneyKind::Silent => "silent_days",
            JourneyKind::Overdue => "overdue_bill",
            JourneyKind::ReminderBill | JourneyKind::ReminderTopUp => "payment_reminder",
            JourneyKind::SpendDrop => "spend_drop",
            JourneyKind::VoiceDrop => "voice_drop",
            JourneyKind::DataDrop => "data_drop",
            JourneyKind::SustainedDecline => "sustained_decline",
            JourneyKind::NumberRetention => "number_retention_suspension",
            JourneyKind::ContractExpiry => "contract_expiry",
            JourneyKind::ComplaintBurst | JourneyKind::FaultBurst => "complaint_burst",
            JourneyKind::IpCalls => "offnet_ip_calls",
            JourneyKind::BillShock => "bill_shock",
            JourneyKind::QuietLeaver => "",
        }
    }

    /// The kind a uniform draw picks, by relative frequency.
    pub(super) fn weighted(draw: u64) -> JourneyKind {
        let total: u32 = JourneyKind::ALL.iter().map(|k| k.weight()).sum();
        let mut x = (draw % u64::from(total)) as u32;
        for kind in JourneyKind::ALL {
            if x < kind.weight() {
                return kind;
            }
            x -= kind.weight();
        }
        JourneyKind::CareCall
    }

    /// Relative frequency among the planted journeys.
    fn weight(self) -> u32 {
        match self {
            JourneyKind::QuietLeaver => 1,
            JourneyKind::ComplaintBurst | JourneyKind::FaultBurst => 4,
            JourneyKind::ReminderBill | JourneyKind::ReminderTopUp => 4,
            _ => 7,
        }
    }
}

/// A loyal subscriber whose behaviour resembles a churn sign but must raise no ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LookAlike {
    /// A heavy user whose usage dips over a configured public holiday.
    HolidayDip,
    /// Forwards calls to a China Unicom (own network) mobile for 6-10 days.
    OnNetForwarding,
    SingleComplaint,
    /// Two fault reports (three are needed).
    TwoFaultReports,
    /// A call to 10086 of exactly 60 s (the rule wants more than 60).
    CareCall60s,
    /// A long call to our own care line, 10010.
    OwnCareLine,
    /// Many minutes through our own IP-call prefix 17911.
    OwnIpPrefix,
    /// Competitor IP calls worth 45 yuan in a month (threshold 50).
    IpCallsBelowThreshold,
    /// A new subscriber whose first bill is exactly twice the plan fee.
    FirstBillTwiceFee,
    /// A prepaid top-up leaving exactly 5.00 yuan.
    BalanceExactlyFive,
    /// Pays the bill 4 days before it is due (the reminder is at 3).
    PaysFourDaysEarly,
    /// Renews the contract 61-70 days before it would end.
    ContractRenewed,
    /// Travels abroad every 4-8 weeks for 5-9 days: calls almost stop, a little roaming
    /// data, then usage comes back.
    RegularTraveller,
    /// Moves calls to apps: voice falls to 15-35% at once, data rises so that spend stays
    /// about the same.
    VoiceToData,
    /// Changes to a cheaper plan (same rate band); usage unchanged, so the bill falls only
    /// by the fee difference.
    PlanDowngrade,
}

impl LookAlike {
    pub const ALL: [LookAlike; 15] = [
        LookAlike::HolidayDip,
        LookAlike::OnNetForwarding,
        LookAlike::SingleComplaint,
        LookAlike::TwoFaultReports,
        LookAlike::CareCall60s,
        LookAlike::OwnCareLine,
        LookAlike::OwnIpPrefix,
        LookAlike::IpCallsBelowThreshold,
        LookAlike::FirstBillTwiceFee,
        LookAlike::BalanceExactlyFive,
        LookAlike::PaysFourDaysEarly,
        LookAlike::ContractRenewed,
        LookAlike::RegularTraveller,
        LookAlike::VoiceToData,
        LookAlike::PlanDowngrade,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LookAlike::HolidayDip => "holiday_dip",
            LookAlike::OnNetForwarding => "onnet_forwarding",
            LookAlike::SingleComplaint => "single_complaint",
            LookAlike::TwoFaultReports => "two_fault_reports",
            LookAlike::CareCall60s => "care_call_60s",
            LookAlike::OwnCareLine => "own_care_line",
            LookAlike::OwnIpPrefix => "own_ip_prefix",
            LookAlike::IpCallsBelowThreshold => "ip_calls_45_yuan",
            LookAlike::FirstBillTwiceFee => "first_bill_twice_fee",
            LookAlike::BalanceExactlyFive => "balance_exactly_5_yuan",
            LookAlike::PaysFourDaysEarly => "pays_4_days_before_due",
            LookAlike::ContractRenewed => "contract_renewed",
            LookAlike::RegularTraveller => "regular_traveller",
            LookAlike::VoiceToData => "voice_to_data",
            LookAlike::PlanDowngrade => "plan_downgrade",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_draws_reach_every_kind_and_names_are_distinct() {
        let drawn: std::collections::BTreeSet<JourneyKind> =
            (0..1000).map(JourneyKind::weighted).collect();
        assert_eq!(drawn.len(), JourneyKind::ALL.len());
        let names: std::collections::BTreeSet<&str> =
            JourneyKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), JourneyKind::ALL.len());
        let looks: std::collections::BTreeSet<&str> =
            LookAlike::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(looks.len(), LookAlike::ALL.len());
    }

    #[test]
    fn only_the_quiet_leaver_expects_no_rule() {
        for k in JourneyKind::ALL {
            assert_eq!(
                k.expected_rule().is_empty(),
                k == JourneyKind::QuietLeaver,
                "{k:?}"
            );
        }
    }
}
