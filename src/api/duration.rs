//! Kubernetes-style duration strings ("10m", "1h30m", "90s", "1.5h") as the spec carries them.
//!
//! The schema accepts exactly what [`PATTERN`] matches, and CEL rules compare durations with
//! `duration(...)` (Go's `time.ParseDuration`). [`parse`] accepts the same language, so every
//! value the API server admitted parses here.

use std::time::Duration;

/// The regular expression the schema applies to duration fields: one to four `<number><unit>`
/// parts, each number at most five digits with an optional fraction, units `h`, `m`, `s`, `ms`.
/// The digit limits keep every admitted value far below Go's 290-year maximum, so CEL's
/// `duration()` never overflows on a value the pattern accepted.
pub const PATTERN: &str = r"^([0-9]{1,5}([.][0-9]{1,9})?(ms|h|m|s)){1,4}$";

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration: expected a number and a unit, such as 10m or 1h30m")]
    Empty,
    /// A part has no number before its unit.
    #[error("duration {0:?}: expected a number before each unit (units: h, m, s, ms)")]
    MissingNumber(String),
    /// A number is not followed by a unit.
    #[error("duration {0:?}: missing unit after a number (units: h, m, s, ms)")]
    MissingUnit(String),
    /// A unit other than `h`, `m`, `s` or `ms`.
    #[error("duration {value:?}: unknown unit {unit:?} (units: h, m, s, ms)")]
    UnknownUnit {
        /// The whole input.
        value: String,
        /// The unit found.
        unit: String,
    },
    /// More digits than the schema allows, or a total too large to represent.
    #[error("duration {0:?} is too long")]
    TooLong(String),
}

/// Parses a duration string such as `10m`, `1h30m`, `90s`, `1.5h` or `250ms`.
///
/// Accepts what [`PATTERN`] accepts: unsigned, every number followed by one of the units `h`,
/// `m`, `s`, `ms`, at most four parts. Fractions are exact to the nanosecond.
pub fn parse(value: &str) -> Result<Duration, DurationError> {
    if value.is_empty() {
        return Err(DurationError::Empty);
    }
    let too_long = || DurationError::TooLong(value.to_owned());
    let mut rest = value;
    let mut total_nanos: u128 = 0;
    let mut parts = 0;
    while !rest.is_empty() {
        parts += 1;
        if parts > 4 {
            return Err(too_long());
        }
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_digits, after_int) = rest.split_at(int_len);
        if int_digits.is_empty() {
            return Err(DurationError::MissingNumber(value.to_owned()));
        }
        if int_digits.len() > 5 {
            return Err(too_long());
        }
        let (frac_digits, after_number) = match after_int.strip_prefix('.') {
            Some(frac) => {
                let frac_len = frac
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(frac.len());
                if frac_len == 0 {
                    return Err(DurationError::MissingUnit(value.to_owned()));
                }
                if frac_len > 9 {
                    return Err(too_long());
                }
                frac.split_at(frac_len)
            }
            None => ("", after_int),
        };
        let unit_len = after_number
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "" => return Err(DurationError::MissingUnit(value.to_owned())),
            other => {
                return Err(DurationError::UnknownUnit {
                    value: value.to_owned(),
                    unit: other.to_owned(),
                });
            }
        };
        // At most five integer and nine fraction digits: both fit u128 with room to spare.
        let whole: u128 = int_digits.parse().map_err(|_| too_long())?;
        let mut nanos = whole * unit_nanos;
        if !frac_digits.is_empty() {
            let scale = 10u128.pow(u32::try_from(frac_digits.len()).map_err(|_| too_long())?);
            let fraction: u128 = frac_digits.parse().map_err(|_| too_long())?;
            nanos += fraction * unit_nanos / scale;
        }
        total_nanos += nanos;
        rest = after_unit;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| too_long())?;
    let subsec = u32::try_from(total_nanos % 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn parses_the_forms_users_write() {
        let cases = [
            ("10m", secs(600)),
            ("1h30m", secs(5400)),
            ("90s", secs(90)),
            ("2h", secs(7200)),
            ("0s", secs(0)),
            ("1.5h", secs(5400)),
            ("250ms", Duration::from_millis(250)),
            ("1h0m0s", secs(3600)),
            ("0.5s", Duration::from_millis(500)),
            ("1m30s500ms", Duration::from_millis(90_500)),
            ("99999h", secs(99_999 * 3600)),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn refuses_what_the_schema_refuses() {
        let cases = [
            ("", DurationError::Empty),
            ("10", DurationError::MissingUnit("10".into())),
            ("m", DurationError::MissingNumber("m".into())),
            ("-5m", DurationError::MissingNumber("-5m".into())),
            ("1.m", DurationError::MissingUnit("1.m".into())),
            ("10 m", DurationError::MissingUnit("10 m".into())),
            (
                "5d",
                DurationError::UnknownUnit {
                    value: "5d".into(),
                    unit: "d".into(),
                },
            ),
            (
                "10min",
                DurationError::UnknownUnit {
                    value: "10min".into(),
                    unit: "min".into(),
                },
            ),
            ("123456h", DurationError::TooLong("123456h".into())),
            ("1h1m1s1ms1h", DurationError::TooLong("1h1m1s1ms1h".into())),
            (
                "1.1234567891s",
                DurationError::TooLong("1.1234567891s".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Err(want), "{input:?}");
        }
    }
}
