//! The message formatting subset (PROTOCOL.md, "Formatting") as a pure
//! parser shared by the daemon and clients: [`parse`] turns a text into
//! blocks of styled spans for rendering, [`mentions`] lists whom a text
//! mentions with `@name` (or `@room`).
//!
//! The subset: `*emphasis*` / `_emphasis_`, `**strong**`, `~~strike~~`,
//! `` `code` ``, fenced code blocks (```` ``` ````), `> quote` lines, `- ` /
//! `* ` / `1. ` list items, links `[text](url)` and bare `http(s)://` URLs
//! (only http, https and mailto links), `@mentions`. Everything else,
//! HTML included, is literal text. A style opens only when a matching
//! delimiter closes it later on the same line.
//!
//! Every span borrows its text from the input, so parsing allocates only
//! the block and span lists.

/// The name used to mention everyone in a room.
pub const ROOM_MENTION: &str = "room";
/// Longest name (AUTH-1).
const MAX_NAME: usize = 32;
/// URL schemes that become links.
const LINK_SCHEMES: [&str; 3] = ["http://", "https://", "mailto:"];

/// One line of a message, or a whole fenced code block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block<'a> {
    /// An ordinary line (possibly empty).
    Line(Vec<Span<'a>>),
    /// A `> ` line.
    Quote(Vec<Span<'a>>),
    /// A list item: `- ` or `* ` (`number` None), or `N. `.
    Item { number: Option<u64>, spans: Vec<Span<'a>> },
    /// A fenced code block: the text after the opening fence (`info`) and
    /// the lines in between, verbatim.
    Code { info: &'a str, text: &'a str },
}

/// A run of text with one style and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span<'a> {
    /// The text to show (a mention's includes its `@`).
    pub text: &'a str,
    pub style: Style,
    pub kind: SpanKind<'a>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub emphasis: bool,
    pub strong: bool,
    pub strike: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanKind<'a> {
    Text,
    /// Inline code: shown verbatim, never styled further.
    Code,
    /// A link to `url` (http, https or mailto).
    Link {
        url: &'a str,
    },
    /// `@name`, as written (any case).
    Mention {
        name: &'a str,
    },
    /// `@room`.
    RoomMention,
}

/// Whom a text mentions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mentions {
    /// Mentioned names, lowercase, deduplicated, in order of appearance
    /// (`room` excluded).
    pub names: Vec<String>,
    /// Whether the text mentions `@room`.
    pub room: bool,
}

/// The mentions of `text`: `@name` where the name follows AUTH-1, preceded
/// by the start of the text or a character that cannot be part of a name
/// (so `bob@example.com` mentions nobody), outside code spans, code blocks
/// and link texts. Trailing dots end a sentence, not a name (`@bob.`).
pub fn mentions(text: &str) -> Mentions {
    let mut found = Mentions::default();
    for block in parse(text) {
        let spans = match &block {
            Block::Line(spans) | Block::Quote(spans) | Block::Item { spans, .. } => spans,
            Block::Code { .. } => continue,
        };
        for span in spans {
            match span.kind {
                SpanKind::Mention { name } => {
                    let name = name.to_ascii_lowercase();
                    if !found.names.contains(&name) {
                        found.names.push(name);
                    }
                }
                SpanKind::RoomMention => found.room = true,
                _ => {}
            }
        }
    }
    found
}

/// Parses `text` into blocks, one per line except fenced code blocks.
pub fn parse(text: &str) -> Vec<Block<'_>> {
    let mut blocks = Vec::new();
    let mut lines = lines(text).peekable();
    while let Some((_, line)) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            // Until a closing fence, or the end of the text.
            let body_start = lines.peek().map_or(text.len(), |(s, _)| *s);
            let mut body_end = body_start;
            for (s, l) in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                body_end = s + l.len();
            }
            blocks.push(Block::Code { info: info.trim(), text: &text[body_start..body_end.max(body_start)] });
        } else if let Some(rest) = trimmed.strip_prefix('>') {
            blocks.push(Block::Quote(inline(rest.strip_prefix(' ').unwrap_or(rest))));
        } else if let Some(rest) = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")) {
            blocks.push(Block::Item { number: None, spans: inline(rest) });
        } else if let Some((number, rest)) = ordered_item(trimmed) {
            blocks.push(Block::Item { number: Some(number), spans: inline(rest) });
        } else {
            blocks.push(Block::Line(inline(line)));
        }
    }
    blocks
}

