//! Sinks for the ordered results: JSON Lines (a file or stdout).
//!
//! # The JSON Lines format
//! One line per frame, in frame order, skips included:
//!
//! ```text
//! {"seq":0,"epoch":1,"result":{"faces":[[412,80,96,96]]}}   the result is JSON: embedded as is
//! {"seq":1,"epoch":1,"text":"no faces"}                     UTF-8 but not JSON: a string
//! {"seq":2,"epoch":1,"base64":"AAECAw=="}                   anything else: base64
//! {"seq":3,"skipped":"worker-died"}                         no result, and why
//! ```
//!
//! `skipped` is one of the vocabulary's skip causes (`docs/LAYOUT.md` §6b): `dropped-oldest`,
//! `dropped-newest`, `worker-died`, `deadline`, `no-result`, `overflow`.

use std::io::Write;

use base64::Engine as _;
use framebus_platform::core::{SkipCause, Vocabulary};
use serde_json::{json, Value};

use super::reader::Sink;
use crate::Res;

/// How a result's bytes become the line's value: `{"result": …}` for JSON, else
/// `{"text": …}` or `{"base64": …}`.
pub fn result_value(bytes: &[u8]) -> (&'static str, Value) {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return ("result", v);
    }
    match std::str::from_utf8(bytes) {
        Ok(t) => ("text", Value::String(t.to_string())),
        Err(_) => ("base64", Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))),
    }
}

/// The line for a frame's result.
pub fn result_line(seq: u64, epoch: u64, bytes: &[u8]) -> Value {
    let (key, v) = result_value(bytes);
    let mut line = json!({ "seq": seq, "epoch": epoch });
    line[key] = v;
    line
}

/// The line for a skipped frame.
pub fn skipped_line(seq: u64, cause: SkipCause) -> Value {
    json!({ "seq": seq, "skipped": cause.name() })
}

/// Writes one JSON line per frame to `out` (flushed after every line: a reader of the file or
/// pipe sees each frame as soon as it is decided).
pub struct Jsonl<W: Write + Send> {
    out: W,
    what: String,
}

impl<W: Write + Send> Jsonl<W> {
    /// A sink writing to `out`, named `what` in errors (the file's path, or "stdout").
    pub fn new(out: W, what: &str) -> Self {
        Jsonl { out, what: what.to_string() }
    }

    fn line(&mut self, v: &Value) -> Res<()> {
        let mut s = v.to_string();
        s.push('\n');
        self.out
            .write_all(s.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| format!("cannot write the results to {}: {e}", self.what).into())
    }
}

impl<W: Write + Send> Sink for Jsonl<W> {
    fn result(&mut self, seq: u64, epoch: u64, bytes: &[u8], _now_ns: u64) -> Res<()> {
        self.line(&result_line(seq, epoch, bytes))
    }
    fn skipped(&mut self, seq: u64, cause: SkipCause, _now_ns: u64) -> Res<()> {
        self.line(&skipped_line(seq, cause))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_result_has_its_line() {
        assert_eq!(
            result_line(0, 1, br#"{"faces":[[1,2,3,4]]}"#).to_string(),
            r#"{"seq":0,"epoch":1,"result":{"faces":[[1,2,3,4]]}}"#
        );
        assert_eq!(result_line(1, 1, b"no faces").to_string(), r#"{"seq":1,"epoch":1,"text":"no faces"}"#);
        assert_eq!(result_line(2, 1, &[0, 1, 2, 3, 0xff]).to_string(), r#"{"seq":2,"epoch":1,"base64":"AAECA/8="}"#);
        assert_eq!(skipped_line(3, SkipCause::WorkerDied).to_string(), r#"{"seq":3,"skipped":"worker-died"}"#);
    }

    #[test]
    fn a_sink_writes_one_flushed_line_per_frame() {
        let mut out = Vec::new();
        {
            let mut j = Jsonl::new(&mut out, "memory");
            j.result(0, 1, b"[1]", 0).unwrap();
            j.skipped(1, SkipCause::Deadline, 0).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"seq\":0,\"epoch\":1,\"result\":[1]}\n{\"seq\":1,\"skipped\":\"deadline\"}\n"
        );
    }
}
