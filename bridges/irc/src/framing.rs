//! Lines cut out of a byte stream, sans IO: the driver pushes the bytes it
//! read and pulls complete lines, without their CRLF or bare LF.
//!
//! Bounded: an unfinished line is kept only up to the limit. A line over it is
//! reported once as [`LineTooLong`] and its bytes are dropped as they arrive,
//! up to its line ending; the next line is read as usual. Complete lines wait
//! in a queue until pulled, so a driver pulls every line after each push and
//! the queue never holds more than one read's worth.

use std::collections::VecDeque;

use thiserror::Error;

/// A line was longer than the reader's limit; it was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("line longer than {max} bytes")]
pub struct LineTooLong {
    pub max: usize,
}

/// Push bytes in, pull lines out.
#[derive(Debug)]
pub struct LineReader {
    max_line_bytes: usize,
    /// The unfinished line: at most the limit, plus a CR awaiting its LF.
    partial: Vec<u8>,
    /// Dropping the rest of a line already reported too long.
    discarding: bool,
    ready: VecDeque<Result<Vec<u8>, LineTooLong>>,
}

impl LineReader {
    /// A reader of lines up to `max_line_bytes`, line ending not counted
    /// (for clients: [`crate::message::MAX_CLIENT_LINE_BYTES`]).
    pub fn new(max_line_bytes: usize) -> LineReader {
        LineReader { max_line_bytes, partial: Vec::new(), discarding: false, ready: VecDeque::new() }
    }

    /// Takes bytes as read from the peer, in any chunks.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while let Some(lf) = bytes.iter().position(|&b| b == b'\n') {
            self.take(&bytes[..lf], true);
            bytes = &bytes[lf + 1..];
        }
        self.take(bytes, false);
    }

    /// The next complete line (without its line ending), or the report of one
    /// that was too long; `None` until more bytes are pushed.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, LineTooLong>> {
        self.ready.pop_front()
    }

    /// Bytes of an unfinished line held (never more than the limit plus one).
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    fn take(&mut self, chunk: &[u8], ends_line: bool) {
        if self.discarding {
            self.discarding = !ends_line;
            return;
        }
        let len = self.partial.len() + chunk.len();
        let ends_in_cr = chunk.last().or(self.partial.last()) == Some(&b'\r');
        let content = if ends_in_cr { len - 1 } else { len };
        if content > self.max_line_bytes {
            self.ready.push_back(Err(LineTooLong { max: self.max_line_bytes }));
            self.partial.clear();
            self.discarding = !ends_line;
            return;
        }
        self.partial.extend_from_slice(chunk);
        if ends_line {
            if ends_in_cr {
                self.partial.pop();
            }
            self.ready.push_back(Ok(std::mem::take(&mut self.partial)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes the chunks in order and shows every line pulled, `!` for a line
    /// too long.
    fn check(max: usize, chunks: &[&[u8]], expected: &[&str]) {
        let mut reader = LineReader::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            reader.push(chunk);
            assert!(reader.buffered() <= max + 1);
            while let Some(line) = reader.next_line() {
                lines.push(match line {
                    Ok(line) => String::from_utf8_lossy(&line).into_owned(),
                    Err(LineTooLong { max: m }) => {
                        assert_eq!(m, max);
                        "!".to_owned()
                    }
                });
            }
        }
        assert_eq!(lines, expected, "chunks {chunks:?}");
    }

    #[test]
    fn cuts_lines() {
        check(10, &[b"PING\r\nPONG\n"], &["PING", "PONG"]);
        check(10, &[b"PI", b"NG\r", b"\nPO", b"NG", b"\n"], &["PING", "PONG"]);
        check(10, &[b"PING"], &[]);
        check(10, &[b"\r\n\n"], &["", ""]);
        check(10, &[b"a\rb\n"], &["a\rb"]);
        check(10, &[b"a\r\r\n"], &["a\r"]);
        check(10, &[b"caf\xe9\n"], &["caf\u{fffd}"]);
    }

    #[test]
    fn skips_lines_too_long() {
        // The limit counts the line without its ending.
        check(4, &[b"1234\r\n12345\n"], &["1234", "!"]);
        check(4, &[b"1234\r", b"\n"], &["1234"]);
        check(4, &[b"12", b"34", b"\r", b"\n"], &["1234"]);
        check(4, &[b"12345"], &["!"]);
        // Reported once, however it arrives, and the next line is read.
        check(4, &[b"123456789", b"abcdef", b"gh\r\nPING\n"], &["!", "PING"]);
        check(4, &[b"12345", b"\n", b"ok\n"], &["!", "ok"]);
        check(4, &[b"1234\r", b"x\n", b"ok\n"], &["!", "ok"]);
        check(4, &[b"1234\rx", b"\n", b"ok\n"], &["!", "ok"]);
        check(4, &[b"12345\n123456\n1\n"], &["!", "!", "1"]);
    }

    #[test]
    fn holds_no_more_than_the_limit() {
        let mut reader = LineReader::new(100);
        for _ in 0..1000 {
            reader.push(&[b'x'; 1000]);
            assert!(reader.buffered() <= 101);
        }
        assert_eq!(reader.next_line(), Some(Err(LineTooLong { max: 100 })));
        assert_eq!(reader.next_line(), None);
        reader.push(b"end\nPING\n");
        assert_eq!(reader.next_line(), Some(Ok(b"PING".to_vec())));
    }

    mod properties {
        use proptest::collection::vec;
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn never_panics_and_stays_bounded(
                chunks in vec(vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r')], 0..64), 0..32),
                max in 0usize..40,
            ) {
                let mut reader = LineReader::new(max);
                for chunk in &chunks {
                    reader.push(chunk);
                    prop_assert!(reader.buffered() <= max + 1);
                    while let Some(line) = reader.next_line() {
                        if let Ok(line) = line {
                            prop_assert!(line.len() <= max);
                            prop_assert!(!line.contains(&b'\n'));
                        }
                    }
                }
            }

            #[test]
            fn chunking_does_not_matter(
                bytes in vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r')], 0..200),
                cut in vec(1usize..20, 1..20),
                max in 0usize..40,
            ) {
                let pull = |reader: &mut LineReader, out: &mut Vec<_>| {
                    while let Some(line) = reader.next_line() {
                        out.push(line);
                    }
                };
                let mut whole = LineReader::new(max);
                let mut expected = Vec::new();
                whole.push(&bytes);
                pull(&mut whole, &mut expected);

                let mut pieces = LineReader::new(max);
                let mut actual = Vec::new();
                let mut rest = &bytes[..];
                for size in cut.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (chunk, after) = rest.split_at((*size).min(rest.len()));
                    pieces.push(chunk);
                    pull(&mut pieces, &mut actual);
                    rest = after;
                }
                prop_assert_eq!(actual, expected);
            }
        }
    }
}
