//! One IRC line: RFC 1459/2812 grammar with IRCv3 message tags, parsed from
//! the bytes a peer sent and serialized back.
//!
//! ```text
//! [ '@' tags SPACE ] [ ':' prefix SPACE ] command *( SPACE middle ) [ SPACE ':' trailing ]
//! ```
//!
//! Limits (IRCv3 message-tags, "Size limit"): the part after the tags is at
//! most 512 bytes with its CRLF; the tag section at most 8191 bytes with its
//! `@` and the space after it; a client sends at most 4094 bytes of tag data
//! (the bytes between `@` and that space), so a client's whole line is at
//! most 4608 bytes. Too much is refused, never truncated (the server answers
//! 417 ERR_INPUTTOOLONG).
//!
//! Lenient where real clients are: runs of spaces between parameters, a
//! trailing space, an unknown escape in a tag value (`\x` is `x`) and a lone
//! trailing backslash (dropped) are accepted. Tag keys are opaque: any
//! non-empty key is kept. A repeated tag key keeps its last value, and an
//! empty value (`a=`) is the same as none (`a`).

use std::fmt;

use thiserror::Error;

/// The non-tag part of a line at most, CRLF included.
pub const MAX_BODY_BYTES: usize = 512;
/// The tag section at most, its leading `@` and the space after it included.
pub const MAX_TAGS_BYTES: usize = 8191;
/// Tag data a client may send at most (between the `@` and the space).
pub const MAX_CLIENT_TAG_DATA_BYTES: usize = 4094;
/// Parameters a message carries at most (RFC 2812 2.3.1).
pub const MAX_PARAMS: usize = 15;
/// A client's line at most, without its line ending: `@`, the client's tag
/// data, a space, and a body without CRLF. What a gateway's line reader is
/// given as its limit.
pub const MAX_CLIENT_LINE_BYTES: usize = 1 + MAX_CLIENT_TAG_DATA_BYTES + 1 + MAX_BODY_BYTES - 2;

/// Who sent a line, which decides how much tag data it may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client: at most [`MAX_CLIENT_TAG_DATA_BYTES`] of tag data.
    Client,
    /// A server: the whole tag section, up to [`MAX_TAGS_BYTES`].
    Server,
}

impl Origin {
    fn max_tag_data(self) -> usize {
        match self {
            Origin::Client => MAX_CLIENT_TAG_DATA_BYTES,
            Origin::Server => MAX_TAGS_BYTES - 2,
        }
    }
}

/// One message tag, its value unescaped. An empty value means "no value".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// The source of a message: `nick!user@host`, `nick@host`, `nick`, or a
/// server name (which is then in `nick`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub nick: String,
    pub user: Option<String>,
    pub host: Option<String>,
}

impl Prefix {
    /// Splits a source: the nick ends at the first `!` or `@`, the user (after
    /// `!`) at the next `@`, and the host is the rest.
    pub fn parse(source: &str) -> Prefix {
        let nick_end = source.find(['!', '@']).unwrap_or(source.len());
        let (nick, rest) = source.split_at(nick_end);
        let (user, host) = match rest.strip_prefix('!') {
            Some(rest) => match rest.split_once('@') {
                Some((user, host)) => (Some(user), Some(host)),
                None => (Some(rest), None),
            },
            None => (None, rest.strip_prefix('@')),
        };
        Prefix { nick: nick.to_owned(), user: user.map(str::to_owned), host: host.map(str::to_owned) }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.nick)?;
        if let Some(user) = &self.user {
            write!(f, "!{user}")?;
        }
        if let Some(host) = &self.host {
            write!(f, "@{host}")?;
        }
        Ok(())
    }
}

/// One IRC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub tags: Vec<Tag>,
    pub prefix: Option<Prefix>,
    /// As sent: commands are case-insensitive, the caller compares them so.
    pub command: String,
    /// At most [`MAX_PARAMS`]; the trailing parameter is the last one.
    pub params: Vec<String>,
}

