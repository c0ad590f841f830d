//! Which operator a number belongs to, from the number plan corrected by portability.
//!
//! The other party's operator decides three rules: a call with a *competitor's*
//! customer-service line [003], forwarding to a *competitor's* mobile [003], and calls
//! dialled through a *competitor's* IP-call access prefix [002]. A number's prefix names the
//! operator that first allocated it; since mobile number portability a ported number keeps
//! its prefix, so an exact-number portability list overrides the prefix table. IP-call and
//! carrier-selection prefixes (179xx, 125xx) are recognised and stripped before the number
//! itself is classified. Lookups allocate nothing: numbers are parsed to integers.

use rustc_hash::FxHashMap;

use super::config::{ConfigError, NumberingConfig};

/// Index into the configured operator list.
pub type OperatorId = u8;

/// What the other party of a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// A customer-service short number of this operator.
    CareLine(OperatorId),
    /// A mobile number of this operator (after portability).
    Mobile(OperatorId),
    /// Anything else: fixed lines, short codes, foreign or malformed numbers.
    Other,
}

/// A classified number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    pub party: Party,
    /// The operator whose IP-call prefix was dialled, if any.
    pub via_ip_prefix: Option<OperatorId>,
}

/// The number plan: prefix table, service numbers, IP prefixes and portability list.
#[derive(Debug, Clone)]
pub struct NumberPlan {
    names: Vec<(String, String)>,
    home: OperatorId,
    country_code: String,
    /// Prefix digits with a leading '1' marker (so "13" and "013" differ) -> operator.
    prefixes: FxHashMap<u64, OperatorId>,
    max_prefix_len: usize,
    care: FxHashMap<u64, OperatorId>,
    /// Sorted longest first, so "179510" would win over "17951".
    ip_prefixes: Vec<(String, OperatorId)>,
    ported: FxHashMap<u64, OperatorId>,
}

fn digits_value(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |v, b| v * 10 + u64::from(b - b'0')))
}

fn marked(s: &str) -> Option<u64> {
    digits_value(s).map(|v| v + 10u64.pow(s.len() as u32))
}

impl NumberPlan {
    /// Numbers ported in from or out to another operator: they keep their prefix but
    /// belong to the operator the portability file names.
    fn add_ported(&mut self, ported: &[(String, String)]) -> Result<(), ConfigError> {
        let bad = |reason: String| ConfigError::Invalid {
            key: "numbering.ported_numbers_file".into(),
            reason,
        };
        for (line, (number, operator)) in ported.iter().enumerate() {
            let Some(op) = self.operator_by_id(operator) else {
                return Err(bad(format!(
                    "entry {}: unknown operator `{operator}`",
                    line + 1
                )));
            };
            let national = self.national(number.strip_prefix('+').unwrap_or(number));
            let Some(v) = digits_value(national) else {
                // The entry is named by its place, not its value: that would be an
                // (almost) subscriber number, and this text reaches logs.
                return Err(bad(format!(
                    "entry {}: not a number of 1 to 18 digits",
                    line + 1
                )));
            };
            self.ported.insert(v, op);
        }
        Ok(())
    }

    /// Builds the plan; `ported` is `(number, operator id)` pairs from the portability file.
    pub fn new(
        cfg: &NumberingConfig,
        ported: &[(String, String)],
    ) -> Result<NumberPlan, ConfigError> {
        let bad = |key: String, reason: String| ConfigError::Invalid { key, reason };
        let mut plan = NumberPlan {
            names: Vec::new(),
            home: 0,
            country_code: cfg.country_code.clone(),
            prefixes: FxHashMap::default(),
            max_prefix_len: 0,
            care: FxHashMap::default(),
            ip_prefixes: Vec::new(),
            ported: FxHashMap::default(),
        };
        if cfg.operators.len() > usize::from(OperatorId::MAX) {
            return Err(bad(
                "numbering.operators".into(),
                "too many operators".into(),
            ));
        }
        for (i, op) in cfg.operators.iter().enumerate() {
            let id = i as OperatorId;
            plan.names.push((
                op.id.clone(),
                if op.name.is_empty() {
                    op.id.clone()
                } else {
                    op.name.clone()
                },
            ));
            if op.id == cfg.home_operator {
                plan.home = id;
            }
            for p in &op.mobile_prefixes {
                let key = marked(p).ok_or_else(|| {
                    bad(
                        format!("numbering.operators[{i}].mobile_prefixes"),
                        format!("`{p}` is not digits"),
                    )
                })?;
                if let Some(prev) = plan.prefixes.insert(key, id) {
                    if prev != id {
                        return Err(bad(
                            format!("numbering.operators[{i}].mobile_prefixes"),
                            format!(
                                "prefix `{p}` is also listed for operator `{}`",
                                cfg.operators[prev as usize].id
                            ),
                        ));
                    }
                }
                plan.max_prefix_len = plan.max_prefix_len.max(p.len());
            }
            for c in &op.care_numbers {
                let v = digits_value(c).ok_or_else(|| {
                    bad(
                        format!("numbering.operators[{i}].care_numbers"),
                        format!("`{c}` is not digits"),
                    )
                })?;
                plan.care.insert(v, id);
            }
            for p in &op.ip_call_prefixes {
                plan.ip_prefixes.push((p.clone(), id));
            }
        }
        plan.ip_prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        plan.add_ported(ported)?;
        Ok(plan)
    }