/// The lines of `text` with their byte offsets, without `\n` or `\r\n`.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    text.split('\n').map(move |line| {
        let at = start;
        start += line.len() + 1;
        (at, line.strip_suffix('\r').unwrap_or(line))
    })
}

/// `N. rest` with 1 to 9 digits.
fn ordered_item(line: &str) -> Option<(u64, &str)> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=9).contains(&digits) {
        return None;
    }
    let rest = line[digits..].strip_prefix(". ")?;
    Some((line[..digits].parse().ok()?, rest))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delim {
    /// `*` or `_` (they pair only with their own character).
    Emphasis(u8),
    Strong,
    Strike,
}

impl Delim {
    /// Which style the delimiter toggles (and which opener stack it uses,
    /// `*` and `_` apart).
    fn slot(self) -> usize {
        match self {
            Delim::Emphasis(_) => 0,
            Delim::Strong => 1,
            Delim::Strike => 2,
        }
    }

    fn stack(self) -> usize {
        match self {
            Delim::Emphasis(b'_') => 3,
            other => other.slot(),
        }
    }
}

/// A piece of a line before delimiters are paired.
#[derive(Debug)]
enum Token<'a> {
    Text(&'a str),
    Span(&'a str, SpanKind<'a>),
    Delim { delim: Delim, src: &'a str, open: bool, close: bool, partner: Option<usize> },
}

/// Parses one line's inline content.
fn inline(line: &str) -> Vec<Span<'_>> {
    let mut tokens = tokenize(line);
    pair(&mut tokens);
    let mut spans: Vec<Span<'_>> = Vec::new();
    let mut depth = [0u32; 3];
    for (index, token) in tokens.iter().enumerate() {
        let style = Style { emphasis: depth[0] > 0, strong: depth[1] > 0, strike: depth[2] > 0 };
        let (text, kind) = match token {
            Token::Text(text) => (*text, SpanKind::Text),
            Token::Span(text, kind) => (*text, kind.clone()),
            Token::Delim { delim, partner: Some(partner), .. } => {
                let slot = &mut depth[delim.slot()];
                if *partner > index {
                    *slot += 1;
                } else {
                    *slot = slot.saturating_sub(1);
                }
                continue;
            }
            Token::Delim { src, partner: None, .. } => (*src, SpanKind::Text),
        };
        if text.is_empty() {
            continue;
        }
        match spans.last_mut() {
            // Adjacent plain text of one style makes one span.
            Some(last)
                if last.kind == SpanKind::Text
                    && kind == SpanKind::Text
                    && last.style == style
                    && offset(line, last.text) + last.text.len() == offset(line, text) =>
            {
                let start = offset(line, last.text);
                last.text = &line[start..start + last.text.len() + text.len()];
            }
            _ => spans.push(Span { text, style, kind }),
        }
    }
    spans
}