/// Why a line is not a message. Each maps to one answer: `TooLong` and
/// `TagsTooLong` to 417 ERR_INPUTTOOLONG, `NotUtf8` to a notice that the
/// server speaks UTF-8 only, `Empty` to silence.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty line")]
    Empty,
    #[error("no command")]
    NoCommand,
    #[error("empty prefix after ':'")]
    EmptyPrefix,
    #[error("bad tag {index}: {reason}")]
    BadTag { index: usize, reason: &'static str },
    #[error("more than {MAX_PARAMS} parameters")]
    TooManyParams,
    #[error("tag data of {len} bytes, at most {max}")]
    TagsTooLong { len: usize, max: usize },
    #[error("line of {len} bytes with CRLF (tags aside), at most {MAX_BODY_BYTES}")]
    TooLong { len: usize },
    #[error("byte {byte:#04x} (NUL, CR or LF) inside the line")]
    ForbiddenByte { byte: u8 },
    /// The line is not UTF-8: often a client sending Latin-1.
    #[error("not UTF-8 after byte {valid_up_to} (only UTF-8 is accepted)")]
    NotUtf8 { valid_up_to: usize },
}

/// Why a message cannot be written as a line.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SerializeError {
    #[error("command {0:?} is not letters and digits")]
    BadCommand(String),
    #[error("tag key {0:?} is empty or holds ';', '=', a space, NUL, CR or LF")]
    BadTagKey(String),
    #[error("the value of tag {0:?} holds NUL")]
    BadTagValue(String),
    #[error("prefix {0:?} cannot be written")]
    BadPrefix(String),
    #[error("parameter {index}: {reason}")]
    BadParam { index: usize, reason: &'static str },
    #[error("more than {MAX_PARAMS} parameters")]
    TooManyParams,
    #[error("tag section of {len} bytes, at most {MAX_TAGS_BYTES}")]
    TagsTooLong { len: usize },
    #[error("line of {len} bytes with CRLF (tags aside), at most {MAX_BODY_BYTES}")]
    TooLong { len: usize },
}

impl Message {
    /// A message without tags or prefix.
    pub fn new(command: &str, params: &[&str]) -> Message {
        Message {
            tags: Vec::new(),
            prefix: None,
            command: command.to_owned(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// The value of a tag, `""` for a tag without value, `None` if absent.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }

    /// Parses one line, with or without its line ending (`\r\n` or `\n`).
    pub fn parse(line: &[u8], origin: Origin) -> Result<Message, ParseError> {
        let line = line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(line);
        if line.iter().all(|&b| b == b' ') {
            return Err(ParseError::Empty);
        }
        let (tag_data, body) = match line.strip_prefix(b"@") {
            Some(rest) => match rest.iter().position(|&b| b == b' ') {
                Some(space) => (Some(&rest[..space]), &rest[space + 1..]),
                None => (Some(rest), &[][..]),
            },
            None => (None, line),
        };
        if let Some(data) = tag_data
            && data.len() > origin.max_tag_data()
        {
            return Err(ParseError::TagsTooLong { len: data.len(), max: origin.max_tag_data() });
        }
        if body.len() + 2 > MAX_BODY_BYTES {
            return Err(ParseError::TooLong { len: body.len() + 2 });
        }
        if let Some(&byte) = line.iter().find(|&&b| matches!(b, b'\0' | b'\r' | b'\n')) {
            return Err(ParseError::ForbiddenByte { byte });
        }
        std::str::from_utf8(line).map_err(|e| ParseError::NotUtf8 { valid_up_to: e.valid_up_to() })?;
        // Both halves are UTF-8: the line is, and they are split at ASCII bytes.
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

        let tags = match tag_data {
            Some(data) => parse_tags(&text(data))?,
            None => Vec::new(),
        };
        let body = text(body);
        let mut rest = body.trim_start_matches(' ');
        let prefix = match rest.strip_prefix(':') {
            Some(after) => {
                let (source, after) = after.split_once(' ').ok_or(ParseError::NoCommand)?;
                if source.is_empty() {
                    return Err(ParseError::EmptyPrefix);
                }
                rest = after.trim_start_matches(' ');
                Some(Prefix::parse(source))
            }
            None => None,
        };
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return Err(ParseError::NoCommand);
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if params.len() == MAX_PARAMS {
                return Err(ParseError::TooManyParams);
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing.to_owned());
                break;
            }
            let (param, after) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(param.to_owned());
            rest = after;
        }
        Ok(Message { tags, prefix, command: command.to_owned(), params })
    }

    /// The line for this message, CRLF included. The last parameter gets a
    /// `:` only when it needs one: empty, starting with `:`, or with a space.
    pub fn serialize(&self) -> Result<String, SerializeError> {
        let mut line = String::new();
        if !self.tags.is_empty() {
            line.push('@');
            for (i, tag) in self.tags.iter().enumerate() {
                if tag.key.is_empty() || tag.key.contains([';', '=', ' ', '\0', '\r', '\n']) {
                    return Err(SerializeError::BadTagKey(tag.key.clone()));
                }
                if tag.value.contains('\0') {
                    return Err(SerializeError::BadTagValue(tag.key.clone()));
                }
                if i > 0 {
                    line.push(';');
                }
                line.push_str(&tag.key);
                if !tag.value.is_empty() {
                    line.push('=');
                    escape_tag_value(&tag.value, &mut line);
                }
            }
            line.push(' ');
            if line.len() > MAX_TAGS_BYTES {
                return Err(SerializeError::TagsTooLong { len: line.len() });
            }
        }
        let body_start = line.len();
        if let Some(prefix) = &self.prefix {
            let bad_part = |part: &Option<String>, forbidden: &[char]| {
                part.as_ref().is_some_and(|p| p.contains(forbidden) || p.contains([' ', '\0', '\r', '\n']))
            };
            if prefix.nick.is_empty()
                || prefix.nick.contains(['!', '@', ' ', '\0', '\r', '\n'])
                || bad_part(&prefix.user, &['@'])
                || bad_part(&prefix.host, &[])
            {
                return Err(SerializeError::BadPrefix(prefix.to_string()));
            }
            line.push(':');
            line.push_str(&prefix.to_string());
            line.push(' ');
        }
        if self.command.is_empty() || !self.command.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SerializeError::BadCommand(self.command.clone()));
        }
        line.push_str(&self.command);
        if self.params.len() > MAX_PARAMS {
            return Err(SerializeError::TooManyParams);
        }
        for (index, param) in self.params.iter().enumerate() {
            if param.contains(['\0', '\r', '\n']) {
                return Err(SerializeError::BadParam { index, reason: "holds NUL, CR or LF" });
            }
            let needs_colon = param.is_empty() || param.starts_with(':') || param.contains(' ');
            line.push(' ');
            if needs_colon {
                if index + 1 < self.params.len() {
                    let reason = "only the last parameter may be empty, start with ':' or hold a space";
                    return Err(SerializeError::BadParam { index, reason });
                }
                line.push(':');
            }
            line.push_str(param);
        }
        line.push_str("\r\n");
        let len = line.len() - body_start;
        if len > MAX_BODY_BYTES {
            return Err(SerializeError::TooLong { len });
        }
        Ok(line)
    }
}

