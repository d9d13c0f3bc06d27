//! Go's conversions of input text, as Vault applies them to query flags and fields.

/// Go's `strconv.ParseBool`, which Vault uses for query flags and boolean fields.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Whole seconds from a JSON number or a duration string (`300`, `"300"`, `"1h"`); the error
/// is Go's `time.ParseDuration` message where OpenBao passes that on.
pub fn parse_duration(value: &serde_json::Value) -> Result<u64, String> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a number of seconds")),
        serde_json::Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => s
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds")),
        serde_json::Value::String(s) => humantime::parse_duration(s)
            .map(|d| d.as_secs())
            .map_err(|_| format!("time: invalid duration {s:?}")),
        other => Err(format!("{other} is not a duration")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_as_the_cli_sends_them() {
        assert_eq!(parse_duration(&json!(300)), Ok(300));
        assert_eq!(parse_duration(&json!("300")), Ok(300));
        assert_eq!(parse_duration(&json!("1h")), Ok(3600));
        assert_eq!(parse_duration(&json!("1h30m")), Ok(5400));
        assert!(parse_duration(&json!("soon")).is_err());
        assert!(parse_duration(&json!(-1)).is_err());
        assert!(parse_duration(&json!(true)).is_err());
    }
}
