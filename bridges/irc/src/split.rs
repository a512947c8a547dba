//! Long texts cut into pieces that each fit one PRIVMSG (or NOTICE) line as
//! the recipient sees it, `:nick!user@host PRIVMSG #target :piece\r\n`, in
//! 512 bytes.
//!
//! Pieces are slices of the text, in order. A line break (any run of CR and
//! LF) always ends a piece and is not part of one; a line too long is cut at
//! its last space within the budget (that one space dropped), or else at the
//! last character boundary within it. Nothing else is dropped: the text is
//! its pieces joined by what lies between them, which is nothing or one space
//! where a line was cut, a run of line breaks, or one cut space and then
//! line breaks (a line cut at its very last byte). Empty lines make no piece
//! (IRC cannot send an empty message).

use crate::message::MAX_BODY_BYTES;

/// The longest character in UTF-8: every budget allows at least this much, so
/// that splitting always moves forward.
const MIN_BUDGET: usize = 4;

/// The bytes of text a line can carry after `:{source} {command} {target} :`
/// and before CRLF.
pub fn text_budget(source: &str, command: &str, target: &str) -> usize {
    let overhead = 1 + source.len() + 1 + command.len() + 1 + target.len() + 2 + 2;
    MAX_BODY_BYTES.saturating_sub(overhead)
}

/// Splits `text` for lines `:{source} {command} {target} :piece`.
/// `source` is the prefix the recipient sees (`nick!user@host`).
pub fn split_message<'a>(text: &'a str, source: &str, command: &str, target: &str) -> Vec<&'a str> {
    split_to_budget(text, text_budget(source, command, target))
}

/// Splits `text` into pieces of at most `budget` bytes. A budget under 4 bytes
/// is taken as 4, so that any character fits (names within the announced
/// length limits never leave so little).
pub fn split_to_budget(text: &str, budget: usize) -> Vec<&str> {
    let budget = budget.max(MIN_BUDGET);
    let mut pieces = Vec::new();
    for line in text.split(['\r', '\n']).filter(|line| !line.is_empty()) {
        let mut rest = line;
        while rest.len() > budget {
            let mut end = budget;
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            // A space at `budget` itself may be cut at: the piece before it fits.
            match rest.as_bytes()[1..=budget].iter().rposition(|&b| b == b' ') {
                Some(space) => {
                    pieces.push(&rest[..space + 1]);
                    rest = &rest[space + 2..];
                }
                None => {
                    pieces.push(&rest[..end]);
                    rest = &rest[end..];
                }
            }
        }
        if !rest.is_empty() {
            pieces.push(rest);
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, Origin};

    #[test]
    fn splits_texts() {
        let cases: &[(&str, usize, &[&str])] = &[
            ("hello", 10, &["hello"]),
            ("", 10, &[]),
            ("hello world", 5, &["hello", "world"]),
            ("hello world", 6, &["hello", "world"]),
            ("hello world", 11, &["hello world"]),
            ("aaaaaaaaaa", 4, &["aaaa", "aaaa", "aa"]),
            ("ab cdefgh", 4, &["ab", "cdef", "gh"]),
            ("a b c d e", 4, &["a b", "c d", "e"]),
            ("ab  cd", 4, &["ab ", "cd"]),
            (" abcdef", 4, &[" abc", "def"]),
            ("éééé", 5, &["éé", "éé"]),
            ("€€€", 4, &["€", "€", "€"]),
            ("🦀🦀", 5, &["🦀", "🦀"]),
            ("🦀", 1, &["🦀"]),
            ("one\ntwo", 10, &["one", "two"]),
            ("one\r\ntwo\r\n", 10, &["one", "two"]),
            ("one\n\n\ntwo\r", 10, &["one", "two"]),
            ("\n", 10, &[]),
            ("one two\nthree four", 5, &["one", "two", "three", "four"]),
            ("   ", 10, &["   "]),
        ];
        for (text, budget, expected) in cases {
            assert_eq!(&split_to_budget(text, *budget), expected, "{text:?} in {budget} bytes");
        }
    }

    #[test]
    fn budgets_count_the_line_the_recipient_sees() {
        let source = "alice!alice@confab";
        let overhead = format!(":{source} PRIVMSG #general :\r\n").len();
        assert_eq!(text_budget(source, "PRIVMSG", "#general"), 512 - overhead);
        let text = "word ".repeat(300);
        let pieces = split_message(&text, source, "PRIVMSG", "#general");
        assert!(pieces.len() > 1);
        for piece in &pieces {
            let line = format!(":{source} PRIVMSG #general :{piece}\r\n");
            assert!(line.len() <= 512, "{} bytes", line.len());
            assert!(Message::parse(line.as_bytes(), Origin::Server).is_ok());
        }
        // The budget is 472 bytes; the last space within it is at 469.
        assert_eq!((512 - overhead, pieces[0].len()), (472, 469));
        assert_eq!(pieces.join(" ").trim_end(), text.trim_end(), "every cut is at a space");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Where `piece` starts in `text` (pieces are slices of it).
        fn offset(text: &str, piece: &str) -> usize {
            piece.as_ptr() as usize - text.as_ptr() as usize
        }

        /// Nothing, one space, line breaks, or one space and line breaks.
        fn gap_is_allowed(gap: &str) -> bool {
            gap.strip_prefix(' ').unwrap_or(gap).chars().all(|c| c == '\r' || c == '\n')
        }

        proptest! {
            #[test]
            fn pieces_fit_and_lose_nothing(text in "(\\PC|[ \r\n]){0,300}", budget in 0usize..40) {
                let pieces = split_to_budget(&text, budget);
                let line_from = |start: usize| text[start..].split(['\r', '\n']).next().unwrap_or("").len();
                let mut at = 0;
                let mut previous_start = None;
                for piece in &pieces {
                    prop_assert!(!piece.is_empty());
                    prop_assert!(piece.len() <= budget.max(4), "{:?} over {}", piece, budget);
                    prop_assert!(!piece.contains(['\r', '\n']));
                    let start = offset(&text, piece);
                    let gap = &text[at..start];
                    prop_assert!(gap_is_allowed(gap), "gap {:?}", gap);
                    // A line is cut only where it was too long.
                    if let Some(previous) = previous_start.filter(|_| gap.is_empty() || gap == " ") {
                        prop_assert!(line_from(previous) > budget.max(4), "needless cut before {:?}", piece);
                    }
                    previous_start = Some(start);
                    at = start + piece.len();
                }
                let tail = &text[at..];
                prop_assert!(gap_is_allowed(tail), "tail {:?}", tail);
                // A cut space before line breaks or the end is one ending a line too long.
                if tail.starts_with(' ') {
                    prop_assert!(line_from(previous_start.unwrap_or(0)) > budget.max(4));
                }
            }

            #[test]
            fn full_lines_fit_in_512_bytes(
                text in "\\PC{0,1500}",
                nick in "[a-z]{1,30}",
                host in "[a-z.]{1,63}",
                target in "#[a-z]{1,50}",
            ) {
                let source = format!("{nick}!{nick}@{host}");
                for piece in split_message(&text, &source, "PRIVMSG", &target) {
                    let line = format!(":{source} PRIVMSG {target} :{piece}\r\n");
                    prop_assert!(line.len() <= 512, "{} bytes", line.len());
                }
            }
        }
    }
}