    /// The operator with this configured id.
    pub fn operator_by_id(&self, id: &str) -> Option<OperatorId> {
        self.names
            .iter()
            .position(|(i, _)| i == id)
            .map(|p| p as OperatorId)
    }

    /// The configured id ("china_mobile") of an operator.
    pub fn operator_id(&self, op: OperatorId) -> &str {
        self.names
            .get(op as usize)
            .map_or("unknown", |(id, _)| id.as_str())
    }

    /// The display name ("China Mobile") of an operator.
    pub fn operator_name(&self, op: OperatorId) -> &str {
        self.names
            .get(op as usize)
            .map_or("unknown", |(_, n)| n.as_str())
    }

    pub fn home(&self) -> OperatorId {
        self.home
    }

    pub fn is_competitor(&self, op: OperatorId) -> bool {
        op != self.home
    }

    /// Drops an international prefix ("00") and the country code, leaving national digits.
    fn national<'a>(&self, n: &'a str) -> &'a str {
        let n = n.strip_prefix("00").unwrap_or(n);
        match n.strip_prefix(self.country_code.as_str()) {
            Some(rest) if !self.country_code.is_empty() && rest.len() >= 5 => rest,
            _ => n,
        }
    }

    /// Classifies a number as dialled or presented.
    pub fn classify(&self, raw: &str) -> Classified {
        self.classify_with(raw, true)
    }

    /// Classifies the other party of a call: only care lines and IP prefixes matter there,
    /// so the mobile prefix table and portability list are skipped (the hot path).
    pub fn classify_call(&self, raw: &str) -> Classified {
        self.classify_with(raw, false)
    }

    fn classify_with(&self, raw: &str, mobiles: bool) -> Classified {
        let mut n = raw.strip_prefix('+').unwrap_or(raw);
        let mut via_ip_prefix = None;
        for (p, op) in &self.ip_prefixes {
            if let Some(rest) = n.strip_prefix(p.as_str()) {
                if rest.len() >= 5 {
                    via_ip_prefix = Some(*op);
                    n = rest;
                    break;
                }
            }
        }
        let n = self.national(n);
        let party = match digits_value(n) {
            None => Party::Other,
            Some(v) => {
                if let Some(&op) = self.care.get(&v) {
                    Party::CareLine(op)
                } else if !mobiles {
                    Party::Other
                } else if let Some(&op) = self.ported.get(&v) {
                    Party::Mobile(op)
                } else {
                    self.by_prefix(n).map_or(Party::Other, Party::Mobile)
                }
            }
        };
        Classified {
            party,
            via_ip_prefix,
        }
    }

    fn by_prefix(&self, n: &str) -> Option<OperatorId> {
        let top = self.max_prefix_len.min(n.len());
        (1..=top)
            .rev()
            .find_map(|len| marked(&n[..len]).and_then(|k| self.prefixes.get(&k).copied()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::config::NumberingConfig;

    fn plan() -> NumberPlan {
        NumberPlan::new(
            &NumberingConfig::default(),
            &[("13912345678".into(), "china_unicom".into())],
        )
        .unwrap()
    }

    #[test]
    fn care_lines_and_mobiles_by_prefix() {
        let p = plan();
        let cm = p.operator_by_id("china_mobile").unwrap();
        let ct = p.operator_by_id("china_telecom").unwrap();
        assert_eq!(p.classify("10086").party, Party::CareLine(cm));
        assert_eq!(p.classify("10000").party, Party::CareLine(ct));
        assert_eq!(p.classify("13812345678").party, Party::Mobile(cm));
        assert_eq!(p.classify("8613812345678").party, Party::Mobile(cm));
        assert_eq!(p.classify("+8618912345678").party, Party::Mobile(ct));
        assert_eq!(p.classify("01012345678").party, Party::Other);
        assert_eq!(p.classify("").party, Party::Other);
        assert!(!p.is_competitor(p.operator_by_id("china_unicom").unwrap()));
        assert!(p.is_competitor(cm));
    }

    #[test]
    fn a_ported_number_keeps_its_prefix_but_not_its_operator() {
        let p = plan();
        let cu = p.operator_by_id("china_unicom").unwrap();
        // 139 is a China Mobile prefix, but this number was ported to China Unicom.
        assert_eq!(p.classify("13912345678").party, Party::Mobile(cu));
        assert_eq!(p.classify("8613912345678").party, Party::Mobile(cu));
    }

    #[test]
    fn ip_call_prefixes_are_stripped_before_classifying() {
        let p = plan();
        let cm = p.operator_by_id("china_mobile").unwrap();
        let cu = p.operator_by_id("china_unicom").unwrap();
        let c = p.classify("1795113012345678");
        assert_eq!(c.via_ip_prefix, Some(cm));
        assert_eq!(c.party, Party::Mobile(cu));
        // A bare "17951" is not a prefixed call.
        assert_eq!(p.classify("17951").via_ip_prefix, None);
    }

    #[test]
    fn unknown_ported_operator_is_a_config_error() {
        let err = NumberPlan::new(
            &NumberingConfig::default(),
            &[("13812345678".into(), "acme".into())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("numbering.ported_numbers_file"));
    }

    #[test]
    fn a_malformed_ported_number_is_named_by_its_entry_not_its_digits() {
        let err = NumberPlan::new(
            &NumberingConfig::default(),
            &[
                ("13812345678".into(), "china_mobile".into()),
                ("1381234567x".into(), "china_mobile".into()),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("entry 2"), "{err}");
        assert!(!err.contains("1381234567"), "{err}");
    }
}
