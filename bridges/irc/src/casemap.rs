//! Casemapping of nicks and channel names, as ISUPPORT CASEMAPPING announces
//! it: `ascii` folds A-Z only; `rfc1459` also folds `[]\~` to `{}|^` (the
//! Scandinavian heritage of RFC 1459 2.2). Other characters, non-ASCII
//! included, are left as they are.

/// How names are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseMapping {
    Ascii,
    Rfc1459,
}

impl CaseMapping {
    /// The token for `CASEMAPPING=` in RPL_ISUPPORT.
    pub fn isupport_value(self) -> &'static str {
        match self {
            CaseMapping::Ascii => "ascii",
            CaseMapping::Rfc1459 => "rfc1459",
        }
    }

    /// The mapping a CASEMAPPING token names, if it is one of ours.
    pub fn from_isupport_value(value: &str) -> Option<CaseMapping> {
        match value {
            "ascii" => Some(CaseMapping::Ascii),
            "rfc1459" => Some(CaseMapping::Rfc1459),
            _ => None,
        }
    }

    /// One character folded to lower case.
    pub fn lower_char(self, c: char) -> char {
        match (self, c) {
            (_, 'A'..='Z') => c.to_ascii_lowercase(),
            (CaseMapping::Rfc1459, '[') => '{',
            (CaseMapping::Rfc1459, ']') => '}',
            (CaseMapping::Rfc1459, '\\') => '|',
            (CaseMapping::Rfc1459, '~') => '^',
            _ => c,
        }
    }

    /// A name folded to lower case: the key to index and compare names by.
    pub fn irc_lower(self, name: &str) -> String {
        name.chars().map(|c| self.lower_char(c)).collect()
    }

    /// Whether two names are the same name under this mapping.
    pub fn equal(self, a: &str, b: &str) -> bool {
        a.chars().map(|c| self.lower_char(c)).eq(b.chars().map(|c| self.lower_char(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_names() {
        let cases = [
            // input, ascii, rfc1459
            ("Alice", "alice", "alice"),
            ("NICK[away]", "nick[away]", "nick{away}"),
            ("a\\b~c^d|e{f}", "a\\b~c^d|e{f}", "a|b^c^d|e{f}"),
            ("#Confab-Dev", "#confab-dev", "#confab-dev"),
            ("ÉLODIE", "Élodie", "Élodie"),
            ("", "", ""),
        ];
        for (input, ascii, rfc1459) in cases {
            assert_eq!(CaseMapping::Ascii.irc_lower(input), ascii, "ascii of {input:?}");
            assert_eq!(CaseMapping::Rfc1459.irc_lower(input), rfc1459, "rfc1459 of {input:?}");
        }
    }

    #[test]
    fn compares_names() {
        let cases = [
            // a, b, equal under ascii, equal under rfc1459
            ("Alice", "aLICE", true, true),
            ("[a]", "{A}", false, true),
            ("x\\y", "X|Y", false, true),
            ("~z", "^Z", false, true),
            ("alice", "alice_", false, false),
            ("É", "é", false, false),
        ];
        for (a, b, ascii, rfc1459) in cases {
            assert_eq!(CaseMapping::Ascii.equal(a, b), ascii, "ascii {a:?} {b:?}");
            assert_eq!(CaseMapping::Rfc1459.equal(a, b), rfc1459, "rfc1459 {a:?} {b:?}");
            assert_eq!(
                CaseMapping::Rfc1459.equal(a, b),
                CaseMapping::Rfc1459.irc_lower(a) == CaseMapping::Rfc1459.irc_lower(b)
            );
        }
    }

    #[test]
    fn names_its_isupport_token() {
        for mapping in [CaseMapping::Ascii, CaseMapping::Rfc1459] {
            assert_eq!(CaseMapping::from_isupport_value(mapping.isupport_value()), Some(mapping));
        }
        assert_eq!(CaseMapping::from_isupport_value("rfc1459-strict"), None);
    }
}
