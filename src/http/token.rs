//! The bearer token that guards `/subscribers/{msisdn}`. A look-up returns a full number,
//! its do-not-disturb flag and its spend, so the lookup listener serves nobody without
//! it. The token comes from a file (`http.lookup_token_file`, for mounted secrets) or,
//! when no file is named, from `CHURNWATCH_LOOKUP_TOKEN`; a missing or short token stops
//! start-up. The token is compared in constant time and never printed: its `Debug` is
//! redacted and no error quotes it.

use axum::http::HeaderValue;
use subtle::ConstantTimeEq;

use crate::config::HttpConfig;

/// The environment variable read when `http.lookup_token_file` is empty.
pub const TOKEN_ENV: &str = "CHURNWATCH_LOOKUP_TOKEN";

/// Shortest token accepted, in bytes: a shorter one is guessable.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Why no usable token could be read. Each message names the key or variable to fix and
/// never holds the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("http.lookup_token_file: http.lookup_listen is set but no token is configured (name a file here or set {TOKEN_ENV})")]
    Missing,
    #[error("http.lookup_token_file: cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{source_key}: the token is shorter than {MIN_TOKEN_BYTES} bytes")]
    TooShort { source_key: &'static str },
}

/// A token the lookup listener accepts.
#[derive(Clone)]
pub struct LookupToken(Vec<u8>);

impl std::fmt::Debug for LookupToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookupToken(<redacted>)")
    }
}

impl LookupToken {
    /// Reads the token named by `http` (the file) or else `env` (the value of
    /// [`TOKEN_ENV`]). Surrounding whitespace is dropped, so a file may end in a newline.
    pub fn load(http: &HttpConfig, env: Option<String>) -> Result<LookupToken, TokenError> {
        let (text, source_key) = if !http.lookup_token_file.is_empty() {
            let path = &http.lookup_token_file;
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.clone(),
                source,
            })?;
            (text, "http.lookup_token_file")
        } else {
            (env.ok_or(TokenError::Missing)?, TOKEN_ENV)
        };
        LookupToken::new(text.trim(), source_key)
    }

    fn new(token: &str, source_key: &'static str) -> Result<LookupToken, TokenError> {
        if token.is_empty() && source_key == TOKEN_ENV {
            return Err(TokenError::Missing);
        }
        if token.len() < MIN_TOKEN_BYTES {
            return Err(TokenError::TooShort { source_key });
        }
        Ok(LookupToken(token.as_bytes().to_vec()))
    }

    /// Whether an `Authorization` header carries this token as `Bearer <token>`. The
    /// scheme is case-insensitive (RFC 6750); the token is compared in constant time
    /// (only its length can leak).
    pub fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.map(HeaderValue::as_bytes) else {
            return false;
        };
        let Some((scheme, token)) = value.split_at_checked(7) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer ") && bool::from(token.ct_eq(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "0123456789abcdef-secret";

    fn token() -> LookupToken {
        LookupToken::new(GOOD, TOKEN_ENV).unwrap()
    }

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn the_right_bearer_token_is_accepted_with_any_case_of_scheme() {
        let t = token();
        assert!(t.accepts(Some(&header(&format!("Bearer {GOOD}")))));
        assert!(t.accepts(Some(&header(&format!("bearer {GOOD}")))));
    }

    #[test]
    fn a_missing_wrong_or_malformed_header_is_refused() {
        let t = token();
        for bad in [
            String::new(),
            "Bearer".to_string(),
            "Bearer ".to_string(),
            format!("Basic {GOOD}"),
            format!("Bearer {GOOD}x"),
            format!("Bearer {}", &GOOD[..GOOD.len() - 1]),
            format!("Bearer  {GOOD}"),
            "Bearer 0123456789abcdef-secreT".to_string(),
            GOOD.to_string(),
        ] {
            assert!(!t.accepts(Some(&header(&bad))), "accepted `{bad}`");
        }
        assert!(!t.accepts(None));
    }

    #[test]
    fn the_file_wins_over_the_environment_and_its_newline_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{GOOD}\n")).unwrap();
        let http = HttpConfig {
            lookup_token_file: path.display().to_string(),
            ..HttpConfig::default()
        };
        let t = LookupToken::load(&http, Some("another-token-of-enough-length".into())).unwrap();
        assert!(t.accepts(Some(&header(&format!("Bearer {GOOD}")))));
        let from_env = LookupToken::load(&HttpConfig::default(), Some(GOOD.into())).unwrap();
        assert!(from_env.accepts(Some(&header(&format!("Bearer {GOOD}")))));
    }

    #[test]
    fn no_empty_short_or_unreadable_token_is_accepted_and_errors_name_the_key() {
        let none = HttpConfig::default();
        for (env, key) in [
            (None, "http.lookup_token_file"),
            (Some(String::new()), "http.lookup_token_file"),
            (Some("  \n".to_string()), "http.lookup_token_file"),
            (Some("fifteen-bytes!!".to_string()), TOKEN_ENV),
        ] {
            let err = LookupToken::load(&none, env.clone())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(key), "{env:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "short-secret\n").unwrap();
        for path in [short, dir.path().join("absent")] {
            let http = HttpConfig {
                lookup_token_file: path.display().to_string(),
                ..HttpConfig::default()
            };
            let err = LookupToken::load(&http, Some(GOOD.into())).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("http.lookup_token_file"), "{text}");
            assert!(!text.contains("short-secret"), "{text}");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        assert!(!format!("{:?}", token()).contains("secret"));
    }
}