/// Byte offset of `part` (a subslice) in `whole`.
fn offset(whole: &str, part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// Splits a line into text, code spans, links, mentions and delimiters.
fn tokenize(line: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let mut scan = Scan::default();
    while i < line.len() {
        let Some((len, token)) = token_at(line, i, &mut scan) else {
            i += 1;
            continue;
        };
        if text_start < i {
            tokens.push(Token::Text(&line[text_start..i]));
        }
        tokens.push(token);
        i += len;
        text_start = i;
    }
    if text_start < line.len() {
        tokens.push(Token::Text(&line[text_start..]));
    }
    tokens
}

/// What a line's scan remembers so that a line full of unclosed openers
/// costs linear time, not quadratic.
#[derive(Default)]
struct Scan {
    /// Backtick run lengths with no closing run further on.
    unclosed_code: Vec<usize>,
    /// The next `]` and `)` at or after the scan position, once looked for
    /// (`Some(None)`: there is none).
    next_bracket: Option<Option<usize>>,
    next_paren: Option<Option<usize>>,
}

/// The first `byte` at or after `from` in `line`, remembered in `memo`.
fn next_byte(line: &str, from: usize, byte: u8, memo: &mut Option<Option<usize>>) -> Option<usize> {
    match *memo {
        Some(Some(at)) if at >= from => Some(at),
        Some(None) => None,
        _ => {
            let found = line.as_bytes()[from..].iter().position(|&b| b == byte).map(|at| at + from);
            *memo = Some(found);
            found
        }
    }
}

/// The token starting at byte `i` (an ASCII position), with its length.
fn token_at<'a>(line: &'a str, i: usize, scan: &mut Scan) -> Option<(usize, Token<'a>)> {
    let bytes = line.as_bytes();
    if !matches!(bytes[i], b'`' | b'[' | b'h' | b'H' | b'@' | b'*' | b'_' | b'~') {
        return None;
    }
    // `i` is at an ASCII byte, so a character boundary.
    let prev = line[..i].chars().next_back();
    match bytes[i] {
        b'`' => {
            let run = bytes[i..].iter().take_while(|&&b| b == b'`').count();
            let body = i + run;
            let mut j = body;
            while !scan.unclosed_code.contains(&run) && j < bytes.len() {
                let other = bytes[j..].iter().take_while(|&&b| b == b'`').count();
                if other == run {
                    return Some((j + run - i, Token::Span(&line[body..j], SpanKind::Code)));
                }
                j += other.max(1);
            }
            // No closing run: the backticks are text.
            scan.unclosed_code.push(run);
            Some((run, Token::Text(&line[i..i + run])))
        }
        b'[' => {
            let close = next_byte(line, i, b']', &mut scan.next_bracket)?;
            let text = &line[i + 1..close];
            if bytes.get(close + 1) != Some(&b'(') {
                return None;
            }
            let rest = &line[close + 2..];
            let end = next_byte(line, close + 2, b')', &mut scan.next_paren)? - (close + 2);
            let url = &rest[..end];
            if text.is_empty() || url.contains(char::is_whitespace) || !allowed_url(url) {
                return None;
            }
            Some((close + 2 + end + 1 - i, Token::Span(text, SpanKind::Link { url })))
        }
        b'h' | b'H' if !prev.is_some_and(|c| c.is_alphanumeric()) => {
            let rest = &line[i..];
            let starts = |prefix: &str| {
                rest.as_bytes().get(..prefix.len()).is_some_and(|b| b.eq_ignore_ascii_case(prefix.as_bytes()))
            };
            let scheme = if starts("https://") {
                8
            } else if starts("http://") {
                7
            } else {
                return None;
            };
            let mut end = rest.find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"')).unwrap_or(rest.len());
            let url = &rest[..end];
            let (opened, mut closed) = (url.matches('(').count(), url.matches(')').count());
            loop {
                end = rest[..end].trim_end_matches(['.', ',', ':', ';', '!', '?', '\'', '*', '_', '~']).len();
                // A closing parenthesis without its opening one is the text's.
                if rest[..end].ends_with(')') && closed > opened {
                    end -= 1;
                    closed -= 1;
                } else {
                    break;
                }
            }
            if end <= scheme {
                return None;
            }
            let url = &rest[..end];
            Some((end, Token::Span(url, SpanKind::Link { url })))
        }
        b'@' if !prev.is_some_and(|c| c.is_ascii() && is_name_byte(c as u8)) => {
            let name_bytes = &bytes[i + 1..];
            if !name_bytes.first().is_some_and(u8::is_ascii_alphabetic) {
                return None;
            }
            let run = name_bytes.iter().take_while(|&&b| is_name_byte(b)).count();
            let name = line[i + 1..i + 1 + run].trim_end_matches('.');
            if name.len() > MAX_NAME {
                return None;
            }
            let kind = if name.eq_ignore_ascii_case(ROOM_MENTION) {
                SpanKind::RoomMention
            } else {
                SpanKind::Mention { name }
            };
            Some((1 + name.len(), Token::Span(&line[i..i + 1 + name.len()], kind)))
        }
        b @ (b'*' | b'_' | b'~') => {
            let run = bytes[i..].iter().take_while(|&&c| c == b).count();
            let delim = match (b, run) {
                (b'*', 1) | (b'_', 1) => Delim::Emphasis(b),
                (b'*', 2) => Delim::Strong,
                // `***`: strong, then emphasis (the next token).
                (b'*', 3) => Delim::Strong,
                (b'~', 2) => Delim::Strike,
                _ => return Some((run, Token::Text(&line[i..i + run]))),
            };
            let len = if delim == Delim::Strong { 2 } else { run };
            let next = line[i + len..].chars().next();
            let mut open = next.is_some_and(|c| !c.is_whitespace());
            let mut close = prev.is_some_and(|c| !c.is_whitespace());
            if b == b'_' {
                // snake_case is not emphasis.
                open &= !prev.is_some_and(char::is_alphanumeric);
                close &= !next.is_some_and(char::is_alphanumeric);
            }
            Some((len, Token::Delim { delim, src: &line[i..i + len], open, close, partner: None }))
        }
        _ => None,
    }
}

