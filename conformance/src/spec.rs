//! The requirements of `PROTOCOL.md`, read from the text itself so that the
//! suite and the specification cannot drift apart: every id a case cites must
//! exist here, and every id here is cited by a case or listed in
//! [`NOT_TESTED`] with the reason (a test in this crate checks both).

use std::{collections::BTreeMap, fmt, sync::LazyLock};

/// How strongly a requirement binds, from the RFC 2119 words of its
/// sentences. `PROTOCOL.md` is normative for behaviour, so a sentence with
/// no keyword ("The server closes such a session with IDLE_TIMEOUT") binds
/// like a MUST; a requirement is as strong as its strongest sentence. Cases
/// check the SHOULD sentences of a MUST requirement with
/// [`crate::outcome::Check::should`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// A sentence says MUST (NOT) or states behaviour with no keyword.
    Must,
    /// Every sentence says SHOULD or MAY, one at least SHOULD: missing it is
    /// graded non-strict.
    Should,
    /// Every sentence says MAY: observed, never failed.
    May,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// One requirement: its id, level and full text.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Requirement {
    pub id: String,
    pub level: Level,
    pub text: String,
}

/// Every requirement of `PROTOCOL.md`, by id.
pub static REQUIREMENTS: LazyLock<BTreeMap<String, Requirement>> = LazyLock::new(|| parse(confab_protocol::SPEC));

/// The requirement `id`. Panics on an id `PROTOCOL.md` does not define: a
/// case citing one is a bug in the suite, which its tests catch.
pub fn requirement(id: &str) -> &'static Requirement {
    REQUIREMENTS.get(id).unwrap_or_else(|| panic!("PROTOCOL.md has no requirement {id}"))
}

/// Requirements no case checks, each with the reason. Anything else in
/// `PROTOCOL.md` must be cited by at least one case.
pub const NOT_TESTED: &[(&str, &str)] = &[
    ("COMPAT-1", "about how the .proto files evolve; checked against the committed baseline in the protocol crate"),
    ("COMPAT-4", "about future versions of the protocol"),
    (
        "COMPAT-3",
        "level 2's enum values answer level-2 commands and fields, which a level-1 client does not send; the one \
         exception, ROOM_ARCHIVED to a level-1 client's send in a room a level-2 client archived, is read by ERR-5",
    ),
    ("FMT-2", "how a client shows a text: the driver contract reports events, not how a client renders them"),
    ("FMT-3", "how a client shows links: the driver contract reports events, not how a client renders them"),
    (
        "LOG-7",
        "the state a client derives from edits, deletions and reactions: the driver contract has no command to read it",
    ),
    ("READ-5", "a client's own unread counts: the driver contract has no command to read them"),
    ("TYPING-3", "when a client sends SetTyping: the driver contract has no command for typing"),
    (
        "LIMIT-5",
        "the session limit is not announced, and reaching confabd's default takes 15,000 connections; \
         confabd's own tests check SERVER_BUSY with a small limit",
    ),
];

/// Reads requirements out of the Markdown: a list item that starts with a
/// bold id (`- **AUTH-4** ...`) holds everything up to the next list item
/// at the same depth, heading or table.
pub fn parse(spec: &str) -> BTreeMap<String, Requirement> {
    let mut found = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut finish = |current: &mut Option<(String, String)>| {
        if let Some((id, text)) = current.take() {
            let level = level_of(&text);
            found.insert(id.clone(), Requirement { id, level, text: text.trim().to_owned() });
        }
    };
    for line in spec.lines() {
        if let Some(rest) = line.strip_prefix("- **") {
            finish(&mut current);
            if let Some((id, text)) = rest.split_once("**")
                && is_id(id)
            {
                current = Some((id.to_owned(), text.trim().to_owned()));
            }
        } else if line.starts_with('#') || line.starts_with('|') || line.starts_with("- ") {
            finish(&mut current);
        } else if let Some((_, text)) = current.as_mut() {
            text.push('\n');
            text.push_str(line);
        }
    }
    finish(&mut current);
    found
}

fn is_id(word: &str) -> bool {
    match word.split_once('-') {
        Some((area, number)) => {
            !area.is_empty()
                && area.chars().all(|c| c.is_ascii_uppercase())
                && number.starts_with(|c: char| c.is_ascii_digit())
                && number.chars().all(|c| c.is_ascii_alphanumeric())
        }
        None => false,
    }
}

fn level_of(text: &str) -> Level {
    let sentences =
        text.split(". ").flat_map(|s| s.split(".\n")).flat_map(|s| s.split("; ")).filter(|s| !s.trim().is_empty());
    sentences
        .map(|sentence| {
            let has = |word: &str| sentence.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == word);
            if has("MUST") || !(has("SHOULD") || has("MAY")) {
                Level::Must
            } else if has("SHOULD") {
                Level::Should
            } else {
                Level::May
            }
        })
        .min()
        .unwrap_or(Level::Must)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_levels_and_continuations() {
        let spec = "## 7. Liveness\n\n\
            - **LIVE-1** Each side SHOULD send a frame. A client MAY wait.\n\
            - **LIVE-3** The server MUST answer.\n  still LIVE-3, SHOULD here is not the level\n\
            - **LIVE-4** Either side MAY close.\n\
            - **ROOM-4** `JoinRoom` joins a room. A client SHOULD look.\n\
            - **not** an id\n\n| a | b |\n";
        let found = parse(spec);
        let levels: Vec<_> = found.values().map(|r| (r.id.as_str(), r.level)).collect();
        assert_eq!(
            levels,
            [("LIVE-1", Level::Should), ("LIVE-3", Level::Must), ("LIVE-4", Level::May), ("ROOM-4", Level::Must)]
        );
        assert!(found["LIVE-3"].text.contains("still LIVE-3"));
    }

    #[test]
    fn the_real_spec_has_every_section() {
        for id in ["QUIC-1", "WS-7", "ENC-8", "FRAME-10", "AUTH-15", "RESUME-9a", "RESUME-11", "LIMIT-5", "COMPAT-4"] {
            assert!(REQUIREMENTS.contains_key(id), "{id} not found in PROTOCOL.md");
        }
        assert_eq!(requirement("LIMIT-3").level, Level::Must, "a plain statement binds like a MUST");
        assert_eq!(requirement("COMPAT-3").level, Level::Should);
        assert_eq!(requirement("SEND-4").level, Level::Must);
        for (id, _) in NOT_TESTED {
            requirement(id);
        }
    }
}
