//! The `[numbering]` section: the number plan that tells a competitor's number from ours,
//! with the mainland operators' ranges, care lines and IP-call prefixes as defaults.

use serde::Deserialize;

/// The number plan: which operator a number belongs to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NumberingConfig {
    /// The operator running churnwatch; every other operator is a competitor.
    pub home_operator: String,
    /// Country code stripped from international-format numbers.
    pub country_code: String,
    /// Optional CSV `number,operator` of ported numbers (they keep their original prefix).
    pub ported_numbers_file: Option<String>,
    pub operators: Vec<OperatorConfig>,
}

/// One operator's ranges and service numbers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Leading digits of its mobile numbers in national format.
    #[serde(default)]
    pub mobile_prefixes: Vec<String>,
    /// Customer-service short numbers.
    #[serde(default)]
    pub care_numbers: Vec<String>,
    /// IP-call access prefixes dialled before a number to route the call over this operator.
    #[serde(default)]
    pub ip_call_prefixes: Vec<String>,
}

pub(super) fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for NumberingConfig {
    fn default() -> Self {
        NumberingConfig {
            home_operator: "china_unicom".into(),
            country_code: "86".into(),
            ported_numbers_file: None,
            operators: vec![
                OperatorConfig {
                    id: "china_unicom".into(),
                    name: "China Unicom".into(),
                    mobile_prefixes: strings(&[
                        "130", "131", "132", "145", "146", "155", "156", "166", "167", "171",
                        "175", "176", "185", "186", "196",
                    ]),
                    care_numbers: strings(&["10010"]),
                    ip_call_prefixes: strings(&["17911", "17910"]),
                },
                OperatorConfig {
                    id: "china_mobile".into(),
                    name: "China Mobile".into(),
                    mobile_prefixes: strings(&[
                        "134", "135", "136", "137", "138", "139", "147", "148", "150", "151",
                        "152", "157", "158", "159", "172", "178", "182", "183", "184", "187",
                        "188", "195", "197", "198",
                    ]),
                    care_numbers: strings(&["10086"]),
                    ip_call_prefixes: strings(&["17951", "12593"]),
                },
                OperatorConfig {
                    id: "china_telecom".into(),
                    name: "China Telecom".into(),
                    mobile_prefixes: strings(&[
                        "133", "149", "153", "173", "174", "177", "180", "181", "189", "190",
                        "191", "193", "199",
                    ]),
                    care_numbers: strings(&["10000"]),
                    ip_call_prefixes: strings(&["17909", "17908"]),
                },
            ],
        }
    }
}
