//! Room events as the cases compare them: positions, message texts, kinds
//! and senders, and whether a time the server stated is plausible.

use std::time::{SystemTime, UNIX_EPOCH};

use confab_sdk::v1;

/// The seqs of `events`, in order.
pub fn seqs(events: &[v1::RoomEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Whether `seqs` is exactly `from..=to`.
pub fn is_run(seqs: &[u64], from: u64, to: u64) -> bool {
    seqs.iter().copied().eq(from..=to)
}

/// The message texts of `events`, in order.
pub fn texts(events: &[v1::RoomEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(v1::room_event::Kind::Message(m)) => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

/// The kind of a room event, for comparing logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Created,
    Joined,
    Left,
    Invited,
    Message,
    Edited,
    Deleted,
    ReactionAdded,
    ReactionRemoved,
    RoomUpdated,
    Unknown,
}

impl Kind {
    /// The name of the event's message in the spec (`RoomCreated`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Created => "RoomCreated",
            Kind::Joined => "MemberJoined",
            Kind::Left => "MemberLeft",
            Kind::Invited => "MemberInvited",
            Kind::Message => "Message",
            Kind::Edited => "MessageEdited",
            Kind::Deleted => "MessageDeleted",
            Kind::ReactionAdded => "ReactionAdded",
            Kind::ReactionRemoved => "ReactionRemoved",
            Kind::RoomUpdated => "RoomUpdated",
            Kind::Unknown => "(no kind)",
        }
    }
}

pub fn kind(event: &v1::RoomEvent) -> Kind {
    use v1::room_event::Kind as K;
    match event.kind {
        Some(K::RoomCreated(_)) => Kind::Created,
        Some(K::MemberJoined(_)) => Kind::Joined,
        Some(K::MemberLeft(_)) => Kind::Left,
        Some(K::MemberInvited(_)) => Kind::Invited,
        Some(K::Message(_)) => Kind::Message,
        Some(K::MessageEdited(_)) => Kind::Edited,
        Some(K::MessageDeleted(_)) => Kind::Deleted,
        Some(K::ReactionAdded(_)) => Kind::ReactionAdded,
        Some(K::ReactionRemoved(_)) => Kind::ReactionRemoved,
        Some(K::RoomUpdated(_)) => Kind::RoomUpdated,
        None => Kind::Unknown,
    }
}

/// The user id of an event's sender (0 when it names none).
pub fn sender(event: &v1::RoomEvent) -> u64 {
    event.sender.as_ref().map_or(0, |u| u.user_id)
}

/// `(seq, kind, sender id)` of each event.
pub fn shape(log: &[v1::RoomEvent]) -> Vec<(u64, Kind, u64)> {
    log.iter().map(|e| (e.seq, kind(e), sender(e))).collect()
}

/// The earliest plausible UNIX time in milliseconds (2020-09-13), to tell
/// a timestamp from a counter or a duration.
pub const PLAUSIBLE_MS: u64 = 1_600_000_000_000;

/// This machine's clock, in UNIX milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Whether `time_ms` is a plausible UNIX time in milliseconds for "now"
/// (within a day of this machine's clock).
pub fn plausible_time(time_ms: u64) -> bool {
    const DAY_MS: u64 = 24 * 3600 * 1000;
    now_ms().abs_diff(time_ms) < DAY_MS
}
