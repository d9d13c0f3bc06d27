//! Durations the way Vault users write and read them.
//!
//! Input is whole seconds (`300`, as a number or a string) or a Go duration string
//! (`90s`, `5m`, `1h30m`, also `d` for days as Vault's `parseutil` accepts); output is
//! Go's `time.Duration.String()` (`5m0s`, `1h0m0s`), which is what `vault read` shows for
//! the builtin engines.

use serde_json::Value;

/// Parse a duration field into whole seconds (fractions of a second are dropped).
pub fn parse(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a whole, non-negative number of seconds")),
        Value::String(s) => parse_str(s),
        other => Err(format!(
            "expected seconds or a duration such as \"5m\", got {}",
            kind(other)
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Nanoseconds per unit, longest suffix first so that `ms` is not read as `m`.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

fn parse_str(text: &str) -> Result<u64, String> {
    let input = text.trim();
    let invalid = || {
        format!(
            "invalid duration {}: use seconds or a duration such as \"90s\", \"5m\" or \"1h30m\"",
            crate::names::quoted(text)
        )
    };
    if input.is_empty() {
        return Err(invalid());
    }
    if input.bytes().all(|b| b.is_ascii_digit()) {
        return input.parse().map_err(|_| invalid());
    }
    let mut rest = input;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if number_len == 0 {
            return Err(invalid());
        }
        let (number, after) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(invalid());
        }
        let (unit, nanos_per_unit) = UNITS
            .iter()
            .filter(|(unit, _)| after.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())
            .ok_or_else(invalid)?;
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole.checked_mul(*nanos_per_unit).ok_or_else(invalid)?;
        let mut scale = *nanos_per_unit;
        for digit in fraction.bytes().take(18) {
            scale /= 10;
            nanos += u128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(invalid)?;
        rest = &after[unit.len()..];
    }
    u64::try_from(total_nanos / 1_000_000_000).map_err(|_| invalid())
}

/// Format seconds as Go's `time.Duration.String()` does: `0s`, `45s`, `5m0s`, `1h30m0s`.
pub fn format(seconds: u64) -> String {
    let (hours, minutes, secs) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_seconds_and_go_durations() {
        for (input, seconds) in [
            (json!(300), 300),
            (json!("300"), 300),
            (json!("90s"), 90),
            (json!("5m"), 300),
            (json!("1h30m"), 5400),
            (json!("1h0m0s"), 3600),
            (json!("1.5h"), 5400),
            (json!("2d"), 172_800),
            (json!("1500ms"), 1),
            (json!(" 10m "), 600),
        ] {
            assert_eq!(parse(&input), Ok(seconds), "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for input in [
            json!("five minutes"),
            json!("5x"),
            json!("m"),
            json!(""),
            json!("-5m"),
            json!("1.2.3s"),
            json!(-5),
            json!(1.5),
            json!(true),
            json!(["5m"]),
            json!("99999999999999999999h"),
        ] {
            let err = parse(&input).expect_err(&input.to_string());
            assert!(!err.is_empty());
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(0), "0s");
        assert_eq!(format(45), "45s");
        assert_eq!(format(300), "5m0s");
        assert_eq!(format(90), "1m30s");
        assert_eq!(format(3600), "1h0m0s");
        assert_eq!(format(5400), "1h30m0s");
        assert_eq!(format(86_400), "24h0m0s");
    }
}
