//! Log output. As an OpenBao/Vault plugin the process logs hclog JSON lines on stderr
//! (`@level`, `@message`, `@timestamp`, `@module`), which the server re-logs at their level;
//! as a command it logs plain text. `DOCKERHUB_SECRETS_LOG` filters (default `info`).
//!
//! Nothing secret is ever logged: the engine keeps passwords and tokens out of its records,
//! and the host logs only paths, operations, statuses and errors.

use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

const FILTER_VARIABLE: &str = "DOCKERHUB_SECRETS_LOG";

fn filter() -> EnvFilter {
    EnvFilter::try_from_env(FILTER_VARIABLE).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// hclog JSON lines on stderr, for plugin mode.
pub fn init_hclog() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        // A failed write would be reported with `eprintln!`, which panics on a closed stderr.
        .log_internal_errors(false)
        .event_format(Hclog)
        .try_init();
}

/// Human-readable lines on stderr, for commands and the standalone server; colours only
/// on a terminal.
pub fn init_text() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A failed write would be reported with `eprintln!`, which panics on a closed stderr.
        .log_internal_errors(false)
        .try_init();
}

/// Formats one event as an hclog JSON line.
struct Hclog;

impl<S, N> FormatEvent<S, N> for Hclog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert("@level".into(), Value::from(hclog_level(*meta.level())));
        line.insert(
            "@message".into(),
            Value::from(fields.message.unwrap_or_default()),
        );
        line.insert(
            "@timestamp".into(),
            Value::from(humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()),
        );
        line.insert("@module".into(), Value::from(module(meta.target())));
        line.extend(fields.fields);
        writeln!(writer, "{}", Value::Object(line))
    }
}

fn hclog_level(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// `engine` for the component's own records, `dockerhub-secrets` for the host's.
fn module(target: &str) -> &'static str {
    if target == "engine" {
        "dockerhub-secrets.engine"
    } else {
        "dockerhub-secrets"
    }
}

#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.fields.insert(field.name().into(), Value::from(value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().into(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().into(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.fields.insert(field.name().into(), Value::from(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn events_become_hclog_json_lines() {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_writer(move || SharedWriter(sink.clone()))
            .event_format(Hclog)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "engine", context = "hub", "rate limited: waiting 2s");
            tracing::info!(path = "config/hoeg", status = 200u64, "handled");
        });
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["@level"], "warn");
        assert_eq!(lines[0]["@message"], "rate limited: waiting 2s");
        assert_eq!(lines[0]["@module"], "dockerhub-secrets.engine");
        assert_eq!(lines[0]["context"], "hub");
        assert_eq!(lines[1]["@level"], "info");
        assert_eq!(lines[1]["path"], "config/hoeg");
        assert_eq!(lines[1]["status"], 200);
        let timestamp = lines[1]["@timestamp"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(timestamp).is_ok(), "{timestamp}");
    }

    struct SharedWriter(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for SharedWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
