//! Go's conversions of input text, as Vault applies them to query flags and fields, and
//! Vault's rules for a secrets mount's path, which every host's configuration follows.

/// Go's `strconv.ParseBool`, which Vault uses for query flags and boolean fields.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A host's duration setting (the gateway's `DOCKERHUB_SECRETS_MAX_LEASE_TTL` and
/// `DOCKERHUB_SECRETS_BODY_READ_TIMEOUT`): a duration such as `768h` or `90s`, of at least
/// one second, in whole seconds; the error says what is wrong with it.
pub fn duration_setting(text: &str) -> Result<u64, String> {
    let seconds = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 768h or 90s: {e}"))?
        .as_secs();
    match seconds {
        0 => Err(format!("{text:?} is less than a second")),
        seconds => Ok(seconds),
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

/// Seconds as OpenBao's TTL warnings write them: units that are zero left out (`1h`, `2m`,
/// `1h0m30s` is `1h30s`), `0s` for none.
pub fn format_duration(secs: u64) -> String {
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    for (value, unit) in [(hours, "h"), (minutes, "m"), (seconds, "s")] {
        if value > 0 {
            text.push_str(&format!("{value}{unit}"));
        }
    }
    if text.is_empty() { "0s".into() } else { text }
}

/// The first path segments Vault keeps for itself (OpenBao's `protectedMounts`,
/// vault/mount.go): it refuses to mount a secrets engine under them.
const RESERVED_MOUNTS: [&str; 5] = ["sys", "auth", "audit", "identity", "cubbyhole"];

/// A secrets mount's path as Vault takes it (`bao secrets enable -path=...`): leading `/`s
/// and one trailing `/` are dropped (`/dockerhub/` is `dockerhub`); no empty, `.` or `..`
/// segment, and not under Vault's own `sys/`, `auth/`, `audit/`, `identity/` or
/// `cubbyhole/`. The error says why, for the host to put after the setting's name.
pub fn mount_path(spelling: &str) -> Result<String, String> {
    // Vault's sanitizePath: leading slashes go, and the mount's trailing one is implied.
    let path = spelling.trim_start_matches('/');
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if let Some(segment) = path
        .split('/')
        .find(|segment| segment.is_empty() || *segment == "." || *segment == "..")
    {
        return Err(format!(
            "{segment:?} is not a path segment (no empty, '.' or '..' segments)"
        ));
    }
    let first = path.split('/').next().unwrap_or(path);
    if RESERVED_MOUNTS.contains(&first) {
        return Err(format!(
            "Vault keeps {first}/ for itself; choose another path"
        ));
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_max_lease_ttl_is_a_duration_of_a_second_or_more() {
        assert_eq!(duration_setting("768h"), Ok(768 * 3600));
        assert_eq!(duration_setting(" 90s "), Ok(90));
        for bad in ["banana", "0", "0s", "-5s", "", "500ms"] {
            assert!(duration_setting(bad).is_err(), "{bad}");
        }
    }

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

    #[test]
    fn durations_as_openbao_warnings_write_them() {
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(120), "2m");
        assert_eq!(format_duration(3630), "1h30s");
        assert_eq!(format_duration(0), "0s");
    }

    #[test]
    fn mount_paths_as_vault_takes_them() {
        assert_eq!(mount_path("/dockerhub/"), Ok("dockerhub".into()));
        assert_eq!(mount_path("team/hub"), Ok("team/hub".into()));
        assert_eq!(mount_path("/"), Err("the path is empty".into()));
        assert!(mount_path("a//b").unwrap_err().contains("\"\""));
        assert!(mount_path("a/../b").is_err());
        assert_eq!(
            mount_path("sys/hub"),
            Err("Vault keeps sys/ for itself; choose another path".into())
        );
    }
}