fn parse_tags(data: &str) -> Result<Vec<Tag>, ParseError> {
    let mut tags: Vec<Tag> = Vec::new();
    for (index, item) in data.split(';').enumerate() {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        if key.is_empty() {
            return Err(ParseError::BadTag { index, reason: "empty key" });
        }
        let value = unescape_tag_value(value);
        match tags.iter_mut().find(|t| t.key == key) {
            Some(earlier) => earlier.value = value,
            None => tags.push(Tag { key: key.to_owned(), value }),
        }
    }
    Ok(tags)
}

/// A tag value as sent (`\:` `\s` `\\` `\r` `\n`) to its text. An unknown
/// escape stands for the character itself; a lone trailing `\` is dropped.
pub fn unescape_tag_value(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Appends a tag value escaped for the wire.
pub fn escape_tag_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message or error as one line of text, so tables read as input →
    /// expected.
    fn show(result: Result<Message, ParseError>) -> String {
        let message = match result {
            Ok(message) => message,
            Err(err) => return format!("error {err:?}"),
        };
        let mut out = String::new();
        for tag in &message.tags {
            out.push_str(&format!("@{}={:?} ", tag.key, tag.value));
        }
        if let Some(p) = &message.prefix {
            out.push_str(&format!("nick={:?} ", p.nick));
            if let Some(user) = &p.user {
                out.push_str(&format!("user={user:?} "));
            }
            if let Some(host) = &p.host {
                out.push_str(&format!("host={host:?} "));
            }
        }
        out.push_str(&format!("{} {:?}", message.command, message.params));
        out
    }

    fn check(cases: &[(&str, &str)], origin: Origin) {
        for (input, expected) in cases {
            let actual = show(Message::parse(input.as_bytes(), origin));
            assert_eq!(&actual, expected, "parsing {input:?}");
        }
    }

    #[test]
    fn parses_lines() {
        check(
            &[
                ("PING", r##"PING []"##),
                ("PING\r\n", r##"PING []"##),
                ("PING\n", r##"PING []"##),
                ("privmsg #a :hi there", r##"privmsg ["#a", "hi there"]"##),
                ("PRIVMSG #a hi", r##"PRIVMSG ["#a", "hi"]"##),
                ("PRIVMSG #a :", r##"PRIVMSG ["#a", ""]"##),
                ("PRIVMSG #a ::)", r##"PRIVMSG ["#a", ":)"]"##),
                ("PRIVMSG #a :a  b ", r##"PRIVMSG ["#a", "a  b "]"##),
                ("JOIN :", r##"JOIN [""]"##),
                ("JOIN #a ", r##"JOIN ["#a"]"##),
                ("USER u 0  *   :Real Name", r##"USER ["u", "0", "*", "Real Name"]"##),
                ("  NICK alice", r##"NICK ["alice"]"##),
                (":irc.example.net 001 alice :Welcome", r##"nick="irc.example.net" 001 ["alice", "Welcome"]"##),
                (":n!u@h PRIVMSG #a :x", r##"nick="n" user="u" host="h" PRIVMSG ["#a", "x"]"##),
                (":n@h QUIT", r##"nick="n" host="h" QUIT []"##),
                (":n!u QUIT", r##"nick="n" user="u" QUIT []"##),
                (":n!~u@a@b QUIT", r##"nick="n" user="~u" host="a@b" QUIT []"##),
                (":n!@ QUIT", r##"nick="n" user="" host="" QUIT []"##),
                (":nick   PING", r##"nick="nick" PING []"##),
                (
                    "CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 :15 and more",
                    r##"CMD ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15 and more"]"##,
                ),
                (
                    "CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
                    r##"CMD ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"]"##,
                ),
                ("PRIVMSG #é :ünïcödé ✓", r##"PRIVMSG ["#é", "ünïcödé ✓"]"##),
            ],
            Origin::Client,
        );
    }

    #[test]
    fn parses_tags() {
        check(
            &[
                ("@a=b PING", r##"@a="b" PING []"##),
                ("@a=b;c;d= PING", r##"@a="b" @c="" @d="" PING []"##),
                (r"@k=\:\s\\\r\n PING", r##"@k="; \\\r\n" PING []"##),
                (r"@k=a\b\ PING", r##"@k="ab" PING []"##),
                (r"@k=\ PING", r##"@k="" PING []"##),
                (
                    "@+draft/reply=abc;example.com/x=1 TAGMSG #a",
                    r##"@+draft/reply="abc" @example.com/x="1" TAGMSG ["#a"]"##,
                ),
                ("@a=1;b=2;a=3 PING", r##"@a="3" @b="2" PING []"##),
                ("@k=a=b PING", r##"@k="a=b" PING []"##),
                (
                    "@time=2026-01-01T00:00:00.000Z :n!u@h PRIVMSG #a :x",
                    r##"@time="2026-01-01T00:00:00.000Z" nick="n" user="u" host="h" PRIVMSG ["#a", "x"]"##,
                ),
                ("@a=b   PING", r##"@a="b" PING []"##),
                ("@k=é PING", r##"@k="é" PING []"##),
            ],
            Origin::Client,
        );
    }

    #[test]
    fn refuses_bad_lines() {
        let not_latin1: &[u8] = b"PRIVMSG #a :caf\xe9";
        assert_eq!(Message::parse(not_latin1, Origin::Client), Err(ParseError::NotUtf8 { valid_up_to: 15 }));
        check(
            &[
                ("", "error Empty"),
                ("\r\n", "error Empty"),
                ("   ", "error Empty"),
                ("@a=b", "error NoCommand"),
                ("@a=b ", "error NoCommand"),
                (":nick", "error NoCommand"),
                (":nick ", "error NoCommand"),
                (": PING", "error EmptyPrefix"),
                ("@ PING", r##"error BadTag { index: 0, reason: "empty key" }"##),
                ("@a;;b PING", r##"error BadTag { index: 1, reason: "empty key" }"##),
                ("@a; PING", r##"error BadTag { index: 1, reason: "empty key" }"##),
                ("@=v PING", r##"error BadTag { index: 0, reason: "empty key" }"##),
                ("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", "error TooManyParams"),
                ("CMD 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 :16", "error TooManyParams"),
                ("PRIVMSG #a :a\rb", "error ForbiddenByte { byte: 13 }"),
                ("PRIVMSG #a :a\nb", "error ForbiddenByte { byte: 10 }"),
                ("PRIVMSG #a :a\0b", "error ForbiddenByte { byte: 0 }"),
            ],
            Origin::Client,
        );
    }

    #[test]
    fn enforces_the_size_limits() {
        let body = |len: usize| format!("PRIVMSG #a :{}", "x".repeat(len - "PRIVMSG #a :".len()));
        let tags = |len: usize| format!("@k={}", "v".repeat(len - 2));
        let ok = |line: String, origin| Message::parse(line.as_bytes(), origin).map(|_| ());
        assert_eq!(ok(body(510), Origin::Client), Ok(()));
        assert_eq!(ok(body(511), Origin::Client), Err(ParseError::TooLong { len: 513 }));
        // The body limit counts everything after the tags, prefix included.
        let long_prefix = format!(":{} {}", "n".repeat(40), body(510 - 42));
        assert_eq!(ok(long_prefix.clone(), Origin::Server), Ok(()));
        assert_eq!(ok(format!("{long_prefix}x"), Origin::Server), Err(ParseError::TooLong { len: 513 }));
        // Tags do not count against the 512 bytes.
        assert_eq!(ok(format!("{} {}", tags(4094), body(510)), Origin::Client), Ok(()));
        assert_eq!(
            ok(format!("{} PING", tags(4095)), Origin::Client),
            Err(ParseError::TagsTooLong { len: 4095, max: 4094 })
        );
        assert_eq!(ok(format!("{} PING", tags(8189)), Origin::Server), Ok(()));
        assert_eq!(
            ok(format!("{} PING", tags(8190)), Origin::Server),
            Err(ParseError::TagsTooLong { len: 8190, max: 8189 })
        );
        assert_eq!(MAX_CLIENT_LINE_BYTES, format!("{} {}", tags(4094), body(510)).len());
        // Oversize is reported before any other fault of the line.
        assert!(matches!(ok(format!("{}\u{0}", body(511)), Origin::Client), Err(ParseError::TooLong { .. })));
    }

    #[test]
    fn serializes_messages() {
        let tagged = |tags: &[(&str, &str)], m: Message| Message {
            tags: tags.iter().map(|(k, v)| Tag { key: (*k).into(), value: (*v).into() }).collect(),
            ..m
        };
        let from = |source: &str, m: Message| Message { prefix: Some(Prefix::parse(source)), ..m };
        let cases: Vec<(Message, &str)> = vec![
            (Message::new("PING", &[]), "PING\r\n"),
            (Message::new("PRIVMSG", &["#a", "hi"]), "PRIVMSG #a hi\r\n"),
            (Message::new("PRIVMSG", &["#a", "hi there"]), "PRIVMSG #a :hi there\r\n"),
            (Message::new("PRIVMSG", &["#a", ""]), "PRIVMSG #a :\r\n"),
            (Message::new("PRIVMSG", &["#a", ":)"]), "PRIVMSG #a ::)\r\n"),
            (Message::new("PRIVMSG", &["#a", "a:b"]), "PRIVMSG #a a:b\r\n"),
            (from("n!u@h", Message::new("QUIT", &[])), ":n!u@h QUIT\r\n"),
            (from("irc.example.net", Message::new("001", &["alice", "Hi"])), ":irc.example.net 001 alice Hi\r\n"),
            (tagged(&[("a", "b"), ("c", "")], Message::new("PING", &[])), "@a=b;c PING\r\n"),
            (tagged(&[("k", "; \\\r\n")], Message::new("PING", &[])), "@k=\\:\\s\\\\\\r\\n PING\r\n"),
        ];
        for (message, expected) in cases {
            assert_eq!(message.serialize().as_deref(), Ok(expected), "{message:?}");
        }
    }

    #[test]
    fn refuses_to_serialize_what_cannot_be_sent() {
        let err = |m: Message| m.serialize().unwrap_err().to_string();
        let with_tag = |key: &str, value: &str| Message {
            tags: vec![Tag { key: key.into(), value: value.into() }],
            ..Message::new("PING", &[])
        };
        let with_prefix = |source: &str| Message { prefix: Some(Prefix::parse(source)), ..Message::new("PING", &[]) };
        let cases: Vec<(Message, &str)> = vec![
            (Message::new("", &[]), r##"command "" is not letters and digits"##),
            (Message::new("PRIV MSG", &[]), r##"command "PRIV MSG" is not letters and digits"##),
            (
                Message::new("PRIVMSG", &["a b", "c"]),
                "parameter 0: only the last parameter may be empty, start with ':' or hold a space",
            ),
            (
                Message::new("PRIVMSG", &["", "c"]),
                "parameter 0: only the last parameter may be empty, start with ':' or hold a space",
            ),
            (
                Message::new("PRIVMSG", &[":a", "c"]),
                "parameter 0: only the last parameter may be empty, start with ':' or hold a space",
            ),
            (Message::new("PRIVMSG", &["#a", "x\r\ny"]), "parameter 1: holds NUL, CR or LF"),
            (Message::new("X", &["1"; 16]), "more than 15 parameters"),
            (
                Message::new("PRIVMSG", &["#a", &"x".repeat(500)]),
                "line of 513 bytes with CRLF (tags aside), at most 512",
            ),
            (with_tag("", "v"), r##"tag key "" is empty or holds ';', '=', a space, NUL, CR or LF"##),
            (with_tag("a=b", "v"), r##"tag key "a=b" is empty or holds ';', '=', a space, NUL, CR or LF"##),
            (with_tag("k", "a\0b"), r##"the value of tag "k" holds NUL"##),
            (with_tag("k", &"v".repeat(8190)), "tag section of 8194 bytes, at most 8191"),
            (with_prefix("a b"), r##"prefix "a b" cannot be written"##),
            (with_prefix("!u@h"), r##"prefix "!u@h" cannot be written"##),
        ];
        for (message, expected) in cases {
            assert_eq!(err(message), expected);
        }
    }

    #[test]
    fn prefixes_print_as_parsed() {
        for source in ["n", "n!u", "n@h", "n!u@h", "n!@", "irc.example.net", "n!u!x@h@y"] {
            assert_eq!(Prefix::parse(source).to_string(), source);
        }
    }

    mod properties {
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        use super::super::*;

        fn word(forbidden: &'static str) -> impl Strategy<Value = String> {
            "[^ \r\n\0]{1,12}".prop_filter("forbidden characters", move |s| !s.contains(|c| forbidden.contains(c)))
        }

        fn message() -> impl Strategy<Value = Message> {
            let tags = btree_map(word(";="), "[^\0]{0,12}", 0..4)
                .prop_map(|tags| tags.into_iter().map(|(key, value)| Tag { key, value }).collect::<Vec<_>>());
            let prefix =
                proptest::option::of((word("!@"), proptest::option::of(word("@")), proptest::option::of(word(""))))
                    .prop_map(|p| p.map(|(nick, user, host)| Prefix { nick, user, host }));
            let middles = vec(word("").prop_filter("middle", |s| !s.starts_with(':')), 0..14);
            let last = proptest::option::of("[^\r\n\0]{0,20}");
            (tags, prefix, "[A-Za-z]{1,10}|[0-9]{3}", middles, last).prop_map(
                |(tags, prefix, command, mut params, last)| {
                    params.extend(last);
                    Message { tags, prefix, command, params }
                },
            )
        }

        proptest! {
            #[test]
            fn parse_inverts_serialize(m in message()) {
                let line = match m.serialize() {
                    Err(SerializeError::TooLong { .. }) => return Err(TestCaseError::reject("over 512 bytes")),
                    line => line.unwrap(),
                };
                prop_assert_eq!(Message::parse(line.as_bytes(), Origin::Server), Ok(m));
            }

            #[test]
            fn parse_never_panics(line in vec(any::<u8>(), 0..600)) {
                let _ = Message::parse(&line, Origin::Client);
            }

            #[test]
            fn tag_values_survive_escaping(value in "\\PC*") {
                let mut escaped = String::new();
                escape_tag_value(&value, &mut escaped);
                prop_assert!(!escaped.contains([' ', ';', '\r', '\n']));
                prop_assert_eq!(unescape_tag_value(&escaped), value);
            }
        }
    }
}
