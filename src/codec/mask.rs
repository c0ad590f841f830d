//! Masking of digit runs in error text. serde quotes the offending value in its messages,
//! and that value may be a subscriber number; the text ends up in terminals and in
//! dead-letter topics, so every run long enough to be a number keeps only its last four
//! digits.

/// Replaces all but the last four digits of every run of 7 or more digits with `*`.
pub(super) fn mask_digit_runs(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if run >= 7 {
            out.push_str(&"*".repeat(run - 4));
            out.push_str(&s[i + run - 4..i + run]);
            i += run;
        } else if run > 0 {
            out.push_str(&s[i..i + run]);
            i += run;
        } else {
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_digit_runs_and_other_text_are_kept() {
        assert_eq!(
            mask_digit_runs("at column 42, 中 123456"),
            "at column 42, 中 123456"
        );
    }
}
