//! confab's IRC gateway. For now the sans-IO message layer it stands on:
//! lines parsed and serialized with IRCv3 tags (`message`), nick and channel
//! casemapping (`casemap`), long texts split into lines that fit (`split`),
//! and lines cut out of a byte stream (`framing`). Nothing here does IO.

pub mod casemap;
pub mod framing;
pub mod message;
pub mod split;

pub use casemap::CaseMapping;
pub use framing::{LineReader, LineTooLong};
pub use message::{Message, Origin, ParseError, Prefix, SerializeError, Tag};
