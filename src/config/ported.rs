//! The ported-numbers file (`numbering.ported_numbers_file`): numbers that moved here from
//! another operator, or away, as `number,operator` lines. Read once at start by every
//! command that builds an engine (`run`, `replay`, `check-config`), so a bad file fails them
//! the same way, naming its line.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::Config;
use crate::detect::engine::PortedNumber;

/// Why the ported-numbers file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PortedError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("ported numbers file {path}:{line}: {reason}")]
    Line {
        path: String,
        line: u64,
        reason: String,
    },
}

/// The ported numbers `cfg` names; none when it names no file.
pub fn configured(cfg: &Config) -> Result<Vec<PortedNumber>, PortedError> {
    match &cfg.detect.numbering.ported_numbers_file {
        Some(p) => load(Path::new(p)),
        None => Ok(Vec::new()),
    }
}

/// Reads a ported-numbers CSV (`number,operator` per line; a header line, blank lines and
/// `#` comments are skipped).
pub fn load(path: &Path) -> Result<Vec<PortedNumber>, PortedError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| PortedError::Open {
        path: name.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| PortedError::Read {
            path: name.clone(),
            source,
        })?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.starts_with("number")) {
            continue;
        }
        let bad = |reason: &str| PortedError::Line {
            path: name.clone(),
            line: i as u64 + 1,
            reason: reason.into(),
        };
        let (number, operator) = line
            .split_once(',')
            .ok_or_else(|| bad("expected `number,operator`"))?;
        let (number, operator) = (number.trim(), operator.trim());
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("number must be digits"));
        }
        if operator.is_empty() {
            return Err(bad("operator is empty"));
        }
        out.push(PortedNumber {
            number: number.to_string(),
            operator: operator.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ported_numbers_csv_is_read_and_bad_lines_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ported.csv");
        std::fs::write(&p, "number,operator\n# moved\n13800138000,china_unicom\n\n").unwrap();
        let list = load(&p).unwrap();
        assert_eq!(
            list,
            vec![PortedNumber {
                number: "13800138000".into(),
                operator: "china_unicom".into()
            }]
        );
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, "13800138000,china_unicom\n138x,china_mobile\n").unwrap();
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("bad.csv:2"), "{err}");
    }
}
