//! `path-help` in the plugin protocol: the engine's help text (see [`crate::engine::help`])
//! as a `help` operation's response.

use super::proto::pb;
use crate::engine::BackendHelp;
use crate::engine::help::text;

/// A `help` operation's response: `{"help": text}`, which `vault path-help` prints.
pub fn response(help: &BackendHelp, request_path: &str) -> pb::Response {
    pb::Response {
        data: serde_json::json!({ "help": text(help, request_path) }).to_string(),
        ..Default::default()
    }
}
