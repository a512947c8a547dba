//! The frame log of a case: every frame in both directions, decoded, with
//! the connection it travelled on and when. It is the evidence a report
//! links to, written so a person can read it.

use std::{
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::Instant,
};

use serde::Serialize;

/// Which way a frame went, seen from the implementation under test's peer
/// (the suite).
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    /// From the suite to the implementation.
    Sent,
    /// From the implementation to the suite.
    Received,
}

impl Direction {
    fn arrow(self) -> &'static str {
        match self {
            Direction::Sent => "->",
            Direction::Received => "<-",
        }
    }
}

/// A shared, append-only frame log. Cloning shares it.
#[derive(Clone)]
pub struct FrameLog {
    start: Instant,
    lines: Arc<Mutex<String>>,
}

impl Default for FrameLog {
    fn default() -> Self {
        FrameLog { start: Instant::now(), lines: Arc::default() }
    }
}

/// Longest payload shown byte for byte; longer ones are shortened.
const SHOWN_BYTES: usize = 96;

impl FrameLog {
    fn line(&self, connection: &str, marker: &str, text: &str) {
        let elapsed = self.start.elapsed().as_secs_f64() * 1000.0;
        let mut lines = self.lines.lock().expect("frame log poisoned");
        let _ = writeln!(lines, "{elapsed:9.1}ms {connection:<12} {marker} {text}");
    }

    /// A decoded frame: its canonical JSON, with long strings shortened
    /// (a flood of 16 KiB messages must not make a 40 MB report).
    pub fn frame(&self, connection: &str, direction: Direction, frame: &impl Serialize) {
        let json = match serde_json::to_value(frame) {
            Ok(mut value) => {
                shorten_strings(&mut value);
                value.to_string()
            }
            Err(error) => format!("<unprintable: {error}>"),
        };
        self.line(connection, direction.arrow(), &json);
    }

    /// Bytes that are not (or not meant to be) a frame.
    pub fn bytes(&self, connection: &str, direction: Direction, what: &str, bytes: &[u8]) {
        self.line(connection, direction.arrow(), &format!("{what} ({} bytes) {}", bytes.len(), show(bytes)));
    }

    /// Something that happened to a connection (opened, closed, timed out).
    pub fn event(&self, connection: &str, text: &str) {
        self.line(connection, "**", text);
    }

    /// A remark of the case itself (what it is about to check).
    pub fn note(&self, text: &str) {
        self.line("", "#", text);
    }

    /// The whole log so far.
    pub fn text(&self) -> String {
        self.lines.lock().expect("frame log poisoned").clone()
    }
}

/// Strings longer than this are shortened in frame logs.
const SHOWN_CHARS: usize = 160;

/// Cuts every string in `value` longer than [`SHOWN_CHARS`] to its start,
/// followed by how much was left out.
fn shorten_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if text.chars().count() > SHOWN_CHARS => {
            let kept: String = text.chars().take(SHOWN_CHARS).collect();
            let left_out = text.len() - kept.len();
            *text = format!("{kept}...(+{left_out} bytes)");
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(shorten_strings),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(shorten_strings),
        _ => {}
    }
}

/// Shows bytes as text when they are printable UTF-8, otherwise as hex;
/// either way shortened to [`SHOWN_BYTES`].
pub fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES)];
    let more = if bytes.len() > SHOWN_BYTES { "..." } else { "" };
    match std::str::from_utf8(shown) {
        Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}{more}"),
        _ => format!("hex {}{more}", hex::encode(shown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_text_or_hex_and_shortens() {
        assert_eq!(show(b"{\"a\":1}"), "\"{\\\"a\\\":1}\"");
        assert_eq!(show(&[0xff, 0x00]), "hex ff00");
        assert!(show(&[b'x'; 200]).ends_with("..."));
    }

    #[test]
    fn long_strings_are_shortened() {
        let log = FrameLog::default();
        log.frame("a/1", Direction::Received, &serde_json::json!({"event": {"message": {"text": "x".repeat(5000)}}}));
        let text = log.text();
        assert!(text.contains(&format!("{}...(+4840 bytes)", "x".repeat(160))), "{text}");
        assert!(text.len() < 400, "{text}");
    }

    #[test]
    fn lines_name_the_connection_and_direction() {
        let log = FrameLog::default();
        log.frame("alice/1", Direction::Sent, &serde_json::json!({"requestId": "1"}));
        log.event("alice/1", "closed 4502");
        let text = log.text();
        assert!(text.contains("alice/1      -> {\"requestId\":\"1\"}"), "{text}");
        assert!(text.contains("** closed 4502"), "{text}");
    }
}