fn allowed_url(url: &str) -> bool {
    LINK_SCHEMES.iter().any(|scheme| {
        url.len() > scheme.len() && url.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    })
}

/// Pairs each closing delimiter with the nearest unpaired opener of the
/// same kind before it, with something in between.
fn pair(tokens: &mut [Token<'_>]) {
    let mut openers: [Vec<usize>; 4] = Default::default();
    for i in 0..tokens.len() {
        let Token::Delim { delim, open, close, .. } = tokens[i] else { continue };
        let stack = &mut openers[delim.stack()];
        match stack.last() {
            Some(&opener) if close && opener + 1 < i => {
                stack.pop();
                if let Token::Delim { partner, .. } = &mut tokens[opener] {
                    *partner = Some(i);
                }
                if let Token::Delim { partner, .. } = &mut tokens[i] {
                    *partner = Some(opener);
                }
            }
            _ if open => stack.push(i),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compact rendering of parsed blocks, one line per block:
    /// `*em* **strong** ~~strike~~ `code` [text](url) @mention @@room`.
    fn show(text: &str) -> String {
        parse(text)
            .iter()
            .map(|block| match block {
                Block::Line(spans) => spans_to_string(spans),
                Block::Quote(spans) => format!("> {}", spans_to_string(spans)),
                Block::Item { number: None, spans } => format!("• {}", spans_to_string(spans)),
                Block::Item { number: Some(n), spans } => format!("{n}) {}", spans_to_string(spans)),
                Block::Code { info, text } => format!("code({info})[{text}]"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn spans_to_string(spans: &[Span<'_>]) -> String {
        let mut out = String::new();
        for span in spans {
            let body = match &span.kind {
                SpanKind::Text => span.text.to_owned(),
                SpanKind::Code => format!("`{}`", span.text),
                SpanKind::Link { url } => format!("[{}]({url})", span.text),
                SpanKind::Mention { name } => format!("<@{name}>"),
                SpanKind::RoomMention => "<@room>".to_owned(),
            };
            let mut flags = String::new();
            if span.style.emphasis {
                flags.push('e');
            }
            if span.style.strong {
                flags.push('s');
            }
            if span.style.strike {
                flags.push('x');
            }
            if flags.is_empty() { out.push_str(&body) } else { out.push_str(&format!("{{{flags}:{body}}}")) }
        }
        out
    }

    fn check(text: &str, expected: &str) {
        assert_eq!(show(text), expected, "parsing {text:?}");
    }

    fn names(text: &str) -> (Vec<String>, bool) {
        let found = mentions(text);
        (found.names, found.room)
    }

    #[test]
    fn styles() {
        check("plain text", "plain text");
        check("*em* and _em_", "{e:em} and {e:em}");
        check("**strong** ~~gone~~", "{s:strong} {x:gone}");
        check("***both***", "{es:both}");
        check("**bold *and em* inside**", "{s:bold }{es:and em}{s: inside}");
        check("*a **b* c**", "{e:a }{es:b}{s: c}");
    }

    #[test]
    fn delimiters_that_do_not_pair_are_text() {
        check("2 * 3 * 4", "2 * 3 * 4");
        check("*unclosed", "*unclosed");
        check("snake_case_name", "snake_case_name");
        check("__init__", "__init__");
        check("** not bold **", "** not bold **");
        check("~single~ ~~~triple~~~", "~single~ ~~~triple~~~");
        check("****", "****");
        check("a * b", "a * b");
    }

    #[test]
    fn code_spans_are_verbatim() {
        check("run `rm *.tmp*` now", "run `rm *.tmp*` now");
        check("``a ` b``", "`a ` b`");
        check("`unclosed *em*", "`unclosed {e:em}");
        check("*a `b* c`", "*a `b* c`");
    }

    #[test]
    fn links() {
        check("[site](https://example.com)", "[site](https://example.com)");
        check("[mail](mailto:a@b.c)", "[mail](mailto:a@b.c)");
        check("[bad](javascript:alert(1))", "[bad](javascript:alert(1))");
        check("[spaced](https://a b)", "[spaced]([https://a](https://a) b)");
        check("[](https://a)", "[]([https://a](https://a))");
        check("see https://example.com/a_b. ok", "see [https://example.com/a_b](https://example.com/a_b). ok");
        check(
            "(https://en.wikipedia.org/wiki/A_(b))",
            "([https://en.wikipedia.org/wiki/A_(b)](https://en.wikipedia.org/wiki/A_(b)))",
        );
        check("**https://x.org**", "{s:[https://x.org](https://x.org)}");
        check("xhttps://no http://", "xhttps://no http://");
        check("ftp://nope", "ftp://nope");
        check("HTTPS://X.ORG/a (see)", "[HTTPS://X.ORG/a](HTTPS://X.ORG/a) (see)");
        check("[x](HTTP://y) [z](w)", "[x](HTTP://y) [z](w)");
        check("<b>html</b> stays", "<b>html</b> stays");
    }

    #[test]
    fn blocks() {
        check(
            "> quoted *text*\n- item\n* star item\n12. twelfth\n1.no",
            "> quoted {e:text}\n• item\n• star item\n12) twelfth\n1.no",
        );
        check("```rust\nlet x = *y*;\n```\nafter", "code(rust)[let x = *y*;]\nafter");
        check("```\nnever closed\n@bob", "code()[never closed\n@bob]");
        check("```\n```", "code()[]");
        check("a\r\nb\n\nc", "a\nb\n\nc");
        check("", "");
        check(">", "> ");
    }

    #[test]
    fn mentions_follow_the_name_rules() {
        assert_eq!(names("hi @Bob and @alice, @bob again"), (vec!["bob".into(), "alice".into()], false));
        assert_eq!(names("mail bob@example.com"), (vec![], false));
        assert_eq!(names("thanks @carol."), (vec!["carol".into()], false));
        assert_eq!(names("@d.e-f_g"), (vec!["d.e-f_g".into()], false));
        assert_eq!(names("@9lives @ nobody @"), (vec![], false));
        assert_eq!(names(&format!("@{}", "a".repeat(32))), (vec!["a".repeat(32)], false));
        assert_eq!(names(&format!("@{}", "a".repeat(33))), (vec![], false));
        assert_eq!(names("(@x) **@y** >@z"), (vec!["x".into(), "y".into(), "z".into()], false));
        assert_eq!(names("@@w"), (vec!["w".into()], false));
    }

    #[test]
    fn room_mentions() {
        assert_eq!(names("hey @room"), (vec![], true));
        assert_eq!(names("hey @ROOM!"), (vec![], true));
        assert_eq!(names("@roomy"), (vec!["roomy".into()], false));
    }

    #[test]
    fn no_mentions_in_code_or_link_text() {
        assert_eq!(names("`@bob` and\n```\n@carol @room\n```\n[@dave](https://x.y)"), (vec![], false));
        assert_eq!(names("> @erin\n- @frank"), (vec!["erin".into(), "frank".into()], false));
    }

    /// Any input parses without panicking, and the spans of a line cover
    /// only text taken from it.
    #[test]
    fn odd_input_is_handled() {
        let samples = [
            "`".repeat(1000),
            "[".repeat(1000),
            "*_~`[@h".repeat(300),
            "é*ü_ß~~`x`@é@Ω https://é.com/ñ".into(),
            "\u{200b}@bob\u{feff}".into(),
            "@".repeat(100) + "a",
            "**\n**\r\n\r".into(),
            "1234567890. x\n0. y".into(),
            "[a](x".repeat(3000),
            "[[]".repeat(3000) + "(https://a.b)",
            " hé".repeat(5000),
            "http://a".to_owned() + &")".repeat(5000),
        ];
        for sample in &samples {
            for block in parse(sample) {
                if let Block::Line(spans) | Block::Quote(spans) | Block::Item { spans, .. } = block {
                    for span in spans {
                        assert!(sample.contains(span.text));
                    }
                }
            }
            let _ = mentions(sample);
        }
        assert_eq!(names("\u{200b}@bob"), (vec!["bob".into()], false));
    }
}
