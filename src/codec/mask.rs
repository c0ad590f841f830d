//! Masking of digit runs in error text. serde quotes the offending value in its messages,
//! and that value may be a subscriber number; the text ends up in terminals and in
//! dead-letter topics, so every run long enough to be a number keeps only its last four
//! digits. Control characters are escaped too (a newline in a quoted field name would
//! otherwise split a reason over lines, in a terminal or a log).

/// Replaces all but the last four digits of every run of 7 or more digits with `*`, and
/// writes control characters escaped (`\n`), so the text stays on one line.
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
            if ch.is_control() {
                out.extend(ch.escape_default());
            } else {
                out.push(ch);
            }
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

    #[test]
    fn control_characters_are_escaped() {
        // Found by tests/hostile_input.rs: a field name `a\nb` in a JSON line was quoted
        // with a raw newline.
        assert_eq!(
            mask_digit_runs("field `a\nb`\t\u{7f}"),
            "field `a\\nb`\\t\\u{7f}"
        );
    }
}
